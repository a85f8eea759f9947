//! The CPQ/OMS server: GraphQL (queries, command mutations, live
//! subscriptions) on axum, callback endpoints, bearer-token auth with
//! tenants and roles, health, readiness and Prometheus metrics; it wires
//! the log, the projections and the external-system runtime together.
//!
//! Start it with `oms-server serve` (see the README); [`server::run`] is
//! the same thing as a library call.

pub mod auth;
pub mod book_history;
pub mod config;
pub mod connections;
pub mod console;
pub mod credentials;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod platform;
pub mod pricing;
pub mod runtime;
pub mod server;
pub mod stream_owners;
pub mod terminal;
pub mod websocket;
