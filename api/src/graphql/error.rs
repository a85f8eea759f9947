//! The API's typed errors and their one mapping to GraphQL errors with an
//! `extensions.code`.
//!
//! Internal failures are logged with a fresh correlation id and answered as
//! `INTERNAL` with that id and nothing else.

use application::CommandError;
use async_graphql::ErrorExtensions;
use domain::RuleViolation;

/// Everything a resolver can refuse with.
///
/// Deliberately not `Display`: async-graphql converts any `Display` error
/// into a bare message, which would drop the code. The only way out is
/// the `From<ApiError>` below, which sets `extensions.code`.
#[derive(Debug)]
pub enum ApiError {
    /// The input is malformed (a field named, what is wrong).
    Validation {
        /// The argument or field.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// A domain rule refused the command.
    RuleViolation {
        /// The rule's stable name.
        rule: &'static str,
        /// The domain's explanation.
        message: String,
    },
    /// The client's expected version is not the stream's.
    VersionConflict {
        /// What the client expected.
        expected: u64,
        /// Where the stream is.
        actual: u64,
    },
    /// The command id was used before with different input.
    IdempotencyConflict(String),
    /// No such object for this tenant (also: it belongs to another tenant).
    NotFound(String),
    /// No valid credential.
    Unauthenticated,
    /// The credential's role may not do this.
    Forbidden {
        /// The caller's role.
        role: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The event log failed to store the command (a full disk, a failed
    /// write), failed to read what the command needs, or takes no appends
    /// since such a failure; only a restart of the server lifts it
    /// (`/healthz` says so once the log is fenced), and the client retries
    /// the same command (same `commandId`) after it. `UNAVAILABLE`.
    LogUnavailable {
        /// False when the command failed before it was written (a fenced
        /// log, a failed read: nothing was recorded); true when its write
        /// failed, so it may have been recorded or not.
        outcome_unknown: bool,
    },
    /// A read's storage failed (sled could not read the read model or the
    /// log: a failed or damaged read): nothing was changed, and the client
    /// may retry the read; operations have the detail in the server's log.
    /// `UNAVAILABLE`.
    ReadUnavailable,
    /// An external system the request needs did not answer now (a
    /// timeout, a 5xx, a 429): nothing was recorded, and the client may
    /// retry the same command (same `commandId`) later.
    Unavailable {
        /// The system, e.g. `crm`.
        system: &'static str,
        /// What it answered, as evidence (no payload).
        detail: String,
    },
    /// Other writers changed the aggregate under every attempt the command
    /// path made: nothing was recorded, and the client may retry the same
    /// command (same `commandId`). `UNAVAILABLE`, as a system that did not
    /// answer now, since the remedy is the same.
    Contended {
        /// The stream that kept moving.
        stream_id: String,
    },
    /// An external system answered something the platform cannot use (an
    /// unexpected shape, an unmapped code, refused credentials): retrying
    /// will not help until operations fix it; the detail is logged.
    Upstream {
        /// The system, e.g. `crm`.
        system: &'static str,
        /// What it answered, as evidence (no payload).
        detail: String,
    },
    /// Anything else; the detail goes to the log only.
    Internal(String),
}

impl ApiError {
    /// A validation error for `field`.
    pub fn validation(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// An internal error whose detail is logged, never returned.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// The message shown to the client (internal detail never shown).
    pub fn message(&self) -> String {
        match self {
            ApiError::Validation { field, problem } => format!("{field}: {problem}"),
            ApiError::RuleViolation { message, .. } => message.clone(),
            ApiError::VersionConflict { expected, actual } => {
                format!("expected version {expected}, the stream is at {actual}")
            }
            ApiError::IdempotencyConflict(id) => {
                format!("command id `{id}` was already used for a different command")
            }
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::Unauthenticated => "a valid bearer token is required".to_owned(),
            ApiError::Forbidden { role, action } => format!("the `{role}` role may not {action}"),
            ApiError::ReadUnavailable => "the server could not read its storage now (a failed \
                                          read): nothing was changed; retry the read, and tell \
                                          operations if it keeps failing"
                .to_owned(),
            ApiError::Unavailable { system, detail } => format!(
                "{system} did not answer now ({detail}): nothing was recorded; retry the same command later"
            ),
            ApiError::LogUnavailable {
                outcome_unknown: false,
            } => "the event log failed (a full disk, a failed read or write) and takes no \
                  commands until the server is restarted: nothing was recorded; retry the same \
                  command once the server has been restarted"
                .to_owned(),
            ApiError::LogUnavailable {
                outcome_unknown: true,
            } => "the event log failed to store the command (a full disk, a failed write): it may \
                  or may not have been recorded; retry the same command, same commandId, once \
                  the server has been restarted"
                .to_owned(),
            ApiError::Contended { stream_id } => format!(
                "{stream_id} was changed by other commands at every attempt: nothing was recorded; retry the same command"
            ),
            ApiError::Upstream { system, .. } => format!(
                "{system} answered something the platform cannot use; operations have the detail"
            ),
            ApiError::Internal(_) => "internal error".to_owned(),
        }
    }

    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "VALIDATION",
            ApiError::RuleViolation { .. } => "RULE_VIOLATION",
            ApiError::VersionConflict { .. } => "VERSION_CONFLICT",
            ApiError::IdempotencyConflict(_) => "IDEMPOTENCY_CONFLICT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden { .. } => "FORBIDDEN",
            ApiError::Unavailable { .. }
            | ApiError::Contended { .. }
            | ApiError::LogUnavailable { .. }
            | ApiError::ReadUnavailable => "UNAVAILABLE",
            ApiError::Upstream { .. } => "UPSTREAM_ERROR",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// A read whose storage failed: an I/O failure (which a retry may not
    /// meet again) is `ReadUnavailable`, logged here with its cause (the
    /// client gets no storage detail); sled finding its files damaged or
    /// any other failure is `INTERNAL`, as a retry reads the same bytes.
    pub fn read_failed(error: sled::Error) -> Self {
        match error {
            sled::Error::Io(_) => {
                tracing::error!(%error, "a read failed in storage");
                ApiError::ReadUnavailable
            }
            other => ApiError::internal(other),
        }
    }

    /// Maps a failed read of the log made for a query (`events`): sled's
    /// storage failing is `ReadUnavailable`; anything else (a record that
    /// does not decode) is `INTERNAL`.
    pub fn from_log_read(error: eventlog::LogError) -> Self {
        match error {
            eventlog::LogError::Storage(reason) => ApiError::read_failed(reason),
            other => ApiError::internal(other),
        }
    }

    /// Maps a failed read of the log made for a command (its stream, its
    /// idempotency record, its target's tenant): sled's storage failing
    /// (a full disk, a failed read) is the retryable `LogUnavailable`, as
    /// nothing was recorded; anything else is `INTERNAL`.
    pub fn from_log(error: eventlog::LogError) -> Self {
        match error {
            eventlog::LogError::Storage(reason) => {
                tracing::error!(%reason, "the event log failed to read for a command");
                ApiError::LogUnavailable {
                    outcome_unknown: false,
                }
            }
            other => ApiError::internal(other),
        }
    }

    /// Maps a command path failure: rule refusals keep their rule name; an
    /// append the log refuses as malformed (an event over the payload,
    /// text-field or metadata limits: what the client sent made it too
    /// large) is `VALIDATION` of `input`; a stream that other writers kept
    /// changing is a retryable `UNAVAILABLE`, as is a storage failure of
    /// the log (retry after a restart: nothing was recorded when the log
    /// was already fenced, the outcome is unknown when the write failed).
    pub fn from_command<E>(error: CommandError<E>) -> Self
    where
        E: std::error::Error + RuleViolation,
    {
        match error {
            CommandError::Rejected { source } => ApiError::RuleViolation {
                rule: source.rule(),
                message: source.to_string(),
            },
            CommandError::VersionConflict {
                expected, actual, ..
            } => ApiError::VersionConflict { expected, actual },
            // `Platform::execute` answers a conflict with the client's own
            // command id before it gets here; this is the key as stored.
            CommandError::IdempotencyConflict { command_id } => {
                ApiError::IdempotencyConflict(command_id)
            }
            CommandError::Append(eventlog::AppendError::Invalid(problem)) => {
                tracing::warn!(%problem, "the log refused a command's events as malformed");
                ApiError::validation(
                    "input",
                    format!("the command's events exceed the log's limits: {problem}"),
                )
            }
            CommandError::Append(eventlog::AppendError::Fenced(reason)) => {
                tracing::warn!(%reason, "a command was refused: the event log is fenced");
                ApiError::LogUnavailable {
                    outcome_unknown: false,
                }
            }
            CommandError::Log(error) => ApiError::from_log(error),
            CommandError::Append(eventlog::AppendError::Storage(reason)) => {
                tracing::error!(%reason, "the event log failed to store a command");
                ApiError::LogUnavailable {
                    outcome_unknown: true,
                }
            }
            CommandError::Contention {
                stream_id,
                attempts,
            } => {
                tracing::warn!(%stream_id, attempts, "a command gave up on a contended stream");
                ApiError::Contended { stream_id }
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        let base = async_graphql::Error::new(error.message());
        match &error {
            ApiError::Internal(detail) => {
                let correlation = ulid::Ulid::new().to_string();
                tracing::error!(correlation_id = %correlation, error = %detail, "internal error");
                async_graphql::Error::new("internal error").extend_with(|_, e| {
                    e.set("code", code);
                    e.set("correlationId", correlation.clone());
                })
            }
            ApiError::RuleViolation { rule, .. } => {
                let rule = *rule;
                base.extend_with(|_, e| {
                    e.set("code", code);
                    e.set("rule", rule);
                })
            }
            ApiError::VersionConflict { expected, actual } => {
                let (expected, actual) = (*expected, *actual);
                base.extend_with(|_, e| {
                    e.set("code", code);
                    e.set("expected", expected);
                    e.set("actual", actual);
                })
            }
            ApiError::Unavailable { system, .. } => {
                let system = *system;
                base.extend_with(|_, e| {
                    e.set("code", code);
                    e.set("system", system);
                    e.set("retryable", true);
                })
            }
            ApiError::Contended { .. }
            | ApiError::LogUnavailable { .. }
            | ApiError::ReadUnavailable => base.extend_with(|_, e| {
                e.set("code", code);
                e.set("retryable", true);
            }),
            ApiError::Upstream { system, detail } => {
                let correlation = ulid::Ulid::new().to_string();
                tracing::warn!(correlation_id = %correlation, system = *system, %detail, "external system answered something unusable");
                let system = *system;
                base.extend_with(|_, e| {
                    e.set("code", code);
                    e.set("system", system);
                    e.set("retryable", false);
                    e.set("correlationId", correlation.clone());
                })
            }
            ApiError::Validation { field, .. } => {
                let field = field.clone();
                base.extend_with(|_, e| {
                    e.set("code", code);
                    e.set("field", field.clone());
                })
            }
            _ => base.extend_with(|_, e| e.set("code", code)),
        }
    }
}

impl From<projections::QueryError> for ApiError {
    fn from(error: projections::QueryError) -> Self {
        match error {
            projections::QueryError::InvalidCursor => {
                ApiError::validation("after", "not a cursor this query issued")
            }
            projections::QueryError::Storage(error) => ApiError::read_failed(error),
            other => ApiError::internal(other),
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    /// An admin's rebuild: an unknown name is `VALIDATION` of `name`, a
    /// rebuild of a projector already being rebuilt is the rule
    /// `rebuild_in_progress` (wait for it); the rest is `INTERNAL`.
    fn from(error: projections::ProjectionError) -> Self {
        match error {
            projections::ProjectionError::UnknownProjector(name) => ApiError::validation(
                "name",
                format!(
                    "no projector `{name}`: the projectors are {}, or `all`",
                    projections::PROJECTOR_NAMES.join(", ")
                ),
            ),
            e @ projections::ProjectionError::RebuildInProgress(_) => ApiError::RuleViolation {
                rule: "rebuild_in_progress",
                message: e.to_string(),
            },
            other => ApiError::internal(other),
        }
    }
}

/// The result type of every resolver body.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_carries_only_its_code_and_a_correlation_id() {
        let error: async_graphql::Error = ApiError::internal("disk on fire at /var/x").into();
        assert_eq!(error.message, "internal error");
        let extensions = serde_json::to_value(&error.extensions).unwrap_or_default();
        let keys: Vec<&String> = extensions
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["code", "correlationId"], "{extensions}");
        assert_eq!(extensions["code"], "INTERNAL");
        assert_eq!(extensions["correlationId"].as_str().map(str::len), Some(26));
    }

    #[test]
    fn an_event_over_the_logs_limits_is_validation_not_internal() {
        let error = ApiError::from_command(CommandError::<domain::quote::QuoteError>::Append(
            eventlog::AppendError::Invalid("payload of 200015 bytes exceeds 65536".to_owned()),
        ));
        assert_eq!(error.code(), "VALIDATION", "{error:?}");
    }

    #[test]
    fn a_failed_or_fenced_log_is_a_retryable_unavailable_that_names_the_restart() {
        for (failure, says) in [
            (
                eventlog::AppendError::Fenced("IO error: No space left on device".to_owned()),
                "nothing was recorded",
            ),
            (
                eventlog::AppendError::Storage("IO error: No space left on device".to_owned()),
                "may or may not have been recorded",
            ),
        ] {
            let error =
                ApiError::from_command(CommandError::<domain::quote::QuoteError>::Append(failure));
            assert_unavailable_until_restart(error, says);
        }
        let read = ApiError::from_command(CommandError::<domain::quote::QuoteError>::Log(
            eventlog::LogError::Storage(sled::Error::Io(std::io::Error::other(
                "No space left on device",
            ))),
        ));
        assert_unavailable_until_restart(read, "nothing was recorded");
    }

    fn assert_unavailable_until_restart(error: ApiError, says: &str) {
        assert_eq!(error.code(), "UNAVAILABLE", "{error:?}");
        let error: async_graphql::Error = error.into();
        assert!(error.message.contains("restarted"), "{}", error.message);
        assert!(error.message.contains(says), "{}", error.message);
        assert!(!error.message.contains("No space"), "{}", error.message);
        let extensions = serde_json::to_value(&error.extensions).unwrap_or_default();
        assert_eq!(extensions["retryable"], true, "{extensions}");
    }

    #[test]
    fn a_read_whose_storage_failed_is_a_retryable_unavailable_without_the_detail() {
        let io = || sled::Error::Io(std::io::Error::other("Input/output error at /data/db"));
        let reads: [ApiError; 2] = [
            projections::QueryError::Storage(io()).into(),
            ApiError::from_log_read(eventlog::LogError::Storage(io())),
        ];
        for read in reads {
            assert_eq!(read.code(), "UNAVAILABLE", "{read:?}");
            let error: async_graphql::Error = read.into();
            assert!(
                error.message.contains("retry the read"),
                "{}",
                error.message
            );
            assert!(!error.message.contains("/data/db"), "{}", error.message);
            let extensions = serde_json::to_value(&error.extensions).unwrap_or_default();
            assert_eq!(extensions["retryable"], true, "{extensions}");
        }
        // A row that does not decode, or damaged files, are not the storage
        // failing now: a retry would read the same bytes.
        let corrupt: ApiError = projections::QueryError::Corrupt {
            projector: "quotes",
            message: "bad".to_owned(),
        }
        .into();
        assert_eq!(corrupt.code(), "INTERNAL", "{corrupt:?}");
        let damaged: ApiError =
            projections::QueryError::Storage(sled::Error::Unsupported("damaged".to_owned())).into();
        assert_eq!(damaged.code(), "INTERNAL", "{damaged:?}");
    }

    #[test]
    fn a_rebuild_already_running_or_an_unknown_projector_is_the_callers_not_internal() {
        let running: ApiError =
            projections::ProjectionError::RebuildInProgress("quotes".to_owned()).into();
        assert_eq!(running.code(), "RULE_VIOLATION", "{running:?}");
        let unknown: ApiError =
            projections::ProjectionError::UnknownProjector("nope".to_owned()).into();
        assert_eq!(unknown.code(), "VALIDATION", "{unknown:?}");
    }

    #[test]
    fn a_stream_other_writers_kept_changing_is_a_retryable_unavailable() {
        let error = ApiError::from_command(CommandError::<domain::quote::QuoteError>::Contention {
            stream_id: "quote-q-1".to_owned(),
            attempts: 32,
        });
        assert_eq!(error.code(), "UNAVAILABLE", "{error:?}");
        let error: async_graphql::Error = error.into();
        assert!(
            error.message.contains("retry the same command"),
            "{}",
            error.message
        );
        let extensions = serde_json::to_value(&error.extensions).unwrap_or_default();
        assert_eq!(extensions["retryable"], true, "{extensions}");
    }
}
