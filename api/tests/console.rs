//! Every GraphQL operation the operations console sends is valid against
//! the schema the code serves, so the console cannot drift from the API.

mod common;

/// The GraphQL operations in the console's script: its template literals
/// that start like an operation (the script writes every operation as a
/// template literal without substitutions).
fn operations(script: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut parts = script.split('`');
    // Text between an odd and the next even backtick is a literal.
    parts.next();
    while let (Some(literal), _) = (parts.next(), parts.next()) {
        let text = literal.trim_start();
        let operation = ["query", "mutation", "subscription", "{"]
            .iter()
            .any(|start| text.starts_with(start));
        if operation && !text.contains("${") {
            found.push(literal.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn every_operation_of_the_console_is_valid_against_the_schema() {
    let operations = operations(api::console::SCRIPT);
    assert!(
        operations.len() >= 15,
        "found {} operations: {operations:?}",
        operations.len()
    );
    for operation in &operations {
        common::assert_valid(operation).await;
    }
}
