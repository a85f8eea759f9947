//! An enum value written in a document is a bare name (`status: DRAFT`),
//! never a string (`status: "DRAFT"`): the GraphQL specification's input
//! coercion for enums takes only enum literals in a document, and strings
//! only from variables (JSON has no enum literal). async-graphql 7 takes
//! both, so a document that quotes one ran as if it were valid; every
//! request of [`crate::graphql::limits::LimitedSchema`] is checked here
//! before the engine sees it.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Name, Pos, ServerError, Value};

use super::field_errors::FieldTypes;

/// Fragments followed into fragments at most (the limits refuse deeper
/// documents before this runs).
const MAX_FRAGMENT_NESTING: usize = 64;

/// The first argument (or input object field) of an enum type that
/// `document` gives as a string literal, as a `VALIDATION` error naming it
/// and the enum value to write; `None` when there is none.
pub fn string_for_an_enum(
    types: &FieldTypes,
    document: &ExecutableDocument,
) -> Option<ServerError> {
    let mut walk = Walk {
        types,
        document,
        following: HashSet::new(),
    };
    document.operations.iter().find_map(|(_, operation)| {
        let root = types.root(operation.node.ty).or(match operation.node.ty {
            OperationType::Query => Some("Query"),
            _ => None,
        })?;
        walk.set(root, &operation.node.selection_set.node, 0)
    })
}

struct Walk<'a> {
    types: &'a FieldTypes,
    document: &'a ExecutableDocument,
    /// The fragments being followed (a cycle is the engine's to refuse).
    following: HashSet<&'a Name>,
}

impl<'a> Walk<'a> {
    fn set(&mut self, on: &str, set: &'a SelectionSet, nesting: usize) -> Option<ServerError> {
        if nesting > MAX_FRAGMENT_NESTING {
            return None;
        }
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                let name = field.name.node.as_str();
                let found = field.arguments.iter().find_map(|(argument, value)| {
                    let ty = self.types.argument_type(on, name, argument.node.as_str())?;
                    // A variable's value comes as JSON, where a string is
                    // how an enum value is written: it stands as null here.
                    let written = value
                        .node
                        .clone()
                        .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null))
                        .ok()?;
                    self.value(argument.node.as_str(), ty, &written, value.pos)
                });
                found.or_else(|| {
                    let inner = self.types.field_type(on, name)?;
                    self.set(inner, &field.selection_set.node, nesting)
                })
            }
            Selection::InlineFragment(fragment) => {
                let fragment = &fragment.node;
                let on = fragment
                    .type_condition
                    .as_ref()
                    .map_or(on, |condition| condition.node.on.node.as_str());
                self.set(on, &fragment.selection_set.node, nesting + 1)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let (key, fragment) = self.document.fragments.get_key_value(name)?;
                if !self.following.insert(key) {
                    return None;
                }
                let fragment = &fragment.node;
                let found = self.set(
                    fragment.type_condition.node.on.node.as_str(),
                    &fragment.selection_set.node,
                    nesting + 1,
                );
                self.following.remove(key);
                found
            }
        })
    }

    /// A string where `ty` is an enum, in `value` or in the lists and
    /// input objects it holds.
    fn value(&self, what: &str, ty: &str, value: &Value, at: Pos) -> Option<ServerError> {
        match value {
            Value::String(text) if self.types.is_enum(ty) => Some(refused(what, ty, text, at)),
            Value::List(items) => items.iter().find_map(|item| self.value(what, ty, item, at)),
            Value::Object(fields) => fields.iter().find_map(|(field, value)| {
                let inner = self.types.input_field_type(ty, field.as_str())?;
                self.value(&format!("{what}.{field}"), inner, value, at)
            }),
            _ => None,
        }
    }
}

fn refused(what: &str, ty: &str, text: &str, at: Pos) -> ServerError {
    let shown = domain::text::escaped(text);
    let mut error = ServerError::new(
        format!(
            "Invalid value for argument \"{what}\": {ty} is an enum, written bare (`{shown}`), \
             not as the string \"{shown}\""
        ),
        Some(at),
    );
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "VALIDATION");
    extensions.set("field", what);
    error.extensions = Some(extensions);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> FieldTypes {
        FieldTypes::of_sdl(
            "enum Status { DRAFT PRICED }
             input Filter { status: Status, statuses: [Status!], note: String }
             type Quote { id: String! }
             type Query {
               quotes(status: Status, filter: Filter, note: String): [Quote!]!
               quote(id: String!): Quote
             }",
        )
    }

    fn check(query: &str) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        string_for_an_enum(&types(), &document).map(|e| e.message)
    }

    #[test]
    fn a_quoted_enum_value_is_refused_wherever_the_document_writes_it() {
        for quoted in [
            r#"{ quotes(status: "DRAFT") { id } }"#,
            r#"{ quotes(filter: { status: "DRAFT" }) { id } }"#,
            r#"{ quotes(filter: { statuses: [PRICED, "DRAFT"] }) { id } }"#,
            r#"{ ... on Query { quotes(status: "DRAFT") { id } } }"#,
            r#"query { ...F } fragment F on Query { quotes(status: "DRAFT") { id } }"#,
        ] {
            let message = check(quoted).unwrap_or_default();
            assert!(
                message.contains("Status is an enum") && message.contains("`DRAFT`"),
                "{quoted}: {message}"
            );
        }
    }

    #[test]
    fn bare_enum_values_variables_and_strings_where_strings_go_pass() {
        for fine in [
            r#"{ quotes(status: DRAFT, note: "DRAFT") { id } }"#,
            r#"query($s: Status) { quotes(status: $s) { id } }"#,
            r#"{ quotes(filter: { status: PRICED, note: "x" }) { id } quote(id: "DRAFT") { id } }"#,
            r#"query { ...F } fragment F on Query { ...G } fragment G on Query { ...F }"#,
        ] {
            assert_eq!(check(fine), None, "{fine}");
        }
    }
}
