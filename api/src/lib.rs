//! The server: GraphQL API, callback endpoints, auth and observability.
//!
//! Filled by the server issue.
