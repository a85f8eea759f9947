//! Signed callbacks, the inbox, parking and tenants (security and tenant
//! rows of the seeds' test table).

use std::future::IntoFuture;
use std::sync::Arc;

use application::clock::{Clock, SystemClock};
use application::{CommandContext, CommandPath};
use domain::handoff::{HandoffCommand, HandoffState, HandoffStatus, HandoffSubject};
use domain::idempotency::{CommandKey, Purpose, TargetSystem};
use domain::ids::{handoff_stream, TenantId, Timestamp};
use domain::testing::fixtures::{request, subject};
use domain::HandoffDecider;
use eventlog::{Durability, EventLog, LogConfig};
use integration::callbacks::{CallbackInbox, ReceiptStatus, RejectionReason};
use integration::config::{SystemConfig, SystemsConfig};
use integration::metrics::Metrics;
use integration::signing::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};

const CURRENT: &str = "current-secret-000000001";
const PREVIOUS: &str = "previous-secret-00000002";
const T2_SECRET: &str = "tenant-two-secret-000003";

struct Inbox {
    _dir: tempfile::TempDir,
    path: CommandPath,
    inbox: CallbackInbox,
    metrics: Arc<Metrics>,
}

fn system(secrets: &[&str]) -> SystemConfig {
    let mut c = SystemConfig::new("http://127.0.0.1:9");
    c.callback_secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
    c
}

fn inbox() -> Inbox {
    inbox_expiring_after(10 * 60 * 1_000)
}

fn inbox_expiring_after(parked_expiry_ms: u64) -> Inbox {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
    let path = CommandPath::new(log);
    let config = SystemsConfig::default()
        .with_system("t1", TargetSystem::Inventory, system(&[CURRENT, PREVIOUS]))
        .with_system("t1", TargetSystem::Provisioning, system(&[CURRENT]))
        .with_system("t2", TargetSystem::Inventory, system(&[T2_SECRET]));
    let mut config = config;
    config.reconciliation.parked_callback_expiry_ms = parked_expiry_ms;
    config.validate().unwrap();
    let metrics = Arc::new(Metrics::default());
    let inbox = CallbackInbox::new(
        path.clone(),
        Arc::new(config),
        metrics.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    Inbox {
        _dir: dir,
        path,
        inbox,
        metrics,
    }
}

fn now() -> i64 {
    SystemClock.now_ms()
}

fn body(message_id: &str, tenant: &str, key: &str, state: &str) -> Vec<u8> {
    serde_json::json!({
        "eventId": message_id,
        "tenant": tenant,
        "reservationKey": key,
        "state": state,
        "reservationId": "res-1",
    })
    .to_string()
    .into_bytes()
}

fn reserve() -> HandoffSubject {
    subject("l1", Purpose::Reserve, 1)
}

async fn open_handoff(path: &CommandPath, subject: &HandoffSubject, dispatched: bool) {
    let stream = handoff_stream(&subject.handoff_id());
    let request = HandoffCommand::Request {
        subject: subject.clone(),
        request: request(),
        at: Timestamp(1),
    };
    path.execute::<HandoffDecider>(
        &stream,
        &request,
        &CommandContext::new(
            CommandKey::client(
                &subject.tenant_id,
                format!("open-{}", subject.idempotency_key()),
            ),
            subject.tenant_id.as_str(),
            "corr",
        ),
    )
    .await
    .unwrap();
    if dispatched {
        path.execute::<HandoffDecider>(
            &stream,
            &HandoffCommand::RecordDispatch { at: Timestamp(2) },
            &CommandContext::new(
                CommandKey::client(
                    &subject.tenant_id,
                    format!("send-{}", subject.idempotency_key()),
                ),
                subject.tenant_id.as_str(),
                "corr",
            ),
        )
        .await
        .unwrap();
    }
}

fn status(path: &CommandPath, subject: &HandoffSubject) -> Option<HandoffStatus> {
    match path
        .load::<HandoffDecider>(&handoff_stream(&subject.handoff_id()))
        .unwrap()
        .state
    {
        HandoffState::Open(h) => Some(h.status),
        HandoffState::Empty => None,
    }
}

fn signed(secret: &str, at_ms: i64, body: &[u8]) -> (String, String) {
    let ts = (at_ms / 1_000).to_string();
    let sig = sign(secret.as_bytes(), &ts, body);
    (ts, sig)
}

async fn refused(i: &Inbox, system: &str, ts: &str, sig: &str, body: &[u8]) -> RejectionReason {
    let err = i
        .inbox
        .receive(system, ts, sig, body, now())
        .await
        .unwrap_err();
    assert_eq!(i.metrics.callback_rejections(err.kind()), 1);
    err.kind()
}

#[tokio::test]
async fn a_signed_callback_becomes_an_observation_the_domain_decides_on() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b);
    let receipt = i
        .inbox
        .receive("inventory", &ts, &sig, &b, now())
        .await
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Applied);
    assert_eq!(status(&i.path, &reserve()), Some(HandoffStatus::Succeeded));
}

/// A signed body of the wrong shape is refused with a short detail that
/// quotes none of it: the detail is logged. A probe's 60 KB JSON string
/// came back whole in serde's "invalid type: string ..." message.
#[tokio::test]
async fn a_malformed_body_is_refused_without_quoting_it() {
    let payload = format!("PAYLOAD-{}", "A".repeat(60_000));
    let field = format!("field-{}", "B".repeat(5_000));
    for b in [
        serde_json::to_vec(&payload).unwrap(),
        format!("{{\"{field}\": 1}}").into_bytes(),
        format!("{{\"event_id\": [\"{payload}\"]}}").into_bytes(),
        format!("not json {payload}").into_bytes(),
    ] {
        let i = inbox();
        let (ts, sig) = signed(CURRENT, now(), &b);
        let err = i
            .inbox
            .receive("inventory", &ts, &sig, &b, now())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RejectionReason::Malformed);
        let detail = err.detail();
        assert!(
            detail.len() <= 300,
            "{} bytes: {}",
            detail.len(),
            &detail[..300.min(detail.len())]
        );
        assert!(
            !detail.contains("AAAA") && !detail.contains("BBBB"),
            "{detail}"
        );
        assert!(detail.starts_with("inventory callback"), "{detail}");
    }
}

/// A message id is 1 to 128 bytes with no control or invisible
/// character: it becomes part of the inbox's key and the log. A probe's
/// signed `"e\u{0}\u{202e}"` was applied and echoed back.
#[tokio::test]
async fn a_message_id_with_a_control_or_invisible_character_is_malformed() {
    let long = "m".repeat(129);
    for id in [
        "",
        long.as_str(),
        "e\u{0}",
        "e\u{202e}x",
        "line\nbreak",
        "zero\u{200b}width",
    ] {
        let i = inbox();
        open_handoff(&i.path, &reserve(), true).await;
        let b = body(id, "t1", &reserve().idempotency_key(), "CONFIRMED");
        let (ts, sig) = signed(CURRENT, now(), &b);
        assert_eq!(
            refused(&i, "inventory", &ts, &sig, &b).await,
            RejectionReason::Malformed,
            "{id:?}"
        );
        assert_eq!(
            status(&i.path, &reserve()),
            Some(HandoffStatus::Sent),
            "{id:?}"
        );
    }
    // Spaces, accents and other scripts are ids like any other.
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body(
        "évènement 7 – 東京",
        "t1",
        &reserve().idempotency_key(),
        "CONFIRMED",
    );
    let (ts, sig) = signed(CURRENT, now(), &b);
    let receipt = i
        .inbox
        .receive("inventory", &ts, &sig, &b, now())
        .await
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Applied);
}

#[tokio::test]
async fn an_invalid_signature_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let ts = (now() / 1_000).to_string();
    let reason = refused(&i, "inventory", &ts, "v1=00112233", &b).await;
    assert_eq!(reason, RejectionReason::BadSignature);
    assert_eq!(reason.http_status(), 401);
    assert_eq!(
        refused(&Inbox { ..inbox() }, "inventory", &ts, "", &b).await,
        RejectionReason::MissingSignature
    );
    assert_eq!(status(&i.path, &reserve()), Some(HandoffStatus::Sent));
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed("some-other-secret-000000", now(), &b);
    assert_eq!(
        refused(&i, "inventory", &ts, &sig, &b).await,
        RejectionReason::BadSignature
    );
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "REJECTED");
    let (ts, sig) = signed(CURRENT, now(), &b);
    let tampered = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    assert_eq!(
        refused(&i, "inventory", &ts, &sig, &tampered).await,
        RejectionReason::BadSignature
    );
    // A tampered timestamp too.
    let later = (now() / 1_000 + 1).to_string();
    assert_eq!(
        i.inbox
            .receive("inventory", &later, &sig, &b, now())
            .await
            .unwrap_err()
            .kind(),
        RejectionReason::BadSignature
    );
}

#[tokio::test]
async fn a_stale_timestamp_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now() - 6 * 60 * 1_000, &b);
    assert_eq!(
        refused(&i, "inventory", &ts, &sig, &b).await,
        RejectionReason::StaleTimestamp
    );
    // Four minutes old is within the skew.
    let (ts, sig) = signed(CURRENT, now() - 4 * 60 * 1_000, &b);
    assert!(i
        .inbox
        .receive("inventory", &ts, &sig, &b, now())
        .await
        .is_ok());
}

#[tokio::test]
async fn a_future_timestamp_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now() + 6 * 60 * 1_000, &b);
    assert_eq!(
        refused(&i, "inventory", &ts, &sig, &b).await,
        RejectionReason::FutureTimestamp
    );
    assert_eq!(
        refused(&inbox(), "inventory", "yesterday", &sig, &b).await,
        RejectionReason::BadTimestamp
    );
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_rotation() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(PREVIOUS, now(), &b);
    let receipt = i
        .inbox
        .receive("inventory", &ts, &sig, &b, now())
        .await
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Applied);
}

#[tokio::test]
async fn a_tenant_mismatch_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    // Signed by tenant t2, speaking for t1.
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(T2_SECRET, now(), &b);
    assert_eq!(
        refused(&i, "inventory", &ts, &sig, &b).await,
        RejectionReason::TenantMismatch
    );
    // Signed by t2 about t2, but the key is t1's handoff.
    let b = body("m2", "t2", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(T2_SECRET, now(), &b);
    let err = i
        .inbox
        .receive("inventory", &ts, &sig, &b, now())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RejectionReason::TenantMismatch);
    assert_eq!(err.http_status(), 403);
    assert_eq!(status(&i.path, &reserve()), Some(HandoffStatus::Sent));
}

#[tokio::test]
async fn a_callback_for_another_system_or_an_unknown_one_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    // An inventory key delivered on the provisioning endpoint.
    let b = serde_json::json!({
        "msgId": "m1", "tenantId": "t1", "idemKey": reserve().idempotency_key(),
        "status": "DONE", "errCd": null, "provTxnRef": "p1",
    })
    .to_string()
    .into_bytes();
    let (ts, sig) = signed(CURRENT, now(), &b);
    assert_eq!(
        refused(&i, "provisioning", &ts, &sig, &b).await,
        RejectionReason::SystemMismatch
    );
    assert_eq!(
        refused(&inbox(), "erp", &ts, &sig, &b).await,
        RejectionReason::UnknownSystem
    );
    // Authenticated but not an inventory callback.
    let (ts, sig) = signed(CURRENT, now(), b"{\"hello\":1}");
    assert_eq!(
        refused(&inbox(), "inventory", &ts, &sig, b"{\"hello\":1}").await,
        RejectionReason::Malformed
    );
}

#[tokio::test]
async fn a_redelivery_is_a_no_op_and_a_reused_message_id_is_refused() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let key = reserve().idempotency_key();
    let b = body("m1", "t1", &key, "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b);
    assert_eq!(
        i.inbox
            .receive("inventory", &ts, &sig, &b, now())
            .await
            .unwrap()
            .status,
        ReceiptStatus::Applied
    );
    let head = i.path.log().next_position();
    // The same message again, later: nothing written.
    let (ts2, sig2) = signed(CURRENT, now() + 1_000, &b);
    assert_eq!(
        i.inbox
            .receive("inventory", &ts2, &sig2, &b, now())
            .await
            .unwrap()
            .status,
        ReceiptStatus::Duplicate
    );
    assert_eq!(i.path.log().next_position(), head);
    // The same id with another payload: refused.
    let other = body("m1", "t1", &key, "REJECTED");
    let (ts, sig) = signed(CURRENT, now(), &other);
    let err = i
        .inbox
        .receive("inventory", &ts, &sig, &other, now())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RejectionReason::DuplicateConflict);
    assert_eq!(err.http_status(), 409);
    // Another message with the same outcome changes nothing either.
    let same = body("m2", "t1", &key, "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &same);
    assert_eq!(
        i.inbox
            .receive("inventory", &ts, &sig, &same, now())
            .await
            .unwrap()
            .status,
        ReceiptStatus::NoChange
    );
    assert_eq!(i.path.log().next_position(), head);
    assert_eq!(status(&i.path, &reserve()), Some(HandoffStatus::Succeeded));
}

#[tokio::test]
async fn a_client_command_id_cannot_occupy_a_callbacks_inbox_key() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    // Tenant `cb` (and t2) send commands whose ids spell t1's inbox key in
    // every way a string could: old format, new format, bare.
    let genuine = CommandKey::callback(&TenantId::new("t1"), TargetSystem::Inventory, "m9");
    let forged = [
        (TenantId::new("cb"), "inventory:t1:m9".to_owned()),
        (TenantId::new("t2"), "cb:inventory:t1:m9".to_owned()),
        (TenantId::new("t2"), genuine.encode()),
    ];
    for (n, (tenant, command_id)) in forged.into_iter().enumerate() {
        let other = subject(&format!("forged-{n}"), Purpose::Reserve, 1);
        i.path
            .execute::<HandoffDecider>(
                &handoff_stream(&other.handoff_id()),
                &HandoffCommand::Request {
                    subject: other.clone(),
                    request: request(),
                    at: Timestamp(1),
                },
                &CommandContext::new(
                    CommandKey::client(&tenant, command_id),
                    tenant.as_str(),
                    "corr",
                ),
            )
            .await
            .unwrap();
    }
    // t1's genuine, correctly signed callback m9 is applied, not refused.
    let b = body("m9", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b);
    let receipt = i
        .inbox
        .receive("inventory", &ts, &sig, &b, now())
        .await
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Applied);
    assert_eq!(status(&i.path, &reserve()), Some(HandoffStatus::Succeeded));
}

#[tokio::test]
async fn a_parked_callback_past_its_expiry_becomes_fallout_with_its_evidence() {
    let i = inbox_expiring_after(100);
    let never_sent = subject("l2", Purpose::Reserve, 1);
    open_handoff(&i.path, &never_sent, false).await;
    let orphan = subject("l9", Purpose::Reserve, 1);
    for (message, key) in [
        ("m1", never_sent.idempotency_key()),
        ("m2", orphan.idempotency_key()),
    ] {
        let b = body(message, "t1", &key, "CONFIRMED");
        let (ts, sig) = signed(CURRENT, now(), &b);
        let receipt = i
            .inbox
            .receive("inventory", &ts, &sig, &b, now())
            .await
            .unwrap();
        assert_eq!(receipt.status, ReceiptStatus::Parked);
    }
    assert_eq!(i.inbox.apply_parked().await.unwrap(), 0);
    assert_eq!(i.inbox.parked_count(), 2, "not expired yet");
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    i.inbox.apply_parked().await.unwrap();
    assert_eq!(i.inbox.parked_count(), 0);
    assert_eq!(i.metrics.snapshot().callbacks_expired, 2);
    let HandoffState::Open(handoff) = i
        .path
        .load::<HandoffDecider>(&handoff_stream(&never_sent.handoff_id()))
        .unwrap()
        .state
    else {
        panic!("the handoff exists")
    };
    assert!(
        matches!(
            handoff.status,
            HandoffStatus::Fallout {
                reason: domain::outcome::FalloutReason::LocalImpossible
            }
        ),
        "{:?}",
        handoff.status
    );
    // The orphan's handoff never appeared: nothing was invented for it.
    assert_eq!(status(&i.path, &orphan), None);
}

/// Callback before local wait test: parked, then applied.
#[tokio::test]
async fn a_callback_before_the_local_record_is_parked_then_applied() {
    let i = inbox();
    let first = reserve();
    let second = subject("l2", Purpose::Reserve, 1);
    // No handoff at all yet.
    let b1 = body("m1", "t1", &first.idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b1);
    let receipt = i
        .inbox
        .receive("inventory", &ts, &sig, &b1, now())
        .await
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Parked);
    assert_eq!(receipt.http_status(), 202);
    // The handoff exists but was not sent yet.
    open_handoff(&i.path, &second, false).await;
    let b2 = body("m2", "t1", &second.idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b2);
    assert_eq!(
        i.inbox
            .receive("inventory", &ts, &sig, &b2, now())
            .await
            .unwrap()
            .status,
        ReceiptStatus::Parked
    );
    assert_eq!(i.inbox.parked_count(), 2);
    assert_eq!(
        i.inbox.parked_by_tenant(),
        std::collections::BTreeMap::from([("t1".to_owned(), 2)])
    );
    assert_eq!(
        i.inbox.apply_parked().await.unwrap(),
        0,
        "nothing to apply yet"
    );
    open_handoff(&i.path, &first, true).await;
    i.path
        .execute::<HandoffDecider>(
            &handoff_stream(&second.handoff_id()),
            &HandoffCommand::RecordDispatch { at: Timestamp(3) },
            &CommandContext::new(
                CommandKey::client(&TenantId::new("t1"), "send-2"),
                "t1",
                "corr",
            ),
        )
        .await
        .unwrap();
    assert_eq!(i.inbox.apply_parked().await.unwrap(), 2);
    assert_eq!(i.inbox.parked_count(), 0);
    assert!(i.inbox.parked_by_tenant().is_empty());
    assert_eq!(status(&i.path, &first), Some(HandoffStatus::Succeeded));
    assert_eq!(status(&i.path, &second), Some(HandoffStatus::Succeeded));
    assert_eq!(i.metrics.snapshot().callbacks_unparked, 2);
}

/// A parked callback keeps its first payload: a redelivery parks nothing
/// new, and the same message id with another payload is refused as
/// `duplicate_conflict`, as it is once the handoff exists; what is applied
/// later is the first payload.
#[tokio::test]
async fn a_parked_message_id_with_another_payload_is_a_duplicate_conflict() {
    let i = inbox();
    let first = reserve();
    let confirmed = body("m1", "t1", &first.idempotency_key(), "CONFIRMED");
    let rejected = body("m1", "t1", &first.idempotency_key(), "REJECTED");
    for b in [&confirmed, &confirmed] {
        let (ts, sig) = signed(CURRENT, now(), b);
        let receipt = i.inbox.receive("inventory", &ts, &sig, b, now()).await;
        assert_eq!(receipt.unwrap().status, ReceiptStatus::Parked);
    }
    let (ts, sig) = signed(CURRENT, now(), &rejected);
    let refused = i
        .inbox
        .receive("inventory", &ts, &sig, &rejected, now())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), RejectionReason::DuplicateConflict);
    assert_eq!(refused.http_status(), 409);
    assert_eq!(i.inbox.parked_count(), 1);
    open_handoff(&i.path, &first, true).await;
    assert_eq!(i.inbox.apply_parked().await.unwrap(), 1);
    assert_eq!(status(&i.path, &first), Some(HandoffStatus::Succeeded));
}

/// A signature header of more entries than a sender ever needs is refused
/// unread, even when its last entry is the right signature.
#[tokio::test]
async fn a_signature_header_of_too_many_entries_is_a_bad_signature() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b);
    let padded = format!(
        "{},{sig}",
        ["v1=00"; integration::signing::MAX_SIGNATURE_ENTRIES].join(",")
    );
    let refused = i
        .inbox
        .receive("inventory", &ts, &padded, &b, now())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), RejectionReason::BadSignature);
    let accepted = i.inbox.receive("inventory", &ts, &sig, &b, now()).await;
    assert_eq!(accepted.unwrap().http_status(), 200);
}

#[tokio::test]
async fn the_router_answers_with_the_reason_and_status() {
    let i = inbox();
    open_handoff(&i.path, &reserve(), true).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/callbacks/inventory",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(
        axum::serve(listener, integration::callbacks::router(i.inbox.clone())).into_future(),
    );
    let client = reqwest::Client::new();
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, sig) = signed(CURRENT, now(), &b);
    let bad = client
        .post(&url)
        .header(TIMESTAMP_HEADER, &ts)
        .header(SIGNATURE_HEADER, "v1=00")
        .body(b.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    assert_eq!(
        bad.json::<serde_json::Value>().await.unwrap()["error"],
        "bad_signature"
    );
    let ok = client
        .post(&url)
        .header(TIMESTAMP_HEADER, &ts)
        .header(SIGNATURE_HEADER, &sig)
        .body(b)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let receipt: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(receipt["status"], "applied");
    assert_eq!(receipt["message_id"], "m1");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_survive_a_restart_of_the_fulfillment_process() {
    // An operator's consumer reset stops and restarts the process with the
    // same options: the callback refusals counted before stay counted.
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
    let path = CommandPath::new(log);
    let config =
        SystemsConfig::default().with_system("t1", TargetSystem::Inventory, system(&[CURRENT]));
    let options = integration::FulfillmentOptions {
        reconciliation_loop: false,
        ..integration::FulfillmentOptions::default()
    };
    let first =
        integration::Fulfillment::start(path.clone(), config.clone(), options.clone()).unwrap();
    let b = body("m1", "t1", &reserve().idempotency_key(), "CONFIRMED");
    let (ts, _) = signed(CURRENT, now(), &b);
    let err = first
        .callback_inbox()
        .receive("inventory", &ts, "not-a-signature", &b, now())
        .await
        .unwrap_err();
    let kind = err.kind();
    assert_eq!(first.metrics().callback_rejections(kind), 1);
    first.shutdown().await;
    let second = integration::Fulfillment::start(path.clone(), config, options).unwrap();
    assert_eq!(second.metrics().callback_rejections(kind), 1);
    second.shutdown().await;
    path.log().close().await;
}
