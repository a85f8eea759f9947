//! An object whose every selected field is skipped answers `{}`.
//!
//! The specification skips a field under `@skip(if: true)` or
//! `@include(if: false)` and answers its object with the fields that are
//! left, however few. async-graphql 7 answers an object with no field left
//! with `null` instead, whatever the field's type: `me: Me!` answered
//! `null` without an error, a list of non-null objects answered a list of
//! `null`s, a whole `data` was `null`, and an existing quote read like a
//! quote not found.
//!
//! Before a document runs, [`keep_objects`] adds `__omsKept: __typename`
//! to every selection set that could end up selecting nothing (none of its
//! selections is a field without `@skip` or `@include`), so an object that
//! exists always has one field in the engine's answer; [`strip_kept`] takes
//! those fields out of the answer again. A null that is the resolver's own
//! (a quote not found) stays null. Names starting with `__` are reserved by
//! the specification, so no client's alias is taken out.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, Selection, SelectionSet,
};
use async_graphql::parser::Positioned;
use async_graphql::{Name, Value};

/// The response key of the field [`keep_objects`] adds.
pub const KEPT: &str = "__omsKept";

/// Adds the kept field to every selection set of `document` that could
/// select nothing; whether it added any.
pub fn keep_objects(document: &mut ExecutableDocument) -> bool {
    let mut added = match &mut document.operations {
        DocumentOperations::Single(operation) => keep(&mut operation.node.selection_set.node),
        DocumentOperations::Multiple(operations) => {
            operations.values_mut().fold(false, |added, operation| {
                keep(&mut operation.node.selection_set.node) | added
            })
        }
    };
    for fragment in document.fragments.values_mut() {
        added |= keep(&mut fragment.node.selection_set.node);
    }
    added
}

/// Whether the selection is a field that no directive can skip.
fn always_selected(selection: &Selection) -> bool {
    match selection {
        Selection::Field(field) => field.node.directives.is_empty(),
        Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
    }
}

fn keep(set: &mut SelectionSet) -> bool {
    let mut added = false;
    for selection in &mut set.items {
        added |= match &mut selection.node {
            Selection::Field(field) => keep(&mut field.node.selection_set.node),
            Selection::InlineFragment(fragment) => keep(&mut fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        };
    }
    // A leaf field's selection set is empty: there is no object to keep.
    if set.items.is_empty() || set.items.iter().any(|s| always_selected(&s.node)) {
        return added;
    }
    let pos = set.items.first().map(|s| s.pos).unwrap_or_default();
    set.items.push(Positioned::new(
        Selection::Field(Positioned::new(
            Field {
                alias: Some(Positioned::new(Name::new(KEPT), pos)),
                name: Positioned::new(Name::new("__typename"), pos),
                arguments: Vec::new(),
                directives: Vec::new(),
                selection_set: Positioned::new(SelectionSet::default(), pos),
            },
            pos,
        )),
        pos,
    ));
    true
}

/// Takes every field [`keep_objects`] added out of `value`.
pub fn strip_kept(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.shift_remove(KEPT);
            object.values_mut().for_each(strip_kept);
        }
        Value::List(items) => items.iter_mut().for_each(strip_kept),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kept(query: &str) -> (bool, String) {
        let mut document = async_graphql::parser::parse_query(query).unwrap();
        let added = keep_objects(&mut document);
        (
            added,
            format!("{document:?}").matches(KEPT).count().to_string(),
        )
    }

    #[test]
    fn only_a_selection_set_that_could_select_nothing_gets_the_kept_field() {
        // Every set has a field no directive skips.
        assert_eq!(
            kept("{ me { role } quotes { nodes { id } } }"),
            (false, "0".into())
        );
        // `me`'s set may be empty; the root set may not.
        assert_eq!(
            kept("{ me { role @skip(if: true) } quotes { nodes { id } } }"),
            (true, "1".into())
        );
        // The root set may be empty; `me`'s set may not.
        assert_eq!(kept("{ me @skip(if: true) { role } }"), (true, "1".into()));
        // A set of a spread alone, and the fragment's set of skippable fields.
        assert_eq!(
            kept(
                "{ quote(id: \"q\") { ...Q } } fragment Q on QuoteNode { id @include(if: false) }"
            ),
            (true, "2".into())
        );
    }

    #[test]
    fn the_kept_fields_are_taken_out_of_the_answer_at_every_depth() {
        let mut value = Value::from_json(serde_json::json!({
            KEPT: "Query",
            "me": { KEPT: "Me" },
            "capabilities": [{ KEPT: "CapabilityNode", "code": "X" }, null],
        }))
        .unwrap();
        strip_kept(&mut value);
        assert_eq!(
            value.into_json().unwrap(),
            serde_json::json!({ "me": {}, "capabilities": [{ "code": "X" }, null] })
        );
    }
}
