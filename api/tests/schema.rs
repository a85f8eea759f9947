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
