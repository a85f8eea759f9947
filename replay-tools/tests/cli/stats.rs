//! `stats`: counts per type, tenant and day, streams and bytes.

use std::collections::BTreeMap;

use crate::common::{generated, generated_events, oms, records};

#[test]
fn stats_count_events_per_type_tenant_and_day() {
    let (_tmp, dir) = generated();
    let all = records(&dir);
    let run = oms(&dir, &["stats", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json = run.json();
    assert_eq!(json["events"], generated_events());
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in &all {
        *per_type.entry(r.event_type.clone()).or_default() += 1;
    }
    assert_eq!(json["per_type"], serde_json::to_value(&per_type).unwrap());
    let tenants = json["per_tenant"].as_object().unwrap();
    assert_eq!(tenants.len(), 3);
    assert_eq!(
        tenants.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        generated_events()
    );
    let days: u64 = json["per_day"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(days, generated_events());
    let streams: std::collections::BTreeSet<&str> =
        all.iter().map(|r| r.stream_id.as_str()).collect();
    assert_eq!(json["streams"], streams.len());
    assert_eq!(json["streams_per_aggregate"]["quote"], crate::common::FLOWS);
    assert!(json["disk_bytes"].as_u64().unwrap() > json["record_bytes"].as_u64().unwrap() / 2);
    let text = oms(&dir, &["stats"]);
    assert!(text.stdout.contains("events per type:"), "{}", text.stdout);
}
