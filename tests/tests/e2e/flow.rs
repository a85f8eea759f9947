//! The fulfillment flows, which need the external-system runtime: a quote
//! becomes a completed order; a rejected step falls out and an operator
//! brings it back with a new attempt; orders are isolated by tenant.
//!
//! They poll the read models with a deadline.

use std::time::{Duration, Instant};

use tests::ops::{self, add_quote_line, resolve_fallout};
use tests::{unique, Client, Server, ServerOptions, Tenants};

/// How long fulfillment may take end to end in a test.
const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `probe` every 200 ms until it returns `Some`, or panics with `what`
/// and the last thing seen after [`DEADLINE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?} (is the fulfillment runtime wired?); last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first page (200) of the orders `token` sees.
pub(crate) async fn orders_page(
    client: &Client,
    token: &str,
) -> Result<Vec<ops::orders::OrdersOrdersNodes>, String> {
    client
        .run::<ops::Orders>(
            token,
            ops::orders::Variables {
                status: None,
                has_fallout: None,
                first: Some(200),
                after: None,
            },
        )
        .await
        .map(|data| data.orders.nodes)
        .map_err(|e| format!("{e:?}"))
}

/// The order captured from `quote`, found in the `orders` list.
pub(crate) async fn order_of(client: &Client, token: &str, quote: &str) -> String {
    eventually(&format!("an order for quote {quote}"), || async {
        let orders = orders_page(client, token).await?;
        orders
            .iter()
            .find(|o| o.quote_id == quote)
            .map(|o| o.id.clone())
            .ok_or_else(|| format!("{} orders, none of {quote}", orders.len()))
    })
    .await
}

async fn order_detail(
    client: &Client,
    token: &str,
    order: &str,
) -> Result<ops::order::OrderOrder, String> {
    client
        .run::<ops::Order>(
            token,
            ops::order::Variables {
                id: order.to_owned(),
            },
        )
        .await
        .map_err(|e| format!("{e:?}"))?
        .order
        .ok_or_else(|| format!("order {order} not found"))
}

async fn order_with_status(
    client: &Client,
    token: &str,
    order: &str,
    status: ops::order::OrderStatus,
) -> ops::order::OrderOrder {
    eventually(&format!("order {order} {status:?}"), || async {
        let detail = order_detail(client, token, order).await?;
        if detail.status == status {
            Ok(detail)
        } else {
            Err(format!(
                "{:?} (fallout {}): {:?}",
                detail.status, detail.has_fallout, detail.lines
            ))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_quote_becomes_a_completed_order() {
    let server = Server::start();
    let client = &server.client;
    let (sales, viewer) = (server.token("sales"), server.token("viewer"));
    let quote = client
        .accepted_quote(&sales, "cust-flow", &["fiber-1g", "sdwan-edge"])
        .await
        .unwrap();
    let order = order_of(client, &viewer, &quote).await;
    let completed =
        order_with_status(client, &viewer, &order, ops::order::OrderStatus::COMPLETED).await;
    let lines: Vec<&str> = completed
        .lines
        .iter()
        .flatten()
        .map(|line| line.id.as_str())
        .collect();
    assert_eq!(lines, ["line-1", "line-2"], "{completed:?}");
    assert_eq!(completed.quote_id, quote);

    let detail = order_detail(client, &viewer, &order).await.unwrap();
    assert!(!detail.has_fallout);
    let node = client
        .run::<ops::Node>(
            &viewer,
            ops::node::Variables {
                id: format!("Order:{order}"),
            },
        )
        .await
        .unwrap();
    assert!(node.node.is_some());
    // Every handoff of the order reached an outcome.
    let handoffs = client
        .run::<ops::Handoffs>(
            &viewer,
            ops::handoffs::Variables {
                pending_only: Some(true),
                first: Some(200),
            },
        )
        .await
        .unwrap();
    assert!(
        handoffs.handoffs.nodes.iter().all(|h| h.order_id != order),
        "no handoff of a completed order is pending"
    );
    let verified = client
        .run::<ops::VerifyLog>(&server.token("admin"), ops::verify_log::Variables {})
        .await
        .unwrap();
    assert!(
        tests::answered(verified.verify_log.as_ref()).ok,
        "{:?}",
        tests::answered(verified.verify_log.as_ref())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_step_falls_out_and_an_operator_resolves_it() {
    let server = Server::start();
    let client = &server.client;
    let (sales, viewer, operator) = (
        server.token("sales"),
        server.token("viewer"),
        server.token("operator"),
    );
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-fallout")
        .await
        .unwrap();
    // The inventory simulator business-rejects the next reservation.
    server
        .script_simulator("inventory", &["BusinessReject"])
        .await;
    let rejected = tests::line("line-1", "fiber-1g", 1);
    client
        .run::<ops::AddQuoteLine>(
            &sales,
            add_quote_line::Variables {
                command_id: unique("add"),
                quote_id: quote.clone(),
                expected_version: None,
                line: rejected,
            },
        )
        .await
        .unwrap();
    client.price(&sales, &quote, "5").await.unwrap();
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    let order = order_of(client, &viewer, &quote).await;

    // The case shows in the fallout queue and on the order.
    let case = eventually(&format!("a fallout case of order {order}"), || async {
        let queue = client
            .run::<ops::Fallout>(
                &viewer,
                ops::fallout::Variables {
                    resolved: None,
                    first: Some(200),
                    after: None,
                },
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
        queue
            .fallout
            .nodes
            .into_iter()
            .find(|c| c.order_id == order)
            .ok_or_else(|| "no open case".to_owned())
    })
    .await;
    let detail = order_detail(client, &viewer, &order).await.unwrap();
    assert!(detail.has_fallout, "{:?}", detail.lines);
    assert_eq!(detail.status, ops::order::OrderStatus::OPEN);
    let flagged = client
        .run::<ops::Orders>(
            &viewer,
            ops::orders::Variables {
                status: None,
                has_fallout: Some(true),
                first: Some(200),
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(flagged.orders.nodes.iter().any(|o| o.id == order));

    // Sales may not resolve it; the operator does, with a new attempt.
    let resolve = |token: &str| {
        let vars = resolve_fallout::Variables {
            command_id: unique("resolve"),
            order_id: order.clone(),
            expected_version: None,
            line_id: "line-1".to_owned(),
            action: resolve_fallout::FalloutAction::NEW_ATTEMPT,
            reference: None,
            note: None,
        };
        let token = token.to_owned();
        async move { client.run::<ops::ResolveFallout>(&token, vars).await }
    };
    let error = resolve(&sales).await.unwrap_err();
    assert_eq!(error.code(), "FORBIDDEN");
    let resolved = resolve(&operator).await.unwrap();
    assert!(!tests::answered(resolved.resolve_fallout.as_ref()).deduplicated);

    order_with_status(client, &viewer, &order, ops::order::OrderStatus::COMPLETED).await;
    let detail = order_detail(client, &viewer, &order).await.unwrap();
    assert!(!detail.has_fallout);
    let closed = client
        .run::<ops::Fallout>(
            &viewer,
            ops::fallout::Variables {
                resolved: Some(true),
                first: Some(200),
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(
        closed
            .fallout
            .nodes
            .iter()
            .any(|c| c.handoff_id == case.handoff_id),
        "the case is in the resolved queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_isolated_by_tenant() {
    let server = Server::start_with(ServerOptions {
        tenants: Some(Tenants::new(&["acme", "globex"])),
        ..ServerOptions::default()
    });
    let client = &server.client;
    let quote = client
        .accepted_quote(
            &server.tenant_token("acme", "sales"),
            "cust-a",
            &["fiber-1g"],
        )
        .await
        .unwrap();
    let order = order_of(client, &server.tenant_token("acme", "viewer"), &quote).await;

    for role in tests::ROLES {
        let token = server.tenant_token("globex", role);
        let seen = client
            .run::<ops::Order>(&token, ops::order::Variables { id: order.clone() })
            .await
            .unwrap();
        assert!(seen.order.is_none(), "{role} sees a foreign order");
        let node = client
            .run::<ops::Node>(
                &token,
                ops::node::Variables {
                    id: format!("Order:{order}"),
                },
            )
            .await
            .unwrap();
        assert!(node.node.is_none());
        let list = orders_page(client, &token).await.unwrap();
        assert!(list.iter().all(|o| o.id != order));
    }
    let operator = server.tenant_token("globex", "operator");
    let error = client
        .run::<ops::CancelOrder>(
            &operator,
            ops::cancel_order::Variables {
                command_id: unique("cancel"),
                order_id: order.clone(),
                expected_version: None,
                reason: "not mine".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "NOT_FOUND");
    let error = client
        .run::<ops::ResolveFallout>(
            &operator,
            resolve_fallout::Variables {
                command_id: unique("resolve"),
                order_id: order.clone(),
                expected_version: None,
                line_id: "line-1".to_owned(),
                action: resolve_fallout::FalloutAction::CANCEL_LINE,
                reference: None,
                note: Some("not mine".to_owned()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "NOT_FOUND");
    // The owner's operator may act on it.
    let own = client
        .run::<ops::CancelOrder>(
            &server.tenant_token("acme", "operator"),
            ops::cancel_order::Variables {
                command_id: unique("cancel"),
                order_id: order.clone(),
                expected_version: None,
                reason: "customer changed their mind".to_owned(),
            },
        )
        .await;
    assert!(
        own.as_ref()
            .map(|_| true)
            .unwrap_or_else(|e| e.code() == "RULE_VIOLATION"),
        "{own:?}"
    );
}

/// A one-line quote of `tenant` taken to an order; the tenant's viewer
/// token and the order's id.
async fn tenant_order(server: &Server, tenant: &str) -> (String, String) {
    let viewer = server.tenant_token(tenant, "viewer");
    let quote = server
        .client
        .accepted_quote(
            &server.tenant_token(tenant, "sales"),
            &format!("cust-{tenant}"),
            &["fiber-1g"],
        )
        .await
        .unwrap();
    let order = order_of(&server.client, &viewer, &quote).await;
    (viewer, order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_script_reaches_only_the_scripting_tenants_calls() {
    let server = Server::start_with(ServerOptions {
        tenants: Some(Tenants::new(&["acme", "globex"])),
        ..ServerOptions::default()
    });
    let client = &server.client;
    // globex's admin scripts a rejection of the next inventory reservation.
    client
        .run::<ops::ScriptSimulator>(
            &server.tenant_token("globex", "admin"),
            ops::script_simulator::Variables {
                system: "inventory".to_owned(),
                faults: vec!["BusinessReject".to_owned()],
            },
        )
        .await
        .unwrap();
    // acme's order does not take it: it completes.
    let (acme, order) = tenant_order(&server, "acme").await;
    let done = order_with_status(client, &acme, &order, ops::order::OrderStatus::COMPLETED).await;
    assert!(!done.has_fallout, "{:?}", done.lines);
    // globex's next order does: its line falls out.
    let (globex, order) = tenant_order(&server, "globex").await;
    eventually(&format!("order {order} in fallout"), || async {
        let detail = order_detail(client, &globex, &order).await?;
        detail
            .has_fallout
            .then_some(())
            .ok_or_else(|| format!("{:?}: {:?}", detail.status, detail.lines))
    })
    .await;
}

/// An operator's action that settles an order's last line answers with
/// the order as it ends, as `acceptQuote` answers with the order it
/// captures. A probe's `CANCEL_LINE` of a one-line order in fallout
/// answered `status: OPEN` in two runs of three: the order's end
/// (`OrderCancelled`, "every line was cancelled") is the process
/// manager's reaction, appended just after the command's own events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_last_line_answers_with_the_order_cancelled() {
    let server = Server::start();
    let client = &server.client;
    let viewer = server.token("viewer");
    for round in 0..3 {
        server
            .script_simulator("inventory", &["BusinessReject"])
            .await;
        let quote = client
            .accepted_quote(
                &server.token("sales"),
                &format!("cust-last-{round}"),
                &["fiber-1g"],
            )
            .await
            .unwrap();
        let order = order_of(client, &viewer, &quote).await;
        let line = eventually(&format!("order {order} in fallout"), || async {
            let detail = order_detail(client, &viewer, &order).await?;
            match (
                detail.has_fallout,
                detail.lines.as_ref().and_then(|l| l.first()),
            ) {
                (true, Some(line)) => Ok(line.id.clone()),
                _ => Err(format!("{:?}: {:?}", detail.status, detail.lines)),
            }
        })
        .await;
        let (_, body) = client
            .raw(
                &server.token("operator"),
                "mutation($c: String!, $o: String!, $l: String!) { resolveFallout(commandId: $c, \
                 orderId: $o, lineId: $l, action: CANCEL_LINE, note: \"customer left\") \
                 { order { status cancelReason } } }",
                serde_json::json!({"c": unique("cancel-last"), "o": order, "l": line}),
            )
            .await;
        let answered = &body["data"]["resolveFallout"]["order"];
        assert_eq!(answered["status"], "CANCELLED", "round {round}: {body}");
        assert_eq!(
            answered["cancelReason"], "every line was cancelled",
            "{body}"
        );
    }
}
