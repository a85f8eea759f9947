//! Contract and mapping tests per system: every external status and error
//! code to its outcome, the request mapping, and the HTTP and transport
//! conditions through a real client against the simulators.

use std::future::IntoFuture;
use std::sync::Arc;

use application::clock::SystemClock;
use domain::handoff::RequestSnapshot;
use domain::idempotency::{Purpose, TargetSystem};
use domain::ids::{CustomerId, HandoffId, TenantId};
use domain::outcome::OutcomeClass as C;
use integration::config::SystemsConfig;
use integration::crm::{CrmError, CustomerDirectory, HttpCustomerDirectory};
use integration::external::{
    billing, inventory, provisioning, ExternalCall, HandoffPort, HttpSystems, PortError,
    StatusAnswer, StatusQuery,
};
use simulators::{Fault, Script, SimulatorOptions, Simulators};

#[test]
fn contract_every_provisioning_status_maps_to_its_outcome() {
    let table = [
        ("NEW", C::Accepted, C::Accepted),
        ("SENT", C::Accepted, C::Accepted),
        ("ACK", C::Accepted, C::Accepted),
        ("INPROG", C::Accepted, C::Accepted),
        ("DONE", C::Succeeded, C::Succeeded),
        ("CANCELLED", C::Unclassified, C::Succeeded),
        ("ERR", C::BusinessRejected, C::BusinessRejected),
        ("ERR2", C::BusinessRejected, C::BusinessRejected),
        ("CANCEL_PENDING", C::Unclassified, C::Accepted),
        ("WHATEVER", C::Unclassified, C::Unclassified),
        ("", C::Unclassified, C::Unclassified),
    ];
    for (status, activate, cancel) in table {
        assert_eq!(
            provisioning::map_state(Purpose::Activate, status),
            activate,
            "{status}"
        );
        assert_eq!(
            provisioning::map_state(Purpose::Cancel, status),
            cancel,
            "{status}"
        );
    }
    for (code, class) in [
        ("PV-REJ-NO-PORT", C::BusinessRejected),
        ("PV-400-PARAM", C::ValidationRejected),
        ("PV-999", C::Unclassified),
    ] {
        assert_eq!(provisioning::map_error_code(code), class, "{code}");
    }
}

#[test]
fn contract_every_inventory_state_and_code_maps_to_its_outcome() {
    let table = [
        ("PENDING", C::Accepted, C::Accepted),
        ("CONFIRMED", C::Succeeded, C::Unclassified),
        ("RELEASED", C::Unclassified, C::Succeeded),
        ("REJECTED", C::BusinessRejected, C::BusinessRejected),
        ("INVALID", C::ValidationRejected, C::ValidationRejected),
        ("ON_HOLD", C::Unclassified, C::Unclassified),
    ];
    for (state, reserve, release) in table {
        assert_eq!(
            inventory::map_state(Purpose::Reserve, state),
            reserve,
            "{state}"
        );
        assert_eq!(
            inventory::map_state(Purpose::Release, state),
            release,
            "{state}"
        );
    }
    for (code, class) in [
        ("NO_CAPACITY", C::BusinessRejected),
        ("SKU_BLOCKED", C::BusinessRejected),
        ("BAD_SKU", C::ValidationRejected),
        ("BAD_QUANTITY", C::ValidationRejected),
        ("MISSING_KEY", C::ValidationRejected),
        ("KEY_CONFLICT", C::Unclassified),
    ] {
        assert_eq!(inventory::map_error_code(code), class, "{code}");
    }
}

#[test]
fn contract_every_billing_result_and_code_maps_to_its_outcome() {
    for (result, code, class) in [
        ("PENDING", None, C::Accepted),
        ("ACTIVE", None, C::Succeeded),
        ("DUPLICATE", None, C::IdempotentSuccess),
        ("REJECTED", None, C::BusinessRejected),
        ("REJECTED", Some("BIL-ACCT-INVALID"), C::ValidationRejected),
        ("REJECTED", Some("BIL-NOT-ELIGIBLE"), C::BusinessRejected),
        ("SUSPENDED", None, C::Unclassified),
    ] {
        assert_eq!(billing::map_state(result, code), class, "{result} {code:?}");
    }
    for (code, class) in [
        ("BIL-NOT-ELIGIBLE", C::BusinessRejected),
        ("BIL-CREDIT-HOLD", C::BusinessRejected),
        ("BIL-ACCT-INVALID", C::ValidationRejected),
        ("BIL-CHARGE-UNKNOWN", C::ValidationRejected),
        ("BIL-DUP-CONFLICT", C::DuplicateConflict),
        ("BIL-XYZ", C::Unclassified),
    ] {
        assert_eq!(billing::map_error_code(code), class, "{code}");
    }
}

fn billing_request() -> RequestSnapshot {
    let mut r = RequestSnapshot::default();
    for (k, v) in [
        ("order_id", "o1"),
        ("line_id", "l1"),
        ("billing_account", "ba-1"),
        ("customer_id", "c1"),
        ("charge.0.code", "INSTALL"),
        ("charge.0.kind", "OneTime"),
        ("charge.0.amount", "99.00 EUR"),
        ("charge.1.code", "MRC"),
        ("charge.1.kind", "RecurringMonthly"),
        ("charge.1.amount", "49.90 EUR"),
    ] {
        r.fields.insert(k.into(), v.into());
    }
    r
}

fn call(
    system: TargetSystem,
    purpose: Purpose,
    key: &str,
    request: RequestSnapshot,
) -> ExternalCall {
    ExternalCall {
        tenant: TenantId::new("t1"),
        system,
        purpose,
        handoff_id: HandoffId::new("h1"),
        idempotency_key: key.to_owned(),
        request,
        correlation_id: "corr".into(),
    }
}

struct Setup {
    sims: Simulators,
    port: HttpSystems,
    config: SystemsConfig,
}

async fn setup() -> Setup {
    let sims = Simulators::start(SimulatorOptions {
        hang_ms: 1_500,
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    let mut config = sims.systems_config(&["t1"], "contract-secret-00000001");
    for systems in config.tenants.values_mut() {
        for s in systems.systems.values_mut() {
            s.read_timeout_ms = 1_000;
            s.connect_timeout_ms = 100;
            s.retry.circuit_failure_threshold = 100;
        }
    }
    let port = HttpSystems::from_config(&config, Arc::new(SystemClock)).unwrap();
    Setup { sims, port, config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_http_answers_and_transport_failures_map_to_the_taxonomy() {
    let s = setup().await;
    let table = [
        (Fault::Succeed, C::Succeeded),
        (Fault::BusinessReject, C::BusinessRejected),
        (Fault::ValidationReject, C::ValidationRejected),
        (Fault::TimeoutAfterApply, C::Unknown),
        (Fault::TimeoutBeforeApply, C::Unknown),
        (Fault::AnswerLate, C::Succeeded),
        (Fault::MalformedBody, C::SchemaMismatch),
        (Fault::Unauthorized, C::SecurityConfiguration),
        (Fault::TooManyRequests, C::TechnicalRetryable),
        (Fault::ServerError, C::TechnicalRetryable),
        (Fault::UnknownStatusCode, C::Unclassified),
        (Fault::UnknownExternalStatus, C::Unclassified),
    ];
    for system in [
        TargetSystem::Inventory,
        TargetSystem::Provisioning,
        TargetSystem::Billing,
    ] {
        let purpose = match system {
            TargetSystem::Inventory => Purpose::Reserve,
            TargetSystem::Provisioning => Purpose::Activate,
            _ => Purpose::ActivateBilling,
        };
        for (i, (fault, class)) in table.iter().enumerate() {
            let key = format!("t1:o{i}:l1:{system}:{purpose}:1");
            s.sims.script(
                system,
                Script::ForKey {
                    key: key.clone(),
                    faults: vec![*fault],
                },
            );
            let outcome = s
                .port
                .execute(&call(system, purpose, &key, billing_request()))
                .await
                .unwrap();
            assert_eq!(outcome.class, *class, "{system} {fault:?}: {outcome:#?}");
            assert!(outcome.raw_code.is_some(), "raw code kept as evidence");
            assert_eq!(outcome.evidence.operation, "execute");
        }
    }
    // The request carries the key and the charge snapshot, in billing's words.
    let entry = s
        .sims
        .ledger(TargetSystem::Billing)
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(entry.operation, "activate_billing");
    // Billing detects duplicates by key.
    let key = "t1:dup:l1:billing:activate_billing:1";
    let first = s
        .port
        .execute(&call(
            TargetSystem::Billing,
            Purpose::ActivateBilling,
            key,
            billing_request(),
        ))
        .await
        .unwrap();
    assert_eq!(first.class, C::Succeeded);
    let again = s
        .port
        .execute(&call(
            TargetSystem::Billing,
            Purpose::ActivateBilling,
            key,
            billing_request(),
        ))
        .await
        .unwrap();
    assert_eq!(again.class, C::IdempotentSuccess);
    let mut changed = billing_request();
    changed
        .fields
        .insert("charge.0.amount".into(), "1.00 EUR".into());
    let conflict = s
        .port
        .execute(&call(
            TargetSystem::Billing,
            Purpose::ActivateBilling,
            key,
            changed,
        ))
        .await
        .unwrap();
    assert_eq!(conflict.class, C::DuplicateConflict);
    assert_eq!(
        s.sims
            .ledger(TargetSystem::Billing)
            .iter()
            .find(|e| e.key == key)
            .unwrap()
            .effects,
        1
    );
    // Status by key: known, not found.
    let query = |key: &str| StatusQuery {
        tenant: TenantId::new("t1"),
        system: TargetSystem::Billing,
        purpose: Purpose::ActivateBilling,
        idempotency_key: key.to_owned(),
    };
    assert!(
        matches!(s.port.status(&query(key)).await.unwrap(), StatusAnswer::Known(o) if o.class == C::Succeeded)
    );
    assert!(matches!(
        s.port
            .status(&query("t1:none:l1:billing:activate_billing:1"))
            .await
            .unwrap(),
        StatusAnswer::NotFound(_)
    ));
    // A refused connection was never sent: retryable.
    let mut dead = s.config.clone();
    for systems in dead.tenants.values_mut() {
        for c in systems.systems.values_mut() {
            c.base_url = "http://127.0.0.1:1".into();
        }
    }
    let dead = HttpSystems::from_config(&dead, Arc::new(SystemClock)).unwrap();
    let refused = dead
        .execute(&call(
            TargetSystem::Inventory,
            Purpose::Reserve,
            "t1:x:l1:inventory:reserve:1",
            RequestSnapshot::default(),
        ))
        .await
        .unwrap();
    assert_eq!(refused.class, C::TechnicalRetryable);
    assert_eq!(refused.raw_code.as_deref(), Some("CONNECT_FAILED"));
    s.sims.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_request_mapping_carries_the_key_and_the_charge_snapshot() {
    // Served by a tiny echo endpoint standing in for billing.
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, serde_json::Value)>();
    let app = axum::Router::new().route(
        "/bss/charges/activate",
        post(
            move |headers: axum::http::HeaderMap,
                  axum::Json(body): axum::Json<serde_json::Value>| {
                let tx = tx.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send((key, body));
                    axum::Json(serde_json::json!({"activationId": "a1", "result": "ACTIVE"}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, app).into_future());
    let mut c = integration::config::SystemConfig::new(url);
    c.callback_secrets = vec!["mapping-secret-000000001".into()];
    let config = SystemsConfig::default().with_system("t1", TargetSystem::Billing, c);
    let port = HttpSystems::from_config(&config, Arc::new(SystemClock)).unwrap();
    let key = "t1:o1:l1:billing:activate_billing:1";
    let outcome = port
        .execute(&call(
            TargetSystem::Billing,
            Purpose::ActivateBilling,
            key,
            billing_request(),
        ))
        .await
        .unwrap();
    assert_eq!(outcome.class, C::Succeeded);
    assert_eq!(outcome.external_reference.as_deref(), Some("a1"));
    let (header, body) = rx.recv().await.unwrap();
    assert_eq!(header, key);
    assert_eq!(body["requestKey"], key);
    assert_eq!(body["accountRef"], "ba-1");
    assert_eq!(body["charges"][0]["chargeType"], "ONE_TIME");
    assert_eq!(body["charges"][1]["amount"], "49.90 EUR");
    assert_eq!(body["charges"].as_array().unwrap().len(), 2);
    assert!(outcome.evidence.request.contains("requestKey"));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_crm_lookup_maps_every_answer() {
    let s = setup().await;
    let directory = HttpCustomerDirectory::from_config(&s.config, Arc::new(SystemClock)).unwrap();
    let t1 = TenantId::new("t1");
    let found = directory
        .lookup(&t1, &CustomerId::new("ent-42"))
        .await
        .unwrap();
    assert_eq!(found.suspension, None);
    let found = found.snapshot;
    assert_eq!(found.segment.as_str(), "enterprise");
    assert_eq!(found.name, "Customer ent-42");
    assert_eq!(
        directory
            .lookup(&t1, &CustomerId::new("missing-1"))
            .await
            .unwrap_err(),
        CrmError::NotFound
    );
    // A suspended account is quoted with approval; a closed one is refused.
    let suspended = directory
        .lookup(&t1, &CustomerId::new("suspended-1"))
        .await
        .unwrap();
    assert_eq!(suspended.suspension.as_deref(), Some("SUSPENDED"));
    assert_eq!(suspended.snapshot.customer_id.as_str(), "suspended-1");
    assert!(matches!(
        directory
            .lookup(&t1, &CustomerId::new("closed-1"))
            .await
            .unwrap_err(),
        CrmError::NotEligible { .. }
    ));
    for (fault, check) in [
        (Fault::Unauthorized, C::SecurityConfiguration),
        (Fault::ServerError, C::TechnicalRetryable),
        (Fault::MalformedBody, C::SchemaMismatch),
        (Fault::TimeoutBeforeApply, C::Unknown),
        (Fault::UnknownExternalStatus, C::Unclassified),
    ] {
        s.sims.script(
            TargetSystem::Crm,
            Script::ForKey {
                key: "c9".into(),
                faults: vec![fault],
            },
        );
        let err = directory
            .lookup(&t1, &CustomerId::new("c9"))
            .await
            .unwrap_err();
        assert_eq!(err.class(), check, "{fault:?}: {err:?}");
        // Only an answer nobody can read holds a quote in integration
        // fallout; an outage or refused credentials do not.
        assert_eq!(
            err.is_unreadable(),
            matches!(check, C::SchemaMismatch | C::Unclassified),
            "{fault:?}: {err:?}"
        );
    }
    assert_eq!(
        directory
            .lookup(&TenantId::new("t9"), &CustomerId::new("c1"))
            .await
            .unwrap_err(),
        CrmError::NotConfigured
    );
    s.sims.shutdown().await;
}

/// Starts the simulators on `journal`, calling back to a receiver that
/// answers 200, with one configured tenant `t1`.
async fn journaled(journal: &std::path::Path) -> (Setup, tokio::task::JoinHandle<()>) {
    use axum::routing::post;
    let sims = Simulators::start(SimulatorOptions {
        journal_dir: Some(journal.to_path_buf()),
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    let app = axum::Router::new().route("/callbacks/{system}", post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    sims.set_callback_target(
        url,
        simulators::SigningKeys::single("restart-secret-00000001"),
    );
    let config = sims.systems_config(&["t1"], "restart-secret-00000001");
    let port = HttpSystems::from_config(&config, Arc::new(SystemClock)).unwrap();
    (Setup { sims, port, config }, receiver)
}

/// The callback lines of the journal, as (key, message id, status).
fn journal_callbacks(journal: &std::path::Path) -> Vec<(String, String, Option<u16>)> {
    simulators::journal::read(&journal.join("journal.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|line| match line {
            simulators::journal::JournalLine::Callback {
                key,
                message_id,
                status,
                ..
            } => Some((key, message_id, status)),
            _ => None,
        })
        .collect()
}

async fn wait_for_callbacks(journal: &std::path::Path, count: usize) {
    for _ in 0..200 {
        if journal_callbacks(journal).len() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{count} callbacks were not delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_message_ids_are_unique_across_restarts_and_ledgers_survive_them() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("simulators");
    let reserve = |key: &str| {
        call(
            TargetSystem::Inventory,
            Purpose::Reserve,
            key,
            billing_request(),
        )
    };

    let (first, receiver) = journaled(&journal).await;
    first
        .port
        .execute(&reserve("t1:o1:l1:inventory:reserve:1"))
        .await
        .unwrap();
    wait_for_callbacks(&journal, 1).await;
    first.sims.shutdown().await;
    receiver.abort();

    // The restarted simulators remember the first key's effect...
    let (second, receiver) = journaled(&journal).await;
    let ledger = second.sims.ledger(TargetSystem::Inventory);
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].effects, 1);
    assert_eq!(ledger[0].state, "CONFIRMED");
    // ...and number their messages apart from the first run's.
    second
        .port
        .execute(&reserve("t1:o2:l1:inventory:reserve:1"))
        .await
        .unwrap();
    wait_for_callbacks(&journal, 2).await;
    let callbacks = journal_callbacks(&journal);
    assert_ne!(callbacks[0].1, callbacks[1].1, "{callbacks:?}");
    assert!(callbacks.iter().all(|c| c.2 == Some(200)), "{callbacks:?}");
    // A resend of the first key after the restart is a doubled effect, and
    // it is counted across the restart.
    second
        .port
        .execute(&reserve("t1:o1:l1:inventory:reserve:1"))
        .await
        .unwrap();
    assert_eq!(second.sims.duplicate_side_effects(), 1);
    second.sims.shutdown().await;
    receiver.abort();
}

#[test]
fn a_fault_mix_parses_from_its_names_and_refuses_unknown_ones() {
    let mix: simulators::FaultMix = "TimeoutAfterApply=500, BusinessReject=200".parse().unwrap();
    assert_eq!(
        mix.weights(),
        &[
            (Fault::TimeoutAfterApply, 500),
            (Fault::BusinessReject, 200)
        ]
    );
    for fault in Fault::ALL {
        assert_eq!(fault.name().parse::<Fault>().unwrap(), fault);
    }
    assert!("Explode=1".parse::<simulators::FaultMix>().is_err());
    assert!("BusinessReject=9000,DropCallback=2000"
        .parse::<simulators::FaultMix>()
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_a_capability_the_registry_turns_off_is_never_sent() {
    let s = setup().await;
    let mut config = s.config.clone();
    if let Some(t) = config.tenants.get_mut("t1") {
        t.capabilities.insert(
            "INVENTORY_RELEASE".into(),
            integration::config::CapabilityConfig {
                enabled: false,
                settings: Default::default(),
            },
        );
    }
    let port = HttpSystems::from_config(&config, Arc::new(SystemClock)).unwrap();
    let before = s.sims.requests(TargetSystem::Inventory);
    let refused = port
        .execute(&call(
            TargetSystem::Inventory,
            Purpose::Release,
            "t1:o1:l1:inventory:release:1",
            RequestSnapshot::default(),
        ))
        .await;
    assert!(
        matches!(
            refused,
            Err(PortError::CapabilityDisabled {
                capability: domain::capability::Capability::InventoryRelease,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        s.sims.requests(TargetSystem::Inventory),
        before,
        "no request left"
    );
    // The reservation, still enabled, is sent.
    let sent = port
        .execute(&call(
            TargetSystem::Inventory,
            Purpose::Reserve,
            "t1:o1:l1:inventory:reserve:1",
            RequestSnapshot::default(),
        ))
        .await
        .unwrap();
    assert_eq!(sent.class, C::Succeeded);
    assert_eq!(s.sims.requests(TargetSystem::Inventory), before + 1);
    s.sims.shutdown().await;
}
