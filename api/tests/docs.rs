//! Every GraphQL operation in `docs/graphql.md` and in the runbooks
//! (`docs/runbooks/*.md`) is valid against the
//! schema the code serves: the guide for UI teams and the operators'
//! runbooks cannot drift from it.
//!
//! Each fenced `graphql` block runs against the schema without a platform
//! or a credential. A valid operation gets only field errors (they carry a
//! `path`: the caller is not authenticated); a parse or validation error
//! (an unknown field, argument, type or enum value) carries none.

use std::path::PathBuf;

mod common;

/// The fenced `graphql` blocks of the guide.
fn operations(guide: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in guide.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```graphql") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test]
async fn every_operation_of_the_ui_guide_is_valid_against_the_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/graphql.md");
    let guide = std::fs::read_to_string(&path).expect("docs/graphql.md");
    let operations = operations(&guide);
    assert!(
        operations.len() >= 8,
        "found {} operations",
        operations.len()
    );
    for operation in &operations {
        common::assert_valid(operation).await;
    }
}

#[tokio::test]
async fn every_operation_a_runbook_names_is_valid_against_the_schema() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/runbooks");
    let mut runbooks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("docs/runbooks")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    runbooks.sort();
    assert!(runbooks.len() >= 5, "runbooks: {runbooks:?}");
    let mut checked = 0;
    for runbook in &runbooks {
        let text = std::fs::read_to_string(runbook).expect("a runbook");
        for operation in operations(&text) {
            common::assert_valid(&operation).await;
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} operations checked");
}
