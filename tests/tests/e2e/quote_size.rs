//! A quote is only as large as the events that carry all of its lines to
//! an order: `QuoteAccepted` and `OrderCaptured` each carry every line
//! with its options and charges, and the log takes at most 64 KiB per
//! event. The quote refuses the line that would take it past that, by a
//! rule, when the line is added; whatever it took is accepted and
//! captured as an order.

use tests::ops::{self, add_quote_line};
use tests::{unique, Client, GqlError, Server};

/// A line with as many options as a line carries, names of 64 bytes and
/// values of `value_bytes`.
fn line_with_options(
    line_id: &str,
    options: usize,
    value_bytes: usize,
) -> add_quote_line::LineInput {
    let mut line = tests::line(line_id, "fiber-1g", 1);
    line.options = (0..options)
        .map(|i| add_quote_line::OptionInput {
            name: format!("{i:02}{}", "n".repeat(62)),
            value: "v".repeat(value_bytes),
        })
        .collect();
    line
}

async fn add(
    client: &Client,
    token: &str,
    quote: &str,
    line: add_quote_line::LineInput,
) -> Result<(), GqlError> {
    client
        .run::<ops::AddQuoteLine>(
            token,
            ops::add_quote_line::Variables {
                command_id: unique("add"),
                quote_id: quote.to_owned(),
                expected_version: None,
                line,
            },
        )
        .await
        .map(|_| ())
}

/// Adds lines of one shape while the quote takes them; how many it took,
/// and the refusal that stopped it.
async fn fill(
    client: &Client,
    token: &str,
    quote: &str,
    lines: &mut usize,
    shape: impl Fn(&str) -> add_quote_line::LineInput,
) -> GqlError {
    loop {
        match add(client, token, quote, shape(&format!("line-{lines}"))).await {
            Ok(()) => *lines += 1,
            Err(refused) => return refused,
        }
        assert!(
            *lines < 1_000,
            "{lines} lines taken: the quote has no size limit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_refuses_the_line_its_order_could_not_carry_and_what_it_took_becomes_an_order() {
    let server = Server::start();
    let client = &server.client;
    let sales = server.token("sales");
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-size")
        .await
        .unwrap();
    // Fill the quote with the heaviest lines, then lighter and lighter
    // ones, so it ends as close to its limit as lines come.
    let mut lines = 0;
    for (options, value_bytes) in [(32, 256), (32, 64), (8, 16), (0, 0)] {
        let refused = fill(client, &sales, &quote, &mut lines, |id| {
            line_with_options(id, options, value_bytes)
        })
        .await;
        assert_eq!(refused.code(), "RULE_VIOLATION", "{refused:?}");
        assert_eq!(refused.extensions["rule"], "quote_too_large", "{refused:?}");
    }
    assert!(lines >= 5, "only {lines} lines fit");
    // Everything it took is priced, signed, accepted and captured.
    let version = client.price(&sales, &quote, "5").await.unwrap();
    assert!(version > 0);
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    crate::flow::order_of(client, &sales, &quote).await;
}

/// The most lines a quote takes, each as light as lines come, all the way
/// to a completed order: every read model and consumer reads every event
/// those lines ride in (a 140-line quote once stopped the orders and
/// fallout projectors and the fulfillment process for every tenant: its
/// events were written but did not decode), and the order's confirmation,
/// which names each line's fields, fits the log too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_of_the_most_light_lines_it_takes_becomes_a_completed_order_every_reader_follows() {
    let server = Server::start();
    let client = &server.client;
    let (sales, admin) = (server.token("sales"), server.token("admin"));
    let quote = client
        .create_quote(&sales, &unique("create"), "cust-many-lines")
        .await
        .unwrap();
    let mut lines = 0;
    let refused = fill(client, &sales, &quote, &mut lines, |id| {
        tests::line(id, "fiber-1g", 1)
    })
    .await;
    assert_eq!(refused.extensions["rule"], "quote_too_large", "{refused:?}");
    assert!(lines >= 100, "only {lines} light lines fit");
    client.price(&sales, &quote, "5").await.unwrap();
    client.propose_and_sign(&sales, &quote, 1).await.unwrap();
    client.accept(&sales, &quote).await.unwrap();
    let order = crate::flow::order_of(client, &sales, &quote).await;
    crate::flow::eventually(
        &format!("order {order} of {lines} lines completed and confirmed"),
        || async {
            let (status, body) = client
                .raw(
                    &admin,
                    "query($id: String!) { order(id: $id) { status }
                   projectors { name failure }
                   consumers { fulfillment { name lastError failure } } }",
                    serde_json::json!({ "id": order }),
                )
                .await;
            let data = &body["data"];
            let stopped: Vec<String> = data["projectors"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(
                    data["consumers"]["fulfillment"]
                        .as_array()
                        .into_iter()
                        .flatten(),
                )
                .filter(|p| {
                    !p["failure"].is_null() || !p.get("lastError").is_none_or(|e| e.is_null())
                })
                .map(|p| p.to_string())
                .collect();
            assert!(
                stopped.is_empty(),
                "readers stopped or retrying: {stopped:?}"
            );
            match data["order"]["status"].as_str() {
                Some("COMPLETED") => Ok(()),
                other => Err(format!("{status}: order {other:?}, {body}")),
            }
        },
    )
    .await;
    let verified = client
        .run::<tests::ops::VerifyLog>(&admin, tests::ops::verify_log::Variables {})
        .await
        .unwrap();
    assert!(
        tests::answered(verified.verify_log.as_ref()).ok,
        "{:?}",
        tests::answered(verified.verify_log.as_ref())
    );
}
