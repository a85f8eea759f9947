//! The variables a request must give before anything of it runs.
//!
//! The specification coerces a request's variables before it executes
//! anything (CoerceVariableValues): a variable declared non-null
//! (`$c: String!`) without a default and given no value, or given `null`,
//! is a request error, and nothing of the operation runs. async-graphql 7
//! finds such a variable only when a field reads it, after the fields
//! before it have run: a mutation among them was applied although the
//! request was answered as invalid. [`unprovided`] refuses the request
//! first.

use async_graphql::parser::types::{DocumentOperations, OperationDefinition};
use async_graphql::{Positioned, Request, ServerError, Value};

/// The error for the first non-null variable without a default that
/// `request`'s operation (the one it names, or its only one) declares and
/// `request` gives no value or `null`; `None` when every one has a value
/// or the document does not parse or names no operation (the engine then
/// reports that itself).
pub fn unprovided(request: &mut Request) -> Option<ServerError> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let required: Vec<_> = selected_operation(&document.operations, name.as_deref())?
        .node
        .variable_definitions
        .iter()
        .filter(|def| !def.node.var_type.node.nullable && def.node.default_value.is_none())
        .map(|def| {
            (
                def.node.name.node.clone(),
                def.node.var_type.node.to_string(),
                def.pos,
            )
        })
        .collect();
    let (name, var_type, pos) = required
        .into_iter()
        .find(|(name, _, _)| matches!(request.variables.get(name), None | Some(Value::Null)))?;
    let mut error = ServerError::new(
        format!(
            "Variable ${name} of non-null type {var_type} was given no value (or null): \
             nothing was run"
        ),
        Some(pos),
    );
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "VALIDATION");
    error.extensions = Some(extensions);
    Some(error)
}

/// The operation `name` selects, or the document's only one: the one a
/// request runs (`None`: it names none the document has).
pub(crate) fn selected_operation<'a>(
    operations: &'a DocumentOperations,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(found, _)| found.as_str() == name)
            .map(|(_, operation)| operation),
        // One operation, named, run without `operationName`: the engine
        // runs it, so it is the one checked.
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Gives every variable the selected operation declares with a default
/// (`$s: Boolean = true`) and `request` leaves out its default, as the
/// specification's CoerceVariableValues does: async-graphql 7 applies
/// defaults to arguments but reads a missing variable in `@skip` and
/// `@include` as false, so `@skip(if: $s)` with `$s` defaulting to true
/// answered the field. A variable given, even as `null`, is left as given.
pub fn with_defaults(request: &mut Request) {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return;
    };
    let Some(operation) = selected_operation(&document.operations, name.as_deref()) else {
        return;
    };
    let defaults: Vec<(async_graphql::Name, Value)> = operation
        .node
        .variable_definitions
        .iter()
        .filter_map(|def| {
            let default = def.node.default_value.as_ref()?;
            Some((def.node.name.node.clone(), default.node.clone()))
        })
        .collect();
    for (name, value) in defaults {
        request.variables.entry(name).or_insert(value);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(query: &str, variables: serde_json::Value) -> Option<String> {
        let mut request =
            Request::new(query).variables(async_graphql::Variables::from_json(variables));
        unprovided(&mut request).map(|e| e.message)
    }

    #[test]
    fn a_non_null_variable_without_a_value_refuses_the_request() {
        let query = "mutation($c: String!) { a: f(x: 1) b: f(c: $c) }";
        let refused = check(query, serde_json::json!({})).unwrap();
        assert!(refused.contains("$c of non-null type String!"), "{refused}");
        assert!(check(query, serde_json::json!({"c": null})).is_some());
        assert!(check(query, serde_json::json!({"c": "x"})).is_none());
        // Nullable, or with a default: nothing is missing.
        assert!(check("query($c: String) { f(c: $c) }", serde_json::json!({})).is_none());
        assert!(check("query($c: Int! = 3) { f(c: $c) }", serde_json::json!({})).is_none());
        // The operation the request names is the one checked.
        let two = "query A($a: ID!) { f(a: $a) } query B { g }";
        let mut request = Request::new(two).operation_name("B");
        assert!(unprovided(&mut request).is_none());
        let mut request = Request::new(two).operation_name("A");
        assert!(unprovided(&mut request).is_some());
        // A document that does not parse is the engine's to report.
        assert!(check("mutation($c: String!) {", serde_json::json!({})).is_none());
        // One named operation, run without `operationName`, is checked:
        // its first field used to run before the engine refused the second.
        let named = "mutation M($c: String!) { a: f(x: 1) b: f(c: $c) }";
        assert!(check(named, serde_json::json!({})).is_some());
        assert!(check(
            "query Case($id: String!) { f(id: $id) }",
            serde_json::json!({})
        )
        .is_some());
    }

    #[test]
    fn a_default_is_given_to_a_variable_left_out_and_only_to_it() {
        let query = "query($s: Boolean = true, $t: Boolean = true, $n: Int) { f @skip(if: $s) }";
        let mut request = Request::new(query).variables(async_graphql::Variables::from_json(
            serde_json::json!({"t": null}),
        ));
        with_defaults(&mut request);
        assert_eq!(request.variables.get("s"), Some(&Value::Boolean(true)));
        assert_eq!(
            request.variables.get("t"),
            Some(&Value::Null),
            "given null stays null"
        );
        assert_eq!(
            request.variables.get("n"),
            None,
            "no default, nothing given"
        );
    }
}
