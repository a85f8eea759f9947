//! Every GraphQL operation in `docs/graphql.md` is valid against the
//! schema the code serves: the guide for UI teams cannot drift from it.
//!
//! Each fenced `graphql` block runs against the schema without a platform
//! or a credential. A valid operation gets only field errors (they carry a
//! `path`: the caller is not authenticated); a parse or validation error
//! (an unknown field, argument, type or enum value) carries none.

use std::path::PathBuf;

use api::config::GraphqlLimits;

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

/// A value for every `$name: String!` variable of `operation`.
fn variables(operation: &str) -> async_graphql::Variables {
    let mut json = serde_json::Map::new();
    for part in operation.split('$').skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let declared = part[name.len()..].trim_start();
        if declared.starts_with(": String!") {
            json.insert(name, serde_json::Value::String("x-1".to_owned()));
        }
    }
    async_graphql::Variables::from_json(serde_json::Value::Object(json))
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
    let schema = api::graphql::build(None, &GraphqlLimits::default());
    for operation in &operations {
        let response = schema
            .execute(
                async_graphql::Request::new(operation.as_str()).variables(variables(operation)),
            )
            .await;
        let invalid: Vec<String> = response
            .errors
            .iter()
            .filter(|e| e.path.is_empty())
            .map(|e| e.message.clone())
            .collect();
        assert!(invalid.is_empty(), "{operation}\nis not valid: {invalid:?}");
    }
}
