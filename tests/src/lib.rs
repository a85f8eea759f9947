//! End-to-end tests that drive the real server over HTTP.
//!
//! Filled by the server issue.
