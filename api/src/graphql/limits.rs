//! Per-operation limits checked on the parsed document before it executes,
//! over HTTP and WebSocket alike ([`LimitedSchema`]):
//!
//! - **Depth** of the selection (each field one level, fragments inlined,
//!   the root field is level 1): at most `graphql.max_depth` (default 12)
//!   outside introspection.
//! - **Introspection** (`__schema`, `__type`) has its own bound, because the
//!   standard introspection query of GraphiQL, graphql-js and codegen tools
//!   follows `ofType` nine levels deep (depth 15 in all): at most
//!   [`INTROSPECTION_MAX_DEPTH`] levels, and at most
//!   [`INTROSPECTION_MAX_LISTS`] list-valued introspection fields nested in
//!   one another (`types > fields > args` in the standard query). Depth in
//!   `ofType` chains costs one object per level; nested lists multiply the
//!   answer, so they are what is bounded tightly.
//! - **Mutations**: at most `graphql.max_mutations` root mutation fields per
//!   operation (aliases count; default 8), and, over HTTP, per request in
//!   total over a batch ([`LimitedSchema::mutation_fields`]).
//! - **Subscriptions**: exactly one root field per subscription operation,
//!   selected directly, not through a fragment, and without `@skip` or
//!   `@include` (GraphQL's "single root field" rule; async-graphql runs
//!   only the fields of the root set, so a root field inside a fragment
//!   would run nothing). async-graphql would run each root field as a
//!   stream of its own, so one `subscribe` could open a thousand readers
//!   of the log past the per-connection bound of
//!   [`crate::websocket::MAX_SUBSCRIPTIONS`].
//! - **Walk**: at most [`MAX_NESTING`] nested selection sets and
//!   [`MAX_VISITS`] visited selections (fragments spread many times count
//!   every time), so the check itself is bounded.
//!
//! Complexity stays async-graphql's (`limit_complexity`). Refusals are
//! `VALIDATION` errors.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Data, Executor, Name, Positioned, Request, Response, ServerError};

use super::documents::{Admitted, DocumentCache};
use super::empty_objects::strip_kept;
use super::field_errors::{
    code_engine_errors, name_unparsed_arguments, null_where_failed, FieldTypes, Ran,
};
use super::OmsSchema;

/// Deepest accepted introspection selection.
pub const INTROSPECTION_MAX_DEPTH: usize = 16;
/// Most list-valued introspection fields nested in one another.
pub const INTROSPECTION_MAX_LISTS: usize = 3;
/// Most selection sets (fields, inline fragments, fragment spreads)
/// nested in one another, whatever their kind.
pub const MAX_NESTING: usize = 64;
/// Most selections visited when checking one document.
pub const MAX_VISITS: usize = 100_000;

/// Most lists of objects nested in one another in a selection (a page's
/// `nodes` counts): each multiplies the work by its length, and links lead
/// from an order's lines back to an order.
pub const MAX_NESTED_LISTS: usize = 3;

/// Names of the fields that return a list of objects in some object or
/// interface type of the served schema (read from its SDL once). A name
/// that is a list in one type counts as one everywhere, which is only
/// stricter.
fn object_list_fields() -> &'static std::collections::HashSet<String> {
    static FIELDS: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
        let Ok(document) = async_graphql::parser::parse_schema(crate::graphql::sdl()) else {
            return std::collections::HashSet::new();
        };
        let types: Vec<_> = document
            .definitions
            .iter()
            .filter_map(|d| match d {
                TypeSystemDefinition::Type(t) => Some(&t.node),
                _ => None,
            })
            .collect();
        let objects: std::collections::HashSet<&str> = types
            .iter()
            .filter(|t| {
                matches!(
                    t.kind,
                    TypeKind::Object(_) | TypeKind::Interface(_) | TypeKind::Union(_)
                )
            })
            .map(|t| t.name.node.as_str())
            .collect();
        // The named type inside a list type (`[Order!]!` -> `Order`).
        fn list_of(ty: &Type) -> Option<&str> {
            let BaseType::List(first) = &ty.base else {
                return None;
            };
            let mut inner: &Type = first;
            loop {
                match &inner.base {
                    BaseType::List(next) => inner = next,
                    BaseType::Named(name) => return Some(name.as_str()),
                }
            }
        }
        let mut fields = std::collections::HashSet::new();
        for t in &types {
            let defined = match &t.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                _ => continue,
            };
            for field in defined {
                if list_of(&field.node.ty.node).is_some_and(|inner| objects.contains(inner)) {
                    fields.insert(field.node.name.node.to_string());
                }
            }
        }
        fields
    })
}

/// The list-valued fields of the introspection types.
const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "directives",
    "fields",
    "args",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "inputFields",
];

/// The limits of one schema.
#[derive(Clone, Copy, Debug)]
pub struct OperationLimits {
    /// Deepest selection outside introspection.
    pub max_depth: usize,
    /// Most root mutation fields per operation and per HTTP request.
    pub max_mutations: usize,
    /// Most selections a document visits ([`OperationLimits::for_complexity`]).
    pub max_selections: usize,
}

/// Why a document is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Deeper than `max_depth`.
    TooDeep(usize),
    /// Introspection deeper than [`INTROSPECTION_MAX_DEPTH`].
    IntrospectionTooDeep,
    /// Introspection nesting more than [`INTROSPECTION_MAX_LISTS`] lists.
    IntrospectionFansOut,
    /// More root mutation fields than allowed.
    TooManyMutations(usize),
    /// A subscription operation with more than one root field, one inside
    /// a fragment, or one under `@skip` or `@include`.
    SubscriptionRootFields,
    /// More than [`MAX_NESTED_LISTS`] lists of objects nested in one
    /// another.
    ListsNestTooDeep,
    /// More selections visited than allowed.
    TooManySelections(usize),
    /// Beyond [`MAX_NESTING`].
    TooLarge,
    /// A query text longer than [`super::documents::MAX_QUERY_BYTES`].
    QueryTooLong,
    /// A query text that does not parse: the parser's message, without
    /// the quoted line when that is long ([`syntax_message`]), and where.
    Syntax {
        /// What the parser expected.
        message: String,
        /// Where the parser stopped.
        at: Option<async_graphql::Pos>,
    },
}

impl Refusal {
    /// The message the client sees.
    pub fn message(&self) -> String {
        match self {
            Refusal::TooDeep(max) => {
                format!("The query is nested too deep: at most {max} levels")
            }
            Refusal::IntrospectionTooDeep => format!(
                "The introspection query is nested too deep: at most {INTROSPECTION_MAX_DEPTH} levels"
            ),
            Refusal::IntrospectionFansOut => format!(
                "The introspection query nests too many lists: at most {INTROSPECTION_MAX_LISTS}"
            ),
            Refusal::TooManyMutations(max) => {
                format!("at most {max} mutation fields per operation and per request")
            }
            Refusal::SubscriptionRootFields => "A subscription selects exactly one root field, \
                 directly (not through a fragment) and without @skip or @include: subscribe \
                 once per field"
                .to_owned(),
            Refusal::ListsNestTooDeep => format!(
                "The query nests lists of objects too deep: at most {MAX_NESTED_LISTS} in one \
                 another (a page's nodes count); ask for the inner lists of one object at a time"
            ),
            Refusal::TooManySelections(max) => format!(
                "The query selects too many fields: at most {max} selections, each spread of a fragment counting again"
            ),
            Refusal::TooLarge => "The query is nested too deep or too large".to_owned(),
            Refusal::Syntax { message, .. } => message.clone(),
            Refusal::QueryTooLong => format!(
                "The query text is longer than {} KiB: pass values as variables",
                super::documents::MAX_QUERY_BYTES / 1024
            ),
        }
    }

    /// As a GraphQL error with `extensions.code` `VALIDATION`.
    pub fn to_server_error(&self) -> ServerError {
        let at = match self {
            Refusal::Syntax { at, .. } => *at,
            _ => None,
        };
        let mut error = ServerError::new(self.message(), at);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "VALIDATION");
        error.extensions = Some(extensions);
        error
    }
}

impl OperationLimits {
    /// The limits of a schema whose complexity limit is `max_complexity`:
    /// at most twice that many selections (never more than [`MAX_VISITS`]).
    pub fn for_complexity(max_depth: usize, max_mutations: usize, max_complexity: usize) -> Self {
        Self {
            max_depth,
            max_mutations,
            max_selections: max_complexity.saturating_mul(2).min(MAX_VISITS),
        }
    }

    /// Checks every operation of `query`; the number of root mutation
    /// fields of its largest mutation operation.
    ///
    /// # Errors
    /// [`Refusal::Syntax`] for a text that does not parse, else the first
    /// limit exceeded.
    pub fn check(&self, query: &str) -> Result<usize, Refusal> {
        let document =
            async_graphql::parser::parse_query(query).map_err(|error| Refusal::Syntax {
                message: syntax_message(&error.to_string()),
                at: error.positions().next(),
            })?;
        self.check_document(&document)
    }

    /// [`OperationLimits::check`] of a parsed document.
    pub(crate) fn check_document(&self, document: &ExecutableDocument) -> Result<usize, Refusal> {
        let mut walk = Walk {
            fragments: &document.fragments,
            limits: self,
            visits: 0,
            path: Vec::new(),
        };
        let operations: Vec<_> = match &document.operations {
            DocumentOperations::Single(operation) => vec![operation],
            DocumentOperations::Multiple(operations) => operations.values().collect(),
        };
        let mut mutations = 0;
        for operation in operations {
            let set = &operation.node.selection_set.node;
            walk.selections(set, Level::default())?;
            if operation.node.ty == OperationType::Subscription && !one_direct_root_field(set) {
                return Err(Refusal::SubscriptionRootFields);
            }
            if operation.node.ty == OperationType::Mutation {
                let count = walk.root_fields(set, 0)?;
                if count > self.max_mutations {
                    return Err(Refusal::TooManyMutations(self.max_mutations));
                }
                mutations = mutations.max(count);
            }
        }
        Ok(mutations)
    }
}

/// Whether a subscription's selection set is one field, selected directly
/// and without `@skip` or `@include`: async-graphql runs the fields of a
/// subscription's root set only, so a root field inside a fragment would
/// run nothing (the subscription completed at once, with no error), and
/// GraphQL allows no condition on it.
fn one_direct_root_field(set: &SelectionSet) -> bool {
    match set.items.as_slice() {
        [item] => match &item.node {
            Selection::Field(field) => !field
                .node
                .directives
                .iter()
                .any(|d| matches!(d.node.name.node.as_str(), "skip" | "include")),
            _ => false,
        },
        _ => false,
    }
}

#[derive(Clone, Copy, Default)]
struct Level {
    depth: usize,
    nesting: usize,
    introspection: bool,
    lists: usize,
}

struct Walk<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    limits: &'a OperationLimits,
    visits: usize,
    path: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn visit(&mut self, nesting: usize) -> Result<(), Refusal> {
        self.visits += 1;
        let most = self.limits.max_selections.min(MAX_VISITS);
        if self.visits > most {
            return Err(Refusal::TooManySelections(most));
        }
        if nesting > MAX_NESTING {
            return Err(Refusal::TooLarge);
        }
        Ok(())
    }

    fn selections(&mut self, set: &'a SelectionSet, at: Level) -> Result<(), Refusal> {
        for item in &set.items {
            let nesting = at.nesting + 1;
            self.visit(nesting)?;
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let mut next = Level {
                        depth: at.depth + 1,
                        nesting,
                        ..at
                    };
                    if !next.introspection && matches!(name, "__schema" | "__type") {
                        next.introspection = true;
                    }
                    if next.introspection {
                        if INTROSPECTION_LISTS.contains(&name) {
                            next.lists += 1;
                        }
                        if next.depth > INTROSPECTION_MAX_DEPTH {
                            return Err(Refusal::IntrospectionTooDeep);
                        }
                        if next.lists > INTROSPECTION_MAX_LISTS {
                            return Err(Refusal::IntrospectionFansOut);
                        }
                    } else {
                        if next.depth > self.limits.max_depth {
                            return Err(Refusal::TooDeep(self.limits.max_depth));
                        }
                        if object_list_fields().contains(name) {
                            next.lists += 1;
                            if next.lists > MAX_NESTED_LISTS {
                                return Err(Refusal::ListsNestTooDeep);
                            }
                        }
                    }
                    self.selections(&field.node.selection_set.node, next)?;
                }
                Selection::InlineFragment(fragment) => {
                    let next = Level { nesting, ..at };
                    self.selections(&fragment.node.selection_set.node, next)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A cycle is the engine's validation error; stop here.
                    if self.path.contains(&name) {
                        continue;
                    }
                    let Some(fragment) = self.fragments.get(name) else {
                        continue;
                    };
                    self.path.push(name);
                    let next = Level { nesting, ..at };
                    let result = self.selections(&fragment.node.selection_set.node, next);
                    self.path.pop();
                    result?;
                }
            }
        }
        Ok(())
    }

    /// Root fields of a selection set, through fragments (`__typename`,
    /// which runs no mutation, not counted).
    fn root_fields(&mut self, set: &'a SelectionSet, nesting: usize) -> Result<usize, Refusal> {
        let mut count = 0;
        for item in &set.items {
            self.visit(nesting + 1)?;
            count += match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.name.node.as_str() != "__typename")
                }
                Selection::InlineFragment(fragment) => {
                    self.root_fields(&fragment.node.selection_set.node, nesting + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match self.fragments.get(name) {
                        Some(fragment) if !self.path.contains(&name) => {
                            self.path.push(name);
                            let result =
                                self.root_fields(&fragment.node.selection_set.node, nesting + 1);
                            self.path.pop();
                            result?
                        }
                        _ => 0,
                    }
                }
            };
        }
        Ok(count)
    }
}

/// The parser's message for a query text that does not parse, as the
/// client reads it: unchanged when short; else only its position line
/// (` --> line:column`) and its explanation (`= expected ...`), each cut
/// to 200 bytes, without the quoted line of the text and its caret line
/// (a 250 KB line was answered twice over).
pub fn syntax_message(message: &str) -> String {
    const SHORT: usize = 512;
    if message.len() <= SHORT {
        return message.to_owned();
    }
    let cut = |line: &str| {
        let mut end = line.len().min(200);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line[..end].to_owned()
    };
    let kept: Vec<String> = message
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("-->") || line.starts_with('='))
        .map(cut)
        .collect();
    if kept.is_empty() {
        cut(message)
    } else {
        kept.join("\n")
    }
}

/// What a client reads when its operation outran the request timeout.
pub const TIMED_OUT: &str = "the request did not finish within the server's request timeout; \
     a query can be sent again, a mutation may or may not have been applied: retry it with \
     the same commandId";

/// The schema behind the operation limits: every request and subscription
/// is checked before the engine sees it.
#[derive(Clone)]
pub struct LimitedSchema {
    schema: OmsSchema,
    documents: Arc<DocumentCache>,
    /// The schema's field types, to answer field errors as the
    /// specification has it.
    types: Arc<FieldTypes>,
    /// Longest a query or mutation sent over a WebSocket may run (the
    /// HTTP router bounds its own requests); `None`: unbounded.
    operation_timeout: Option<std::time::Duration>,
}

impl LimitedSchema {
    /// `schema` with `limits`.
    pub fn new(schema: OmsSchema, limits: OperationLimits) -> Self {
        Self {
            types: Arc::new(FieldTypes::of_sdl(&schema.sdl())),
            schema,
            documents: Arc::new(DocumentCache::new(limits)),
            operation_timeout: None,
        }
    }

    /// The same schema, whose queries and mutations run over a WebSocket
    /// (as graphql-transport-ws allows) answer `TIMEOUT` once they run
    /// past `timeout`, as they do over HTTP; subscriptions run on.
    pub fn with_operation_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// The limits.
    pub fn limits(&self) -> OperationLimits {
        self.documents.limits()
    }

    /// The root mutation fields `request` would run, for the per-request
    /// total of a batch.
    ///
    /// # Errors
    /// A limit of one operation exceeded.
    pub fn mutation_fields(&self, request: &mut Request) -> Result<usize, Refusal> {
        self.documents.check(request)
    }
}

impl LimitedSchema {
    /// Everything checked before the engine sees `request`: the limits
    /// (the document is left parsed in the request), then the variables,
    /// defaults given and none missing. A refused document is not parsed
    /// again to look at its variables.
    fn prepare(&self, request: &mut Request) -> Result<Admitted, ServerError> {
        let admitted = self
            .documents
            .admit(request)
            .map_err(|refusal| refusal.to_server_error())?;
        if let Ok(document) = request.parsed_query() {
            if let Some(refused) = super::enum_literals::string_for_an_enum(&self.types, document) {
                return Err(refused);
            }
        }
        super::variables::with_defaults(request);
        match super::variables::unprovided(request) {
            Some(unprovided) => Err(unprovided),
            None => Ok(admitted),
        }
    }
}

/// The engine's `response` as the schema promises it: failed fields null
/// where nullable, the fields [`DocumentCache::admit`] added taken out,
/// every error coded.
fn answered(response: Response, types: &FieldTypes, ran: &Ran, admitted: Admitted) -> Response {
    let mut response = null_where_failed(response, types, ran);
    if admitted.kept {
        strip_kept(&mut response.data);
    }
    name_unparsed_arguments(&mut response, types, ran);
    code_engine_errors(&mut response);
    response
}

impl Executor for LimitedSchema {
    fn execute(&self, mut request: Request) -> impl Future<Output = Response> + Send {
        let prepared = self.prepare(&mut request);
        let schema = self.schema.clone();
        let types = self.types.clone();
        async move {
            match prepared {
                Ok(admitted) => {
                    let ran = Ran::of(&request);
                    let response = schema.execute(request).await;
                    answered(response, &types, &ran, admitted)
                }
                Err(refused) => Response::from_errors(vec![refused]),
            }
        }
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let admitted = match self.prepare(&mut request) {
            Ok(admitted) => admitted,
            Err(refused) => {
                return stream::once(async move { Response::from_errors(vec![refused]) }).boxed()
            }
        };
        let deadline = self
            .operation_timeout
            .filter(|_| !runs_a_subscription(&mut request))
            .map(|timeout| tokio::time::Instant::now() + timeout);
        let ran = Ran::of(&request);
        let types = self.types.clone();
        let responses = Executor::execute_stream(&self.schema, request, session_data)
            .map(move |response| answered(response, &types, &ran, admitted))
            .boxed();
        match deadline {
            None => responses,
            // A query or mutation answers once, or times out.
            Some(deadline) => stream::once(first_within(responses, deadline))
                .filter_map(std::future::ready)
                .boxed(),
        }
    }
}

/// Whether `request` runs a subscription operation (the one it names, or
/// its only one); a document that does not parse runs none.
fn runs_a_subscription(request: &mut Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    super::variables::selected_operation(&document.operations, name.as_deref())
        .is_some_and(|operation| operation.node.ty == OperationType::Subscription)
}

/// The first response of `responses`, or a `TIMEOUT` error at `deadline`
/// (the execution is dropped, as an HTTP request's is).
async fn first_within(
    mut responses: BoxStream<'static, Response>,
    deadline: tokio::time::Instant,
) -> Option<Response> {
    match tokio::time::timeout_at(deadline, responses.next()).await {
        Ok(response) => response,
        Err(_) => {
            let mut error = ServerError::new(TIMED_OUT, None);
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", "TIMEOUT");
            error.extensions = Some(extensions);
            Some(Response::from_errors(vec![error]))
        }
    }
}

/// The standard introspection query, as GraphiQL (graphql-js 16) sends it
/// for its documentation pane, with `ofType` nine levels deep.
pub const STANDARD_INTROSPECTION_QUERY: &str = r"
query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
";

#[cfg(test)]
mod tests {
    use super::*;

    /// A long line of a text that does not parse is not quoted back; a
    /// short message is left as the parser wrote it.
    #[test]
    fn a_syntax_error_does_not_quote_a_long_line_back() {
        let long = format!("{{ me {{{} }}", " role".repeat(10_000));
        let error = async_graphql::parser::parse_query(&long).expect_err("does not parse");
        let message = syntax_message(&error.to_string());
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("--> 1:"), "{message}");
        assert!(message.contains("expected"), "{message}");
        let short = async_graphql::parser::parse_query("{ me { role ").expect_err("does not parse");
        assert_eq!(syntax_message(&short.to_string()), short.to_string());
    }

    fn limits() -> OperationLimits {
        OperationLimits::for_complexity(12, 8, 2_000)
    }

    #[test]
    fn the_standard_introspection_query_passes_and_fanning_out_does_not() {
        assert_eq!(limits().check(STANDARD_INTROSPECTION_QUERY), Ok(0));
        let fan_out = "{ __type(name: \"Query\") { fields { type { fields { type { fields { \
                       type { fields { name } } } } } } } } }";
        assert_eq!(limits().check(fan_out), Err(Refusal::IntrospectionFansOut));
        let mut deep = String::from("{ __type(name: \"Query\") { ");
        deep.push_str(&"ofType { ".repeat(16));
        deep.push_str("name");
        deep.push_str(&" }".repeat(18));
        assert_eq!(limits().check(&deep), Err(Refusal::IntrospectionTooDeep));
    }

    #[tokio::test]
    async fn the_served_schema_answers_the_standard_introspection_query() {
        let schema = crate::graphql::limited(None, &crate::config::GraphqlLimits::default());
        let response = Executor::execute(&schema, Request::new(STANDARD_INTROSPECTION_QUERY)).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().unwrap_or_default();
        assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    }

    /// A query sent over a WebSocket (graphql-transport-ws runs queries
    /// and mutations too) answers `TIMEOUT` once it waits past the request
    /// timeout, as over HTTP; a probe's ran 45 s and answered 12 MB. An
    /// answer in time passes unchanged, and a subscription is not bounded.
    #[tokio::test]
    async fn a_query_streamed_over_a_websocket_times_out_and_a_subscription_does_not() {
        let soon = || tokio::time::Instant::now() + std::time::Duration::from_millis(20);
        let waiting = stream::pending::<Response>().boxed();
        let answer = first_within(waiting, soon()).await.unwrap_or_default();
        let code = answer
            .errors
            .first()
            .and_then(|e| e.extensions.as_ref())
            .and_then(|x| x.get("code"))
            .cloned();
        assert_eq!(
            code,
            Some(async_graphql::Value::from("TIMEOUT")),
            "{:?}",
            answer.errors
        );
        let ready = stream::once(async { Response::new(async_graphql::Value::Null) }).boxed();
        let answer = first_within(ready, soon()).await.unwrap_or_default();
        assert!(answer.errors.is_empty(), "{:?}", answer.errors);
        let mut subscription = Request::new("subscription { events(from: 0) { position } }");
        assert!(runs_a_subscription(&mut subscription));
        let mut named =
            Request::new("query Q { me { tenant } } subscription S { events { position } }")
                .operation_name("S");
        assert!(runs_a_subscription(&mut named));
        assert!(!runs_a_subscription(&mut named.operation_name("Q")));
    }

    /// Lists of objects nest at most three deep: links lead from an
    /// order's lines back to an order, and each list multiplies the work by
    /// its length, which no weight knows before the rows are read. A probe's
    /// `order { lines { steps { handoff { order { lines { steps ... } } } } } }`
    /// weighed about 10 and ran 12 s into 1.1 GB over an order of 144 lines.
    #[test]
    fn lists_of_objects_nest_at_most_three_deep() {
        for refused in [
            "{ order(id: \"o\") { lines { steps { handoff { order { lines { steps { kind } } } } } } } }",
            "{ order(id: \"o\") { lines { handoffs { handoff { order { lines { steps { kind } } } } } } } }",
            "{ orders(first: 200) { nodes { lines { steps { handoff { calls { at } } } } } } }",
            "query { ...F } fragment F on Query { orders { nodes { lines { steps { kind } history { at } } } } }\
             fragment G on Query { x }",
        ] {
            let verdict = limits().check(refused);
            if refused.contains("history") {
                // Three deep, side by side: allowed.
                assert!(verdict.is_ok(), "{refused}: {verdict:?}");
            } else {
                assert_eq!(verdict, Err(Refusal::ListsNestTooDeep), "{refused}");
            }
        }
        // The console's order page: lines > steps > calls.
        let order_page =
            "{ order(id: \"o\") { lines { steps { handoff { calls { at } observations { class } } }
                           history { at } } auditTrail(first: 200) { nodes { eventId } } } }";
        assert_eq!(limits().check(order_page), Ok(0));
        // A list of scalars or enums does not count.
        let journeys = "{ orders { nodes { lines { fallout { case { allowedActions } } } } } }";
        assert_eq!(limits().check(journeys), Ok(0));
    }

    #[test]
    fn at_most_eight_mutation_fields_per_operation_through_aliases_and_fragments() {
        let aliased = |n: usize| {
            let fields: Vec<String> = (0..n)
                .map(|i| {
                    format!("a{i}: createQuote(commandId: \"c{i}\", customerId: \"x\") {{ id }}")
                })
                .collect();
            format!("mutation {{ {} }}", fields.join(" "))
        };
        assert_eq!(limits().check(&aliased(8)), Ok(8));
        assert_eq!(
            limits().check(&aliased(9)),
            Err(Refusal::TooManyMutations(8))
        );
        let through_fragments = "mutation { ...M ... on Mutation { ...M } __typename } \
             fragment M on Mutation { a: verifyLog b: verifyLog c: verifyLog d: verifyLog e: verifyLog }";
        assert_eq!(
            limits().check(through_fragments),
            Err(Refusal::TooManyMutations(8))
        );
    }

    #[test]
    fn a_subscription_selects_one_root_field_directly() {
        let one = "subscription { events(from: 0) { position } }";
        assert_eq!(limits().check(one), Ok(0));
        for many in [
            "subscription { a: events(from: 0) { position } b: events(from: 0) { position } }",
            "subscription S { ...E ... on Subscription { ...E } } \
             fragment E on Subscription { events(from: 0) { position } }",
            "subscription { events(from: 0) { position } __typename }",
            "query Q { me { tenant } } subscription S { a: events { position } b: events { position } }",
            "subscription { events(from: 0) @skip(if: true) { position } }",
            "subscription($x: Boolean!) { ... @include(if: $x) { events { position } } }",
            // One root field, but inside a fragment: async-graphql ran
            // nothing and completed the subscription at once.
            "subscription S { ...F } fragment F on Subscription { events(from: 0) { position } }",
            "subscription { ... on Subscription { events(from: 0) { position } } }",
            "subscription { ... { events(from: 0) { position } } }",
        ] {
            assert_eq!(
                limits().check(many),
                Err(Refusal::SubscriptionRootFields),
                "{many}"
            );
        }
        // A query may select many root fields, as before.
        assert_eq!(
            limits().check("{ a: me { tenant } b: me { tenant } }"),
            Ok(0)
        );
    }

    #[test]
    fn fragment_cycles_and_explosions_do_not_hang_the_check() {
        assert!(limits()
            .check("{ ...A } fragment A on Query { ...A me { tenant } }")
            .is_ok());
        let mut doc = String::from("{ ...F0 }");
        for i in 0..40 {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        doc.push_str(" fragment F40 on Query { me { tenant } }");
        assert_eq!(limits().check(&doc), Err(Refusal::TooManySelections(4_000)));
    }

    #[test]
    fn a_document_of_more_selections_than_twice_the_complexity_limit_is_refused_before_validation()
    {
        let within = format!("{{ {} }}", "me { tenant } ".repeat(1_000));
        assert!(limits().check(&within).is_ok());
        let beyond = format!("{{ {} }}", "me { tenant } ".repeat(2_001));
        assert_eq!(
            limits().check(&beyond),
            Err(Refusal::TooManySelections(4_000))
        );
        let refused = Refusal::TooManySelections(4_000).message();
        assert!(refused.contains("at most 4000 selections"), "{refused}");
    }
}
