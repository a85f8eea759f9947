//! Why the relay could not start or had to pause.

use eventlog::LogError;

use crate::config::RelayConfigError;

/// A relay failure. Starting fails only on [`RelayError::Config`],
/// [`RelayError::NoRuntime`] and [`RelayError::Log`]; the other variants
/// are what the running relay reports in [`crate::RelayStatus::last_error`]
/// while it backs off and retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] RelayConfigError),
    /// `Relay::start` was called outside a tokio runtime.
    #[error("relay: no tokio runtime to run on (start the relay inside one)")]
    NoRuntime,
    /// The event log failed (reading, or committing the checkpoint).
    #[error("relay: event log: {0}")]
    Log(#[from] LogError),
    /// NATS is unreachable.
    #[error("relay: NATS at {url} is unreachable: {message}")]
    Connect {
        /// The configured URL, without its credentials
        /// ([`crate::RelayConfig::shown_url`]).
        url: String,
        /// The client's reason.
        message: String,
    },
    /// The JetStream stream could not be found or created.
    #[error("relay: JetStream stream {stream}: {message}")]
    Stream {
        /// The stream name.
        stream: String,
        /// The server's or client's reason.
        message: String,
    },
    /// A publish was not acknowledged.
    #[error("relay: publish of position {position} was not acknowledged: {message}")]
    Publish {
        /// The first position not acknowledged.
        position: u64,
        /// The client's reason.
        message: String,
    },
    /// An event cannot be relayed (its payload does not decode, or its
    /// message is over what the stream and server take); the relay
    /// stops there and records the failure on its consumer.
    #[error("relay: event at position {position} cannot be relayed: {message}")]
    Poison {
        /// Its position.
        position: u64,
        /// Why.
        message: String,
    },
}
