//! End-to-end tests: each starts the real `oms-server` binary on a free
//! loopback port with its own temporary data directory and drives it over
//! HTTP (and WebSocket, and headless Chromium for GraphiQL).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod access;
mod capabilities;
mod catalog;
mod console;
mod crm_policy;
mod damaged_log;
mod disk_full;
mod documents;
mod errors;
mod flow;
mod graphiql;
mod hardening;
mod idempotency_first;
mod input_hygiene;
mod links;
mod live;
mod metrics;
mod price_book;
mod quote_size;
mod repair;
mod reset;
mod restart;
