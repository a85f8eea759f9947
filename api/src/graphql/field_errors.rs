//! A field that failed answers `null`, as the GraphQL specification has it
//! ("Handling Field Errors": a field error is handled as though the field
//! returned null). async-graphql 7 leaves a failed nullable field out of
//! its object instead (`{"eventType": ..., "position": 0}` beside a
//! `FORBIDDEN` error for `payload`), which clients whose generated types
//! expect every selected key read as a malformed answer. Every response of
//! [`crate::graphql::limits::LimitedSchema`] goes through [`null_where_failed`].
//!
//! Every error carries a code: errors raised by the engine itself (parse
//! errors, unknown fields, variables of the wrong type) have none, and
//! [`code_engine_errors`] gives them `VALIDATION`, over HTTP and over the
//! WebSocket alike.

use async_graphql::{Name, PathSegment, Response, Value};

/// Puts `null` at the path of every field error whose key is missing from
/// its object. A path that leads through a missing or null parent is left
/// alone (the parent answers for it).
pub fn null_where_failed(mut response: Response) -> Response {
    for error in &response.errors {
        null_at(&mut response.data, &error.path);
    }
    response
}

/// Gives `VALIDATION` to every error without a code: the engine's own
/// (parse errors, unknown fields, depth and complexity limits) are the
/// client's request being invalid. A value an enum does not have is
/// explained with the values it has.
pub fn code_engine_errors(response: &mut Response) {
    for error in &mut response.errors {
        if let Some(explained) = crate::graphql::enum_values::explain(&error.message) {
            error.message = explained;
        }
        let field = argument_named_in(&error.message).map(str::to_owned);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "VALIDATION");
            if let Some(field) = field {
                if extensions.get("field").is_none() {
                    extensions.set("field", field);
                }
            }
        }
    }
}

/// The argument the engine's message names: `Invalid value for argument
/// "line.quantity", expected type "Int"` (a value of the wrong type, given
/// inline or as a variable) names `line.quantity`, so a client finds the
/// field as in every other `VALIDATION`.
fn argument_named_in(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("Invalid value for argument \"")?;
    let name = rest.split('"').next()?;
    (!name.is_empty()).then_some(name)
}

fn null_at(data: &mut Value, path: &[PathSegment]) {
    let mut at = data;
    for segment in path {
        at = match (at, segment) {
            (Value::Object(map), PathSegment::Field(name)) => {
                let key = Name::new(name);
                if !map.contains_key(&key) {
                    map.insert(key, Value::Null);
                    return;
                }
                match map.get_mut(&key) {
                    Some(value) => value,
                    None => return,
                }
            }
            (Value::List(items), PathSegment::Index(i)) => match items.get_mut(*i) {
                Some(value) => value,
                None => return,
            },
            _ => return,
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use async_graphql::ServerError;

    fn failed_at(path: Vec<PathSegment>) -> ServerError {
        let mut error = ServerError::new("forbidden", None);
        error.path = path;
        error
    }

    #[test]
    fn an_engine_refusal_of_an_arguments_type_names_the_argument() {
        assert_eq!(
            argument_named_in(r#"Invalid value for argument "line.quantity", expected type "Int""#),
            Some("line.quantity")
        );
        assert_eq!(argument_named_in("Unknown field \"x\""), None);
        assert_eq!(
            argument_named_in(r#"Invalid value for argument "", x"#),
            None
        );
    }

    #[test]
    fn a_failed_field_missing_from_its_object_answers_null_and_nothing_else_changes() {
        let data = Value::from_json(serde_json::json!({
            "auditTrail": { "nodes": [
                { "eventType": "QuoteCreated", "position": 0 },
                { "eventType": "LineAdded", "position": 1, "payload": {"a": 1} }
            ] },
            "quote": null
        }))
        .unwrap();
        let mut response = Response::new(data);
        response.errors = vec![
            failed_at(vec![
                PathSegment::Field("auditTrail".into()),
                PathSegment::Field("nodes".into()),
                PathSegment::Index(0),
                PathSegment::Field("payload".into()),
            ]),
            // Under a null parent: the parent answers for it.
            failed_at(vec![
                PathSegment::Field("quote".into()),
                PathSegment::Field("order".into()),
            ]),
            // Past the end of a list: left alone.
            failed_at(vec![
                PathSegment::Field("auditTrail".into()),
                PathSegment::Field("nodes".into()),
                PathSegment::Index(7),
                PathSegment::Field("payload".into()),
            ]),
            // A request error has no path.
            failed_at(Vec::new()),
        ];
        let answered = null_where_failed(response).data.into_json().unwrap();
        assert_eq!(
            answered,
            serde_json::json!({
                "auditTrail": { "nodes": [
                    { "eventType": "QuoteCreated", "position": 0, "payload": null },
                    { "eventType": "LineAdded", "position": 1, "payload": {"a": 1} }
                ] },
                "quote": null
            })
        );
    }
}
