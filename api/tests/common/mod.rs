//! What the API's tests share: checking that a GraphQL operation a client
//! ships (the UI guide's, the console's) is valid against the schema.

use api::config::GraphqlLimits;

/// A value for every required variable of `operation` (`String!`, `Int!`,
/// `FalloutAction!`; the operations checked declare no other).
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
        } else if declared.starts_with(": Int!") {
            json.insert(name, serde_json::Value::from(0));
        } else if declared.starts_with(": FalloutAction!") {
            json.insert(name, serde_json::Value::String("NEW_ATTEMPT".to_owned()));
        }
    }
    async_graphql::Variables::from_json(serde_json::Value::Object(json))
}

/// Runs `operation` against the schema without a platform or a
/// credential: a valid operation gets only field errors (they carry a
/// `path`: the caller is not authenticated); a parse or validation error
/// (an unknown field, argument, type or enum value) carries none.
pub(crate) async fn assert_valid(operation: &str) {
    let schema = api::graphql::build(None, &GraphqlLimits::default());
    let request = async_graphql::Request::new(operation).variables(variables(operation));
    let response = if operation.trim_start().starts_with("subscription") {
        use futures_util::StreamExt;
        schema
            .execute_stream(request)
            .next()
            .await
            .unwrap_or_default()
    } else {
        schema.execute(request).await
    };
    let invalid: Vec<String> = response
        .errors
        .iter()
        .filter(|e| e.path.is_empty())
        .map(|e| e.message.clone())
        .collect();
    assert!(invalid.is_empty(), "{operation}\nis not valid: {invalid:?}");
}
