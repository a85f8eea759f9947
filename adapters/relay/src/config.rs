//! What the relay is told: where NATS is, which stream, which events of
//! which tenant, and how hard to push.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::subject::{is_valid_prefix, is_valid_stream_name};

/// Which events of a tenant the relay publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishMode {
    /// Every event of the tenant.
    #[default]
    All,
    /// Only integration events ([`domain::integration::INTEGRATION_EVENT_TYPES`]).
    Integration,
    /// Nothing: the tenant's events never leave this node.
    None,
}

impl PublishMode {
    /// True when an event of type `event_type` is published under this mode.
    pub fn admits(self, event_type: &str) -> bool {
        match self {
            Self::All => true,
            Self::Integration => domain::integration::is_integration_event(event_type),
            Self::None => false,
        }
    }
}

/// Configuration of the JetStream relay (`[relay]` in the server's
/// configuration). Every key has a default; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Run the relay at all (default false: the embedded platform stays
    /// self-contained).
    pub enabled: bool,
    /// NATS server URL (default `nats://127.0.0.1:4222`).
    pub url: String,
    /// JetStream stream the events go to; created with subjects
    /// `<subject_prefix>.>` when missing (default `OMS`).
    pub stream: String,
    /// First subject token(s) (default `oms`): subjects are
    /// `<prefix>.<tenant>.<aggregate type>.<event type>`.
    pub subject_prefix: String,
    /// What is published for tenants not listed in `tenants` (default all).
    pub publish: PublishMode,
    /// Per-tenant override of `publish`.
    pub tenants: BTreeMap<String, PublishMode>,
    /// Most events read from the log at once, and most acknowledged events
    /// between two checkpoint commits (default 512).
    pub batch_size: usize,
    /// Most publishes awaiting JetStream's acknowledgement (default 4096).
    pub max_in_flight: usize,
    /// JetStream duplicate window set on a stream the relay creates, in
    /// seconds (default 120). A re-publish within it is dropped by the
    /// server; past it a re-publish is stored again.
    pub duplicate_window_s: u64,
    /// This relay is the only publisher to `stream` (default true). Every
    /// publish then names its predecessor (`Nats-Expected-Last-Msg-Id`), so
    /// a publish lost with a broken connection can never be overtaken by a
    /// later one, and a restart resumes after the stream's last event.
    /// Set false when several nodes relay into one stream: order then holds
    /// per subject except across a connection loss (see `docs/scaling.md`).
    pub exclusive: bool,
    /// Replicas of a stream the relay creates (default 1; 3 on a cluster).
    pub replicas: usize,
    /// How long a publish waits for its acknowledgement, in ms (default 5000).
    pub ack_timeout_ms: u64,
    /// First retry delay after a failure, in ms (default 100).
    pub backoff_min_ms: u64,
    /// Longest retry delay while the server is unreachable, in ms (default 10000).
    pub backoff_max_ms: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "OMS".to_owned(),
            subject_prefix: "oms".to_owned(),
            publish: PublishMode::All,
            tenants: BTreeMap::new(),
            batch_size: 512,
            max_in_flight: 4096,
            duplicate_window_s: 120,
            exclusive: true,
            replicas: 1,
            ack_timeout_ms: 5_000,
            backoff_min_ms: 100,
            backoff_max_ms: 10_000,
        }
    }
}

/// A configuration value the relay cannot run with, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relay configuration: `relay.{key}` {problem}")]
pub struct RelayConfigError {
    /// The key, e.g. `batch_size` or `tenants.acme`.
    pub key: String,
    /// What is wrong with its value.
    pub problem: String,
}

fn refuse(key: &str, problem: impl Into<String>) -> Result<(), RelayConfigError> {
    Err(RelayConfigError {
        key: key.to_owned(),
        problem: problem.into(),
    })
}

/// Upper bound of `batch_size` and `max_in_flight`.
pub(crate) const MAX_WINDOW: usize = 65_536;

/// The schemes a NATS URL may name.
const SCHEMES: [&str; 4] = ["nats", "tls", "ws", "wss"];

/// The user information (`user:password@`, `token@`) of each server of a
/// NATS URL (a comma-separated list): the credentials it carries.
fn credentials_of(url: &str) -> Vec<&str> {
    url.split(',')
        .filter_map(|server| {
            let server = server.trim();
            let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
            let authority = rest.split('/').next().unwrap_or(rest);
            authority.rsplit_once('@').map(|(user, _)| user)
        })
        .filter(|user| !user.is_empty())
        .collect()
}

/// Why `url` is not a NATS URL the relay can use, if it is not: each
/// server of the comma-separated list is `[scheme://][credentials@]host[:port]`,
/// with a scheme of [`SCHEMES`] and a port of 1 to 65535.
fn url_problem(url: &str) -> Option<String> {
    for server in url.split(',').map(str::trim) {
        let rest = match server.split_once("://") {
            Some((scheme, rest)) if SCHEMES.contains(&scheme) => rest,
            Some((scheme, _)) => {
                return Some(format!(
                    "names the scheme `{}`: a NATS URL's is nats, tls, ws or wss",
                    domain::text::escaped(scheme)
                ))
            }
            None => server,
        };
        // Not echoed: a query is where a token is pasted by mistake.
        if rest.contains(['?', '#']) {
            return Some(
                "has a query or fragment, which a NATS URL does not take (credentials go \
                 before the host: nats://user:password@host:4222)"
                    .to_owned(),
            );
        }
        let authority = rest.split('/').next().unwrap_or(rest);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.rsplit_once(':') {
            // An IPv6 address in brackets keeps its colons.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (host_port, None),
        };
        if host.is_empty() {
            return Some("names a server without a host".to_owned());
        }
        if let Some(port) = port {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Some(format!(
                    "names the port `{}`: a port is 1 to 65535",
                    domain::text::escaped(port)
                ));
            }
        }
    }
    None
}

impl RelayConfig {
    /// The URL as logs, errors and status show it: the credentials of each
    /// server (`user:password@`, `token@`) replaced by `***@`.
    pub fn shown_url(&self) -> String {
        self.redacted(&self.url)
    }

    /// `text` (a client's message, which may quote the URL) with the
    /// URL's credentials replaced by `***`.
    pub fn redacted(&self, text: &str) -> String {
        credentials_of(&self.url)
            .into_iter()
            .fold(text.to_owned(), |text, credentials| {
                text.replace(credentials, "***")
            })
    }

    /// The publish mode of `tenant` (its override, else `publish`).
    pub fn mode_for(&self, tenant: &str) -> PublishMode {
        self.tenants.get(tenant).copied().unwrap_or(self.publish)
    }

    /// Checks every value, naming the first bad key. `enabled` is not
    /// checked: a disabled relay's other keys must still be valid, so a
    /// typo is found before the day it is switched on.
    pub fn validate(&self) -> Result<(), RelayConfigError> {
        let url = self.url.trim();
        if url.is_empty() || url.contains(char::is_whitespace) {
            return refuse("url", "must be a NATS URL such as nats://127.0.0.1:4222");
        }
        if let Some(problem) = url_problem(url) {
            return refuse(
                "url",
                format!("{problem} (a NATS URL such as nats://127.0.0.1:4222)"),
            );
        }
        if !is_valid_stream_name(&self.stream) {
            return refuse(
                "stream",
                "must be 1 to 255 characters without `.`, `*`, `>`, `/`, `\\` or whitespace",
            );
        }
        if !is_valid_prefix(&self.subject_prefix) {
            return refuse(
                "subject_prefix",
                "must be dot-separated non-empty tokens without `*`, `>` or whitespace",
            );
        }
        if let Some(tenant) = self.tenants.keys().find(|t| t.is_empty()) {
            return refuse(&format!("tenants.{tenant}"), "names an empty tenant");
        }
        if !(1..=MAX_WINDOW).contains(&self.batch_size) {
            return refuse("batch_size", format!("must be 1 to {MAX_WINDOW}"));
        }
        if !(1..=MAX_WINDOW).contains(&self.max_in_flight) {
            return refuse("max_in_flight", format!("must be 1 to {MAX_WINDOW}"));
        }
        if self.duplicate_window_s == 0 {
            return refuse(
                "duplicate_window_s",
                "must be at least 1 (exactly-once needs it)",
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return refuse("replicas", "must be 1 to 5");
        }
        if self.ack_timeout_ms == 0 {
            return refuse("ack_timeout_ms", "must be at least 1");
        }
        if self.backoff_min_ms == 0 {
            return refuse("backoff_min_ms", "must be at least 1");
        }
        if self.backoff_max_ms < self.backoff_min_ms {
            return refuse("backoff_max_ms", "must be at least backoff_min_ms");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(config: &RelayConfig) -> Option<String> {
        config.validate().err().map(|e| e.key)
    }

    #[test]
    fn a_url_is_checked_at_start_and_shown_without_its_credentials() {
        let with = |url: &str| RelayConfig {
            url: url.to_owned(),
            ..RelayConfig::default()
        };
        for good in [
            "nats://127.0.0.1:4222",
            "nats://user:pw@host:4222,nats://other:4223",
            "tls://host",
            "host:4222",
            "nats://[::1]:4222",
        ] {
            assert_eq!(with(good).validate(), Ok(()), "{good}");
        }
        for bad in [
            "http://127.0.0.1:4222",
            "nats://127.0.0.1:99999",
            "nats://:4222",
            "nats://h:0",
            "nats://127.0.0.1:1?token=QUERYSECRET",
            "nats://127.0.0.1/x#QUERYSECRET",
        ] {
            assert_eq!(key_of(&with(bad)).as_deref(), Some("url"), "{bad}");
            let said = with(bad).validate().map_err(|e| e.to_string()).err();
            assert!(
                !said.unwrap_or_default().contains("QUERYSECRET"),
                "{bad}: the query is not echoed"
            );
        }
        let secret = with("nats://probeuser:s3cretpw@127.0.0.1:4222,nats://tok3n@10.0.0.1:4222");
        let shown = secret.shown_url();
        assert!(
            !shown.contains("s3cretpw") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert_eq!(shown, "nats://***@127.0.0.1:4222,nats://***@10.0.0.1:4222");
        let message = secret.redacted("failed to parse nats://probeuser:s3cretpw@127.0.0.1:4222");
        assert!(!message.contains("s3cretpw"), "{message}");
        assert_eq!(
            with("nats://127.0.0.1:4222").shown_url(),
            "nats://127.0.0.1:4222"
        );
    }

    #[test]
    fn the_defaults_are_valid_and_off() {
        let config = RelayConfig::default();
        assert!(!config.enabled);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.mode_for("anyone"), PublishMode::All);
    }

    #[test]
    fn a_bad_value_is_refused_by_its_key() {
        let bad = |f: fn(&mut RelayConfig)| {
            let mut c = RelayConfig::default();
            f(&mut c);
            key_of(&c)
        };
        assert_eq!(bad(|c| c.stream = "a.b".into()).as_deref(), Some("stream"));
        assert_eq!(
            bad(|c| c.subject_prefix = "oms.>".into()).as_deref(),
            Some("subject_prefix")
        );
        assert_eq!(
            bad(|c| c.subject_prefix = "oms..x".into()).as_deref(),
            Some("subject_prefix")
        );
        assert_eq!(bad(|c| c.batch_size = 0).as_deref(), Some("batch_size"));
        assert_eq!(
            bad(|c| c.max_in_flight = 1 << 20).as_deref(),
            Some("max_in_flight")
        );
        assert_eq!(
            bad(|c| c.duplicate_window_s = 0).as_deref(),
            Some("duplicate_window_s")
        );
        assert_eq!(
            bad(|c| c.backoff_max_ms = 1).as_deref(),
            Some("backoff_max_ms")
        );
        assert_eq!(bad(|c| c.url = " ".into()).as_deref(), Some("url"));
        let message = RelayConfig {
            batch_size: 0,
            ..RelayConfig::default()
        }
        .validate()
        .map_err(|e| e.to_string());
        assert_eq!(
            message,
            Err("relay configuration: `relay.batch_size` must be 1 to 65536".to_owned())
        );
    }

    #[test]
    fn a_tenant_override_wins_over_the_default_mode() {
        let config: RelayConfig = serde_json::from_str(
            r#"{"enabled": true, "publish": "integration", "tenants": {"acme": "all", "secret": "none"}}"#,
        )
        .expect("config");
        assert_eq!(config.mode_for("acme"), PublishMode::All);
        assert_eq!(config.mode_for("secret"), PublishMode::None);
        assert_eq!(config.mode_for("other"), PublishMode::Integration);
        assert!(config.mode_for("other").admits("OrderCaptured"));
        assert!(!config.mode_for("other").admits("LineAdded"));
        assert!(!config.mode_for("secret").admits("OrderCaptured"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let result = serde_json::from_str::<RelayConfig>(r#"{"enabeld": true}"#);
        assert!(result.is_err());
    }
}
