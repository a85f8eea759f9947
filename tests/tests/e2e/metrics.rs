//! `/metrics` as a scraper reads it: the whole exposition parses as the
//! Prometheus text format 0.0.4, each family is declared once and its
//! samples follow its declaration, and the families dashboards use are
//! there with their types and labels.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tests::Server;

/// One parsed family: its type and its samples (sample name, labels).
#[derive(Debug, Default)]
struct Family {
    kind: String,
    samples: Vec<(String, BTreeMap<String, String>)>,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_value(value: &str) -> bool {
    matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok()
}

/// Parses `{k="v",...}` at the start of `rest`; the labels and what follows.
fn labels(rest: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = rest.strip_prefix('{') else {
        return Ok((labels, rest));
    };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("a label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".to_owned()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The sample names a family of `kind` named `family` may have.
fn belongs(family: &str, kind: &str, sample: &str) -> bool {
    match kind {
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| sample.strip_suffix(suffix) == Some(family)),
        _ => sample == family,
    }
}

/// Parses the whole exposition, failing on any line that is not a `# HELP`,
/// `# TYPE` or `# EOF` line or a valid sample of the family declared last,
/// and on a family declared twice.
fn parse(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line == "# EOF" {
            continue;
        }
        if let Some(help) = line.strip_prefix("# HELP ") {
            let name = help.split(' ').next().unwrap_or_default();
            if !is_metric_name(name) || !helped.insert(name.to_owned()) {
                return Err(at("bad or repeated HELP".to_owned()));
            }
            continue;
        }
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declaration
                .split_once(' ')
                .ok_or_else(|| at("TYPE without a type".to_owned()))?;
            if !is_metric_name(name)
                || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
            {
                return Err(at("bad TYPE".to_owned()));
            }
            if families.contains_key(name) {
                return Err(at(format!("family {name} declared twice")));
            }
            families.insert(
                name.to_owned(),
                Family {
                    kind: kind.to_owned(),
                    samples: Vec::new(),
                },
            );
            current = Some(name.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(at("not a sample, HELP, TYPE or EOF".to_owned()));
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..end];
        if !is_metric_name(name) {
            return Err(at("bad metric name".to_owned()));
        }
        let (labels, rest) = labels(&line[end..]).map_err(at)?;
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no value".to_owned()))?;
        if !is_value(value) {
            return Err(at("bad value".to_owned()));
        }
        let family = current
            .as_ref()
            .and_then(|f| families.get_mut(f))
            .ok_or_else(|| at("a sample before any TYPE".to_owned()))?;
        let declared = current.as_deref().unwrap_or_default();
        if !belongs(declared, &family.kind, name) {
            return Err(at(format!("not a sample of the family {declared}")));
        }
        family.samples.push((name.to_owned(), labels));
    }
    Ok(families)
}

async fn scrape(server: &Server) -> (String, String) {
    let response = server
        .client
        .http()
        .get(format!("{}/metrics", server.base_url()))
        .bearer_auth(server.token("operator"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

#[test]
fn the_parser_refuses_what_a_scraper_would() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 2\n";
    assert!(parse(good).is_ok());
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\nb 1\n",
        "# TYPE a_total counter\n# TYPE a_total counter\n",
        "# TYPE a_total counter\na_total{x=\"1} 2\n",
        "# TYPE a_total counter\na_total x\n",
        "# TYPE h histogram\nh_total 1\n",
        "garbage\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_exposition_parses_and_keeps_its_families() {
    let server = Server::start();
    let client = &server.client;
    // A request without a credential, then a whole quote flow, so the
    // request, append, auth and external-call families have samples.
    let unauthenticated = client
        .http()
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    client
        .accepted_quote(&server.token("sales"), "cust-metrics", &["fiber-1g"])
        .await
        .unwrap();

    // The order's calls to the simulated systems happen after acceptance.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (content_type, families) = loop {
        let (content_type, text) = scrape(&server).await;
        let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let calls = families
            .get("oms_external_calls_total")
            .map_or(0, |f| f.samples.len());
        if calls > 0 || Instant::now() > deadline {
            break (content_type, families);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );

    for (name, family) in &families {
        if family.kind == "counter" {
            assert!(name.ends_with("_total"), "{name}");
        }
        assert!(!name.contains("_total_total"), "{name}");
    }
    // Name, type and the label names each sample carries (besides `le`).
    let expected: [(&str, &str, &[&str]); 20] = [
        (
            "oms_graphql_request_seconds",
            "histogram",
            &["operation", "outcome"],
        ),
        ("oms_command_append_seconds", "histogram", &["path"]),
        ("oms_idempotency_conflicts_total", "counter", &[]),
        ("oms_version_conflicts_total", "counter", &[]),
        ("oms_auth_failures_total", "counter", &[]),
        ("oms_log_events_written_total", "counter", &[]),
        ("oms_log_group_commits_total", "counter", &[]),
        ("oms_log_head_position", "gauge", &[]),
        ("oms_state_cache_hits_total", "counter", &[]),
        ("oms_state_cache_misses_total", "counter", &[]),
        ("oms_state_cache_streams", "gauge", &[]),
        ("oms_projector_lag_events", "gauge", &["projector"]),
        ("oms_projector_failed", "gauge", &["projector"]),
        (
            "oms_external_calls_total",
            "counter",
            &["outcome", "system"],
        ),
        ("oms_reconciliation_runs_total", "counter", &[]),
        ("oms_callbacks_applied_total", "counter", &[]),
        ("oms_consumer_lag_events", "gauge", &["consumer"]),
        ("oms_consumer_in_flight", "gauge", &["consumer"]),
        ("oms_consumer_retries_total", "counter", &["consumer"]),
        ("oms_consumer_state", "gauge", &["consumer", "state"]),
    ];
    for (name, kind, label_names) in expected {
        let family = families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name}: {families:#?}"));
        assert_eq!(family.kind, kind, "{name}");
        assert!(!family.samples.is_empty(), "{name} has no sample");
        for (sample, labels) in &family.samples {
            let mut names: Vec<&str> = labels
                .keys()
                .map(String::as_str)
                .filter(|l| *l != "le")
                .collect();
            names.sort_unstable();
            assert_eq!(names, label_names, "{sample}");
        }
    }
    let auth_failures = &families["oms_auth_failures_total"].samples;
    assert_eq!(auth_failures.len(), 1);
    let requests = &families["oms_graphql_request_seconds"].samples;
    assert!(
        requests.iter().any(
            |(sample, labels)| sample == "oms_graphql_request_seconds_bucket"
                && labels.get("le").map(String::as_str) == Some("+Inf")
        ),
        "{requests:?}"
    );
    let consumers: BTreeSet<&str> = families["oms_consumer_lag_events"]
        .samples
        .iter()
        .filter_map(|(_, labels)| labels.get("consumer").map(String::as_str))
        .collect();
    assert!(consumers.contains("handoff-dispatcher"), "{consumers:?}");
    // The one consumer loop reports each consumer's state.
    let states: BTreeSet<(&str, &str)> = families["oms_consumer_state"]
        .samples
        .iter()
        .filter_map(|(_, labels)| {
            Some((
                labels.get("consumer")?.as_str(),
                labels.get("state")?.as_str(),
            ))
        })
        .collect();
    for consumer in [
        "fulfillment-process",
        "handoff-dispatcher",
        "handoff-index",
        "callback-unparker",
    ] {
        assert!(
            states
                .iter()
                .any(|(name, state)| *name == consumer && *state == "running"),
            "{consumer} is not running: {states:?}"
        );
    }
}

/// An `operationName` the document does not define takes no metrics label
/// of its own: 300 made-up names left the real operation its label (they
/// had filled all 256 slots, and the real one was counted as `other`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_operation_names_take_no_metrics_label() {
    let server = Server::start();
    let http = server.client.http();
    let viewer = server.token("viewer");
    let post = |body: serde_json::Value| {
        http.post(format!("{}/graphql", server.base_url()))
            .bearer_auth(&viewer)
            .json(&body)
            .send()
    };
    for n in 0..300 {
        post(serde_json::json!({
            "query": "query Real { __typename }",
            "operationName": format!("junk{n}"),
        }))
        .await
        .unwrap();
    }
    let answer = post(serde_json::json!({
        "query": "query Dashboard { __typename }",
        "operationName": "Dashboard",
    }))
    .await
    .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let (_, text) = scrape(&server).await;
    let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let requests = &families["oms_graphql_request_seconds"];
    let operations: std::collections::BTreeSet<&str> = requests
        .samples
        .iter()
        .filter_map(|(_, labels)| labels.get("operation").map(String::as_str))
        .collect();
    assert!(operations.contains("Dashboard"), "{operations:?}");
    assert!(operations.contains("undefined"), "{operations:?}");
    assert!(
        !operations.iter().any(|o| o.starts_with("junk")),
        "{operations:?}"
    );
}
