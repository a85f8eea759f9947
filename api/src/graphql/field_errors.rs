//! A field that failed answers `null`, as the GraphQL specification has it
//! ("Handling Field Errors"): a field error is handled as though the field
//! returned null, and when the field's type is non-null the null goes up to
//! its nearest nullable parent (the whole `data` when there is none).
//! async-graphql 7 does neither: it leaves a failed field out of its
//! object (`{"eventType": ..., "position": 0}` beside a `FORBIDDEN` error
//! for `payload`), whatever its type, so a client whose generated types
//! expect every selected key read a malformed answer, and a non-null field
//! such as `auditTrail: AuditConnection!` could answer `null`. Every
//! response of [`crate::graphql::limits::LimitedSchema`] goes through
//! [`null_where_failed`], which follows each error's path through the
//! request's document and the schema's field types ([`FieldTypes`]).
//!
//! Every error carries a code: errors raised by the engine itself (parse
//! errors, unknown fields, variables of the wrong type) have none, and
//! [`code_engine_errors`] gives them `VALIDATION`, over HTTP and over the
//! WebSocket alike.

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, PathSegment, Response, Value};

/// The declared type of every field of the schema's object and interface
/// types, and its root types: what [`null_where_failed`] needs to tell a
/// nullable field from a non-null one.
#[derive(Debug, Default)]
pub struct FieldTypes {
    fields: HashMap<String, HashMap<String, Type>>,
    /// Every field's arguments by field name (over all types) and
    /// argument name: the named type each takes.
    arguments: HashMap<String, HashMap<String, String>>,
    /// Each type's fields' arguments by argument name: the named type each
    /// takes (a list's item type), for [`crate::graphql::enum_literals`].
    typed_arguments: HashMap<(String, String), HashMap<String, String>>,
    /// Each input object type's fields: the named type each takes.
    input_fields: HashMap<String, HashMap<String, String>>,
    /// The enum types.
    enums: std::collections::HashSet<String>,
    query: Option<String>,
    mutation: Option<String>,
    subscription: Option<String>,
}

impl FieldTypes {
    /// The field types of the schema written as `sdl` (as
    /// `Schema::sdl` prints it). A text that does not parse gives no
    /// types, and every failed field then answers `null` where it is.
    pub fn of_sdl(sdl: &str) -> Self {
        let mut types = Self::default();
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return types;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    types.query = schema.query.map(|name| name.node.to_string());
                    types.mutation = schema.mutation.map(|name| name.node.to_string());
                    types.subscription = schema.subscription.map(|name| name.node.to_string());
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let fields = match ty.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        TypeKind::Enum(_) => {
                            types.enums.insert(ty.name.node.to_string());
                            continue;
                        }
                        TypeKind::InputObject(input) => {
                            let fields = input
                                .fields
                                .iter()
                                .filter_map(|field| {
                                    let name = item_named(&field.node.ty.node)?;
                                    Some((field.node.name.node.to_string(), name.to_owned()))
                                })
                                .collect();
                            types.input_fields.insert(ty.name.node.to_string(), fields);
                            continue;
                        }
                        _ => continue,
                    };
                    for field in &fields {
                        let arguments = types
                            .arguments
                            .entry(field.node.name.node.to_string())
                            .or_default();
                        let typed = types
                            .typed_arguments
                            .entry((ty.name.node.to_string(), field.node.name.node.to_string()))
                            .or_default();
                        for argument in &field.node.arguments {
                            if let Some(name) = item_named(&argument.node.ty.node) {
                                arguments
                                    .insert(argument.node.name.node.to_string(), name.to_owned());
                                typed.insert(argument.node.name.node.to_string(), name.to_owned());
                            }
                        }
                    }
                    types.fields.insert(
                        ty.name.node.to_string(),
                        fields
                            .into_iter()
                            .map(|field| (field.node.name.node.to_string(), field.node.ty.node))
                            .collect(),
                    );
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        types.query.get_or_insert_with(|| "Query".to_owned());
        types
    }

    /// The named type (a list's item type) argument `argument` of field
    /// `field` of type `on` takes.
    pub(crate) fn argument_type(&self, on: &str, field: &str, argument: &str) -> Option<&str> {
        self.typed_arguments
            .get(&(on.to_owned(), field.to_owned()))?
            .get(argument)
            .map(String::as_str)
    }

    /// The named type (a list's item type) field `field` of input object
    /// type `input` takes.
    pub(crate) fn input_field_type(&self, input: &str, field: &str) -> Option<&str> {
        self.input_fields.get(input)?.get(field).map(String::as_str)
    }

    /// Whether `name` is an enum type.
    pub(crate) fn is_enum(&self, name: &str) -> bool {
        self.enums.contains(name)
    }

    /// The named type (a list's item type) field `field` of type `on`
    /// answers.
    pub(crate) fn field_type(&self, on: &str, field: &str) -> Option<&str> {
        item_named(self.field(on, field)?)
    }

    pub(crate) fn root(&self, operation: OperationType) -> Option<&str> {
        match operation {
            OperationType::Query => self.query.as_deref(),
            OperationType::Mutation => self.mutation.as_deref(),
            OperationType::Subscription => self.subscription.as_deref(),
        }
    }

    fn field(&self, on: &str, name: &str) -> Option<&Type> {
        if name == "__typename" {
            return Some(&*TYPENAME);
        }
        self.fields.get(on)?.get(name)
    }

    /// Each step of `path` (a field, or an item of a list): whether it may
    /// be null, and for a field the response keys of its object in the
    /// order the request selected them. Follows the path through the
    /// operation of `document` that ran; `None` when it cannot be followed
    /// (a field the schema's text does not describe, such as
    /// introspection's).
    fn steps(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        path: &[PathSegment],
    ) -> Option<Vec<Step>> {
        let operation = document
            .operations
            .iter()
            .find(|(name, _)| {
                operation_name.is_none() || name.map(|n| n.as_str()) == operation_name
            })?
            .1;
        let mut on = self.root(operation.node.ty)?.to_owned();
        let mut sets = vec![&operation.node.selection_set.node];
        let mut ty: Option<&Type> = None;
        let mut steps = Vec::with_capacity(path.len());
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    if let Some(list) = ty {
                        on = named(list)?.to_owned();
                    }
                    let mut keys = Vec::new();
                    let mut matches = Vec::new();
                    for set in &sets {
                        fields_keyed(document, set, key, None, 0, &mut matches, &mut keys);
                    }
                    let (field, condition) = matches.first()?;
                    let declared = self.field(condition.unwrap_or(&on), &field.name.node)?;
                    steps.push(Step {
                        nullable: declared.nullable,
                        keys,
                    });
                    sets = matches
                        .iter()
                        .map(|(field, _)| &field.selection_set.node)
                        .collect();
                    ty = Some(declared);
                }
                PathSegment::Index(_) => {
                    let BaseType::List(item) = &ty?.base else {
                        return None;
                    };
                    steps.push(Step {
                        nullable: item.nullable,
                        keys: Vec::new(),
                    });
                    ty = Some(item);
                }
            }
        }
        Some(steps)
    }
}

/// One step of an error's path, as [`FieldTypes::steps`] follows it.
struct Step {
    /// Whether the value at this step may be null.
    nullable: bool,
    /// For a field: its object's response keys, in the request's order.
    keys: Vec<String>,
}

/// `__typename`'s type, `String!`.
static TYPENAME: std::sync::LazyLock<Type> = std::sync::LazyLock::new(|| Type {
    base: BaseType::Named(Name::new("String")),
    nullable: false,
});

/// The named type at the bottom of `ty`'s lists.
/// The named type of `ty`, through its lists.
fn item_named(ty: &Type) -> Option<&str> {
    let mut ty = ty;
    while let BaseType::List(item) = &ty.base {
        ty = item;
    }
    named(ty)
}

fn named(ty: &Type) -> Option<&str> {
    match &ty.base {
        BaseType::Named(name) => Some(name.as_str()),
        BaseType::List(_) => None,
    }
}

/// Fragments followed into fragments at most: the limits refuse deeper
/// documents before they run.
const MAX_FRAGMENT_NESTING: usize = 64;

/// Every field of `set` whose response key is `key`, through fragments,
/// each with the type condition of the fragment it was found in; and every
/// response key of `set`, in the order selected, into `keys`.
fn fields_keyed<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    key: &str,
    condition: Option<&'a str>,
    nesting: usize,
    found: &mut Vec<(&'a async_graphql::parser::types::Field, Option<&'a str>)>,
    keys: &mut Vec<String>,
) {
    if nesting > MAX_FRAGMENT_NESTING {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let response_key = field.node.response_key().node.as_str();
                if !keys.iter().any(|k| k == response_key) {
                    keys.push(response_key.to_owned());
                }
                if response_key == key {
                    found.push((&field.node, condition));
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str())
                    .or(condition);
                let set = &fragment.node.selection_set.node;
                fields_keyed(document, set, key, on, nesting + 1, found, keys);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    let on = Some(fragment.node.type_condition.node.on.node.as_str());
                    let set = &fragment.node.selection_set.node;
                    fields_keyed(document, set, key, on, nesting + 1, found, keys);
                }
            }
        }
    }
}

/// Names the argument of a value the engine could not parse as a custom
/// scalar (`Failed to parse "DateTime": ...`, which names only the type
/// and locates the field): the field's one argument of that type in the
/// request, in `extensions.field`, as every other `VALIDATION` names it.
/// A field with several such arguments is left unnamed.
pub fn name_unparsed_arguments(response: &mut Response, types: &FieldTypes, ran: &Ran) {
    let mut document = None;
    for error in &mut response.errors {
        let Some(scalar) = error
            .message
            .strip_prefix("Failed to parse \"")
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        if error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("field").is_some())
        {
            continue;
        }
        let Some(at) = error.locations.first().copied() else {
            continue;
        };
        let document =
            document.get_or_insert_with(|| async_graphql::parser::parse_query(&ran.query).ok());
        let Some(document) = document.as_ref() else {
            return;
        };
        let mut named: Vec<&str> = Vec::new();
        let sets = document
            .operations
            .iter()
            .map(|(_, op)| &op.node.selection_set.node)
            .chain(
                document
                    .fragments
                    .values()
                    .map(|f| &f.node.selection_set.node),
            );
        for set in sets {
            for field in fields_at(set, at, 0) {
                let Some(arguments) = types.arguments.get(field.name.node.as_str()) else {
                    continue;
                };
                for (name, _) in &field.arguments {
                    if arguments.get(name.node.as_str()).map(String::as_str) == Some(scalar)
                        && !named.contains(&name.node.as_str())
                    {
                        named.push(name.node.as_str());
                    }
                }
            }
        }
        if let [argument] = named.as_slice() {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("field", *argument);
        }
    }
}

/// The fields of `set` (through inline fragments) that stand at `at`.
fn fields_at(
    set: &SelectionSet,
    at: async_graphql::Pos,
    nesting: usize,
) -> Vec<&async_graphql::parser::types::Field> {
    let mut found = Vec::new();
    if nesting > MAX_FRAGMENT_NESTING {
        return found;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                if field.pos == at {
                    found.push(&field.node);
                }
                found.extend(fields_at(&field.node.selection_set.node, at, nesting + 1));
            }
            Selection::InlineFragment(fragment) => {
                found.extend(fields_at(
                    &fragment.node.selection_set.node,
                    at,
                    nesting + 1,
                ));
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    found
}

/// What [`null_where_failed`] needs of the request that ran: its query
/// text (parsed again only when a field failed) and operation name.
#[derive(Debug, Clone)]
pub struct Ran {
    query: String,
    operation_name: Option<String>,
}

impl Ran {
    /// The query text and operation name of `request`, before it runs.
    pub fn of(request: &async_graphql::Request) -> Self {
        Self {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
        }
    }
}

/// Answers every field error as the specification has it: `null` at the
/// failed field when its type is nullable, else at its nearest nullable
/// parent, else the whole `data`; the keys of an object it touched in the
/// order the request selected them. async-graphql answers an object all of
/// whose selected fields failed (the root included) with `null`: such an
/// object is an object again, of `null`s. A path that leads through a
/// missing parent, or a parent that is null for another reason, is left
/// alone (the parent answers for it). When the path cannot be followed
/// through the document and `types`, the failed field answers `null` where
/// it is.
pub fn null_where_failed(mut response: Response, types: &FieldTypes, ran: &Ran) -> Response {
    if response.errors.iter().all(|error| error.path.is_empty()) {
        return response;
    }
    let document = async_graphql::parser::parse_query(&ran.query).ok();
    let followed: Vec<(&[PathSegment], Option<Vec<Step>>)> = response
        .errors
        .iter()
        .filter(|error| !error.path.is_empty())
        .map(|error| {
            let steps = document.as_ref().and_then(|document| {
                types.steps(document, ran.operation_name.as_deref(), &error.path)
            });
            (error.path.as_slice(), steps)
        })
        .collect();
    for (path, _) in &followed {
        objects_again(&mut response.data, path);
    }
    for (path, steps) in &followed {
        let depth = match steps {
            Some(steps) => match steps.iter().rposition(|step| step.nullable) {
                Some(at) => at + 1,
                None => {
                    response.data = Value::Null;
                    return response;
                }
            },
            None => path.len(),
        };
        null_at(&mut response.data, &path[..depth]);
    }
    for (path, steps) in &followed {
        if let Some(steps) = steps {
            in_selection_order(&mut response.data, path, steps);
        }
    }
    response
}

/// The value one step of a path down from `at`, if there is one.
fn step_into<'a>(at: &'a mut Value, segment: &PathSegment) -> Option<&'a mut Value> {
    match (at, segment) {
        (Value::Object(map), PathSegment::Field(name)) => map.get_mut(name.as_str()),
        (Value::List(items), PathSegment::Index(i)) => items.get_mut(*i),
        _ => None,
    }
}

/// Makes every `null` on the way to the field that failed at `path` an
/// empty object again: an object whose selected fields all failed, which
/// async-graphql answered with `null` (a value that was null in its own
/// right has no field under it that could fail).
fn objects_again(data: &mut Value, path: &[PathSegment]) {
    if matches!(data, Value::Null) {
        *data = Value::Object(Default::default());
    }
    let mut at = data;
    for (segment, next) in path.iter().zip(path.iter().skip(1)) {
        let Some(child) = step_into(at, segment) else {
            return;
        };
        if matches!(child, Value::Null) && matches!(next, PathSegment::Field(_)) {
            *child = Value::Object(Default::default());
        }
        at = child;
    }
}

/// Puts the keys of every object on `path` in the order the request
/// selected them ([`Step::keys`]): a key answered `null` afterwards was
/// added at the end.
fn in_selection_order(data: &mut Value, path: &[PathSegment], steps: &[Step]) {
    let mut at = data;
    for (segment, step) in path.iter().zip(steps) {
        if let Value::Object(map) = &mut *at {
            let place = |key: &Name| {
                step.keys
                    .iter()
                    .position(|k| k == key.as_str())
                    .unwrap_or(usize::MAX)
            };
            map.sort_by(|a, _, b, _| place(a).cmp(&place(b)));
        }
        let Some(next) = step_into(at, segment) else {
            return;
        };
        at = next;
    }
}

/// Gives `VALIDATION` to every error without a code: the engine's own
/// (parse errors, unknown fields, depth and complexity limits) are the
/// client's request being invalid, and their messages show each invisible
/// character they quote but a line break as its escape
/// ([`domain::text::escaped`]). A value
/// an enum does not have is explained with the values it has.
pub fn code_engine_errors(response: &mut Response) {
    for error in &mut response.errors {
        if let Some(explained) = crate::graphql::enum_values::explain(&error.message) {
            error.message = explained;
        }
        let field = argument_named_in(&error.message).map(str::to_owned);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            // The engine quotes what the client sent (an operation's name,
            // a value) as it came: a direction override or a control
            // character would reshape the message where it is shown. Its
            // own line breaks (a parse error's drawing) stay.
            error.message = error
                .message
                .split('\n')
                .map(domain::text::escaped)
                .collect::<Vec<_>>()
                .join("\n");
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

/// Puts `null` at `path` (in place of what is there, or where the key is
/// missing), unless a parent on the way is missing or null.
fn null_at(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = data;
    for segment in parents {
        let Some(next) = step_into(at, segment) else {
            return;
        };
        at = next;
    }
    match (at, last) {
        (Value::Object(map), PathSegment::Field(name)) => {
            map.insert(Name::new(name), Value::Null);
        }
        (Value::List(items), PathSegment::Index(i)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
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
    fn an_engine_message_shows_what_the_client_sent_escaped() {
        let mut response = Response::from_errors(vec![ServerError::new(
            "Unknown operation named \"a\u{202E}b\nc\u{1b}\"",
            None,
        )]);
        code_engine_errors(&mut response);
        let message = &response.errors[0].message;
        assert!(
            !message.chars().any(|c| c.is_control() && c != '\n'),
            "{message:?}"
        );
        assert!(!message.contains('\u{202E}'), "{message:?}");
        assert!(message.contains("a\\u{202e}b\nc\\u{1b}"), "{message:?}");
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

    const SDL: &str = r#"
        type Query { trail(first: Int): Trail! quote: Quote }
        type Mutation { one: Result two: Result }
        type Trail { nodes: [Entry!]! }
        type Entry { eventType: String! position: Int! payload: String }
        type Quote { id: String! order: Order trail(first: Int): Trail! }
        type Order { id: String! }
        type Result { version: Int! trail(first: Int): Trail! }
        schema { query: Query mutation: Mutation }
    "#;

    fn answered(
        query: &str,
        data: serde_json::Value,
        errors: Vec<ServerError>,
    ) -> serde_json::Value {
        let mut response = Response::new(Value::from_json(data).unwrap());
        response.errors = errors;
        let ran = Ran {
            query: query.to_owned(),
            operation_name: None,
        };
        null_where_failed(response, &FieldTypes::of_sdl(SDL), &ran)
            .data
            .into_json()
            .unwrap()
    }

    fn field(name: &str) -> PathSegment {
        PathSegment::Field(name.into())
    }

    #[test]
    fn a_failed_nullable_field_answers_null_and_nothing_else_changes() {
        let query = "{ trail { nodes { eventType position payload } } quote { order { id } } }";
        let data = serde_json::json!({
            "trail": { "nodes": [
                { "eventType": "QuoteCreated", "position": 0 },
                { "eventType": "LineAdded", "position": 1, "payload": "a" }
            ] },
            "quote": null
        });
        let errors = vec![
            failed_at(vec![
                field("trail"),
                field("nodes"),
                PathSegment::Index(0),
                field("payload"),
            ]),
            // Under a parent async-graphql answered null because its only
            // selected field failed: an object again.
            failed_at(vec![field("quote"), field("order")]),
            // Past the end of a list: left alone.
            failed_at(vec![
                field("trail"),
                field("nodes"),
                PathSegment::Index(7),
                field("payload"),
            ]),
            // A request error has no path.
            failed_at(Vec::new()),
        ];
        assert_eq!(
            answered(query, data, errors),
            serde_json::json!({
                "trail": { "nodes": [
                    { "eventType": "QuoteCreated", "position": 0, "payload": null },
                    { "eventType": "LineAdded", "position": 1, "payload": "a" }
                ] },
                "quote": { "order": null }
            })
        );
    }

    #[test]
    fn a_failed_non_null_field_nulls_its_nearest_nullable_parent() {
        // `Quote.trail` is non-null: the quote (nullable) answers null.
        let query = "{ q: quote { id t: trail(first: 0) { nodes { position } } } }";
        let data = serde_json::json!({ "q": { "id": "q1" } });
        let errors = vec![failed_at(vec![field("q"), field("t")])];
        assert_eq!(
            answered(query, data, errors),
            serde_json::json!({ "q": null })
        );

        // Through fragments and a list of non-null items up to a nullable
        // mutation field; the other mutation keeps its answer.
        let query = "mutation { a: one { ...R } b: two { version } } \
                     fragment R on Result { version trail { ... on Trail { nodes { position } } } }";
        let data = serde_json::json!({
            "a": { "version": 2, "trail": { "nodes": [ {} ] } },
            "b": { "version": 3 }
        });
        let errors = vec![failed_at(vec![
            field("a"),
            field("trail"),
            field("nodes"),
            PathSegment::Index(0),
            field("position"),
        ])];
        assert_eq!(
            answered(query, data, errors),
            serde_json::json!({ "a": null, "b": { "version": 3 } })
        );
    }

    #[test]
    fn a_failed_non_null_root_field_nulls_the_whole_data() {
        let query = "{ quote { id } trail(first: 0) { nodes { position } } }";
        let data = serde_json::json!({ "quote": { "id": "q1" } });
        let errors = vec![failed_at(vec![field("trail")])];
        assert_eq!(answered(query, data, errors), serde_json::Value::Null);
    }

    #[test]
    fn an_object_whose_fields_all_failed_is_an_object_of_nulls_in_selection_order() {
        // async-graphql answers `data: null` when every root field failed.
        let query = "mutation { a: one { version } b: two { version } }";
        let errors = vec![failed_at(vec![field("a")]), failed_at(vec![field("b")])];
        assert_eq!(
            answered(query, serde_json::Value::Null, errors),
            serde_json::json!({ "a": null, "b": null })
        );
        // And a list item whose selected fields all failed.
        let query = "{ trail { nodes { payload } } }";
        let data = serde_json::json!({ "trail": { "nodes": [null, { "payload": "a" }] } });
        let errors = vec![failed_at(vec![
            field("trail"),
            field("nodes"),
            PathSegment::Index(0),
            field("payload"),
        ])];
        assert_eq!(
            answered(query, data, errors),
            serde_json::json!({ "trail": { "nodes": [{ "payload": null }, { "payload": "a" }] } })
        );
        // A failed field keeps its place among the others.
        let query = "mutation { a: one { version } b: two { version } }";
        let mut response =
            Response::new(Value::from_json(serde_json::json!({ "b": { "version": 3 } })).unwrap());
        response.errors = vec![failed_at(vec![field("a")])];
        let ran = Ran {
            query: query.to_owned(),
            operation_name: None,
        };
        let answered = null_where_failed(response, &FieldTypes::of_sdl(SDL), &ran);
        let Value::Object(map) = answered.data else {
            panic!("an object");
        };
        let keys: Vec<&str> = map.keys().map(Name::as_str).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn a_path_the_schema_text_does_not_describe_answers_null_where_it_failed() {
        let query = "{ __schema { types { name } } }";
        let data = serde_json::json!({ "__schema": {} });
        let errors = vec![failed_at(vec![field("__schema"), field("types")])];
        assert_eq!(
            answered(query, data, errors),
            serde_json::json!({ "__schema": { "types": null } })
        );
    }

    #[test]
    fn the_served_schema_s_fields_are_all_read() {
        let schema = crate::graphql::build(None, &crate::config::GraphqlLimits::default());
        let types = FieldTypes::of_sdl(&schema.sdl());
        assert_eq!(types.root(OperationType::Mutation), Some("Mutation"));
        let create = types.field("Mutation", "createQuote").unwrap();
        assert!(
            create.nullable,
            "a mutation that failed answers null beside the others"
        );
        let trail = types.field("QuoteNode", "auditTrail").unwrap();
        assert!(!trail.nullable);
    }
}
