//! The committed `schema.graphql` is the schema the code serves. Run with
//! `SCHEMA_BLESS=1` to rewrite the file after an intended change.

use std::path::PathBuf;

#[test]
fn the_committed_schema_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let served = api::graphql::sdl();
    if std::env::var_os("SCHEMA_BLESS").is_some() {
        std::fs::write(&path, &served).expect("write schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "schema.graphql is out of date with the code; rerun with SCHEMA_BLESS=1 and review the diff"
    );
}

/// Every field and argument is typed: the `JSON` scalar carries only a raw
/// event payload (`AuditEntryNode.payload`); a new field of type `JSON`
/// fails here.
#[test]
fn only_raw_event_payloads_use_the_json_scalar() {
    let sdl = api::graphql::sdl();
    let mut owner = String::new();
    let mut offenders = Vec::new();
    for line in sdl.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed
            .strip_prefix("type ")
            .or_else(|| trimmed.strip_prefix("input "))
        {
            owner = rest.split([' ', '{']).next().unwrap_or_default().to_owned();
            continue;
        }
        let uses_json = trimmed.contains(": JSON") || trimmed.contains(": [JSON");
        if !uses_json {
            continue;
        }
        let field = trimmed.split(['(', ':']).next().unwrap_or_default();
        let allowed = owner == "AuditEntryNode" && field == "payload";
        if !allowed {
            offenders.push(format!("{owner}.{field}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "fields typed JSON (type them instead): {offenders:?}"
    );
    assert!(
        sdl.contains("payload: JSON"),
        "the audit payload is the raw event"
    );
}
