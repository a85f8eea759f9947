//! CRM: customer lookup and validation, synchronous at quote creation.
//!
//! CRM owns the customer; the quote keeps a snapshot. The port
//! ([`CustomerDirectory`]) answers a [`CustomerSnapshot`] in domain terms or
//! a [`CrmError`] that carries its normalized class; CRM field names
//! (`acctId`, `seg`, ...) stay in this module.
//!
//! | CRM answer | result |
//! | --- | --- |
//! | 200, status `ACTIVE` | the snapshot |
//! | 200, status `SUSPENDED` / `CLOSED` | `NotEligible` (business rejected) |
//! | 200, another status | `Unclassified` |
//! | 200, unreadable body | `SchemaMismatch` |
//! | 404 | `NotFound` (business rejected) |
//! | 401 / 403 | `Security` |
//! | 429 / 5xx / connection refused | `Unavailable` (technical, retry) |
//! | read timeout | `Unavailable` (unknown; a read is safe to repeat) |
//! | an id that cannot be one path segment (empty, `.`, `..`) | `NotFound`, nothing sent |
//!
//! The customer id is sent as exactly one percent-encoded path segment of
//! `GET /crm/v2/accounts/{id}` (`external::http::endpoint_url`), so no id
//! can reach another CRM route with the platform's bearer token.

use domain::idempotency::TargetSystem;
use domain::ids::{CustomerId, Segment, TenantId, Timestamp};
use domain::outcome::OutcomeClass;
use domain::quote::CustomerSnapshot;
use serde::Deserialize;

use crate::config::{ConfigError, SystemsConfig};
use crate::external::http::TenantEndpoints;
use crate::external::BoxFuture;
use application::clock::SharedClock;

/// The CRM's path for account lookups, shared with the simulators.
pub const ACCOUNT_PATH: &str = "/crm/v2/accounts";

/// Why a customer could not be looked up or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrmError {
    /// CRM does not know the customer. Handling: 422 to the seller.
    #[error("customer not found in CRM")]
    NotFound,
    /// The customer exists but may not be quoted (a closed account).
    /// Handling: 422.
    #[error("customer is not eligible (CRM status {status})")]
    NotEligible {
        /// The CRM status, as evidence.
        status: String,
    },
    /// The tenant has no CRM configured (or it is disabled). Handling: 503.
    #[error("CRM is not configured for this tenant")]
    NotConfigured,
    /// CRM could not answer now. Handling: 503, the seller may retry.
    #[error("CRM is unavailable ({raw_code})")]
    Unavailable {
        /// `TechnicalRetryable` or `Unknown`.
        class: OutcomeClass,
        /// The raw code, as evidence.
        raw_code: String,
    },
    /// CRM refused our credentials. Handling: 503 and alert operations.
    #[error("CRM refused the platform's credentials")]
    Security,
    /// CRM answered in an unexpected shape. Handling: 502.
    #[error("CRM answered in an unexpected shape")]
    SchemaMismatch,
    /// CRM answered something nobody mapped. Handling: 502.
    #[error("CRM answered something unmapped ({raw_code})")]
    Unclassified {
        /// The raw code, as evidence.
        raw_code: String,
    },
}

impl CrmError {
    /// The normalized class of this error.
    pub fn class(&self) -> OutcomeClass {
        match self {
            Self::NotFound | Self::NotEligible { .. } => OutcomeClass::BusinessRejected,
            Self::NotConfigured | Self::Security => OutcomeClass::SecurityConfiguration,
            Self::Unavailable { class, .. } => *class,
            Self::SchemaMismatch => OutcomeClass::SchemaMismatch,
            Self::Unclassified { .. } => OutcomeClass::Unclassified,
        }
    }

    /// True when asking again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// True when CRM answered but nobody can read the answer (a schema
    /// mismatch or an unmapped answer): integration fallout, not an
    /// outage (seed 001 §11.2).
    pub fn is_unreadable(&self) -> bool {
        matches!(
            self.class(),
            OutcomeClass::SchemaMismatch | OutcomeClass::Unclassified
        )
    }
}

/// A customer CRM lets us quote: its snapshot, and whether its account is
/// suspended (seed 001 §11.2: a suspended account is quoted only with
/// approval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerAccount {
    /// Who the customer is, as CRM describes it now.
    pub snapshot: CustomerSnapshot,
    /// The CRM status (`SUSPENDED`) when the account is suspended; `None`
    /// for an active account.
    pub suspension: Option<String>,
}

/// The CRM port: who the customer is, as a snapshot.
pub trait CustomerDirectory: Send + Sync {
    /// Looks a customer up and validates it for quoting: an active or a
    /// suspended account is answered, any other is refused.
    ///
    /// # Errors
    /// A [`CrmError`] with its class.
    fn lookup<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer_id: &'a CustomerId,
    ) -> BoxFuture<'a, Result<CustomerAccount, CrmError>>;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    acct_id: String,
    acct_name: String,
    seg: String,
    rev: String,
    status: String,
}

/// The CRM port over HTTP, one client per tenant.
pub struct HttpCustomerDirectory {
    endpoints: TenantEndpoints,
    clock: SharedClock,
}

impl std::fmt::Debug for HttpCustomerDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCustomerDirectory")
            .field("tenants", &self.endpoints.tenants())
            .finish()
    }
}

impl HttpCustomerDirectory {
    /// Clients for every tenant that configures an enabled `crm`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the table is invalid.
    pub fn from_config(config: &SystemsConfig, clock: SharedClock) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoints: TenantEndpoints::from_config(config, TargetSystem::Crm)?,
            clock,
        })
    }

    async fn fetch(
        &self,
        tenant: &TenantId,
        customer_id: &CustomerId,
    ) -> Result<CustomerAccount, CrmError> {
        let endpoint = self
            .endpoints
            .get(tenant.as_str())
            .ok_or(CrmError::NotConfigured)?;
        // The customer id is one percent-encoded path segment, whatever it
        // contains; one that cannot be a segment names no customer.
        let url = crate::external::http::endpoint_url(
            &endpoint.base_url,
            ACCOUNT_PATH,
            &[customer_id.as_str()],
        )
        .map_err(|_| CrmError::NotFound)?;
        let mut request = endpoint.client.get(url).header("x-tenant", tenant.as_str());
        if let Some(token) = &endpoint.token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.map_err(|e| transport(&e))?;
        let status = answer.status().as_u16();
        let body = crate::external::http::read_body(answer)
            .await
            .map_err(|e| transport(&e))?;
        let bytes = body.usable();
        match status {
            200 => {}
            404 => return Err(CrmError::NotFound),
            401 | 403 => return Err(CrmError::Security),
            429 | 500 | 502 | 503 => {
                return Err(CrmError::Unavailable {
                    class: OutcomeClass::TechnicalRetryable,
                    raw_code: format!("HTTP-{status}"),
                })
            }
            408 | 504 => {
                return Err(CrmError::Unavailable {
                    class: OutcomeClass::Unknown,
                    raw_code: format!("HTTP-{status}"),
                })
            }
            other => {
                return Err(CrmError::Unclassified {
                    raw_code: format!("HTTP-{other}"),
                })
            }
        }
        record(bytes, customer_id, Timestamp(self.clock.now_ms()))
    }
}

/// Most bytes of a customer's name, segment or record revision kept from
/// CRM: what a quote carries of the customer, as bounded as every other
/// external word (ADR 0052).
const MAX_FIELD_BYTES: usize = domain::text::MAX_EVIDENCE_BYTES;

/// The customer record in CRM's answer `bytes`, taken at `taken_at`.
///
/// A field that is longer than [`MAX_FIELD_BYTES`], or holds a control
/// character or invisible formatting (the rule of a client's free text,
/// [`domain::text::is_hidden`]), makes the answer unusable
/// ([`CrmError::SchemaMismatch`]): the quote never stores it. An unknown
/// status word is kept as bounded evidence ([`domain::text::evidence`]).
fn record(
    bytes: &[u8],
    customer_id: &CustomerId,
    taken_at: Timestamp,
) -> Result<CustomerAccount, CrmError> {
    let account: Account = serde_json::from_slice(bytes).map_err(|_| CrmError::SchemaMismatch)?;
    if account.acct_id != customer_id.as_str() {
        return Err(CrmError::SchemaMismatch);
    }
    let usable = |field: &str| {
        !field.trim().is_empty()
            && field.len() <= MAX_FIELD_BYTES
            && !field
                .chars()
                .any(|c| c.is_control() || domain::text::is_hidden(c))
    };
    if !usable(&account.acct_name) || !usable(&account.seg) || !usable(&account.rev) {
        return Err(CrmError::SchemaMismatch);
    }
    let suspension = match account.status.as_str() {
        "ACTIVE" => None,
        "SUSPENDED" => Some(account.status),
        "CLOSED" => {
            return Err(CrmError::NotEligible {
                status: account.status,
            })
        }
        other => {
            return Err(CrmError::Unclassified {
                raw_code: domain::text::evidence(other),
            })
        }
    };
    Ok(CustomerAccount {
        snapshot: CustomerSnapshot {
            customer_id: customer_id.clone(),
            name: account.acct_name,
            segment: Segment::new(account.seg),
            authority_reference: account.rev,
            taken_at,
        },
        suspension,
    })
}

fn transport(error: &reqwest::Error) -> CrmError {
    let mapped = crate::external::http::transport(error);
    CrmError::Unavailable {
        class: mapped.class,
        raw_code: mapped.raw_code.unwrap_or_default(),
    }
}

impl CustomerDirectory for HttpCustomerDirectory {
    fn lookup<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer_id: &'a CustomerId,
    ) -> BoxFuture<'a, Result<CustomerAccount, CrmError>> {
        Box::pin(self.fetch(tenant, customer_id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod record_tests {
    use super::*;

    fn answer(name: &str, seg: &str, rev: &str, status: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "acctId": "cust-1", "acctName": name, "seg": seg, "rev": rev, "status": status,
        }))
        .unwrap()
    }

    /// What CRM says of a customer reaches a quote only when a client could
    /// have typed it: a name with U+202E, a NUL or 200 KB, a 5 KB segment
    /// or an empty name was stored as given (and a 200 KB one was refused
    /// as the seller's input); an unknown status word was kept raw,
    /// whole, and written to the log with its line breaks.
    #[test]
    fn a_record_a_client_could_not_have_typed_is_unusable_and_a_status_word_is_evidence() {
        let id = CustomerId::new("cust-1");
        let at = Timestamp(1);
        let good = record(&answer("Acme GmbH", "smb", "crm-rev-1", "ACTIVE"), &id, at).unwrap();
        assert_eq!(good.snapshot.name, "Acme GmbH");
        // A joiner scripts need stays.
        assert!(record(&answer("نیم\u{200c}فاصله", "smb", "r", "ACTIVE"), &id, at).is_ok());
        let long = "x".repeat(200_000);
        for (name, seg, rev) in [
            ("Evil\u{202e}Corp", "smb", "r"),
            ("Evil\n\u{0}\u{1b}[2J", "smb", "r"),
            (long.as_str(), "smb", "r"),
            ("", "smb", "r"),
            ("Acme", &"s".repeat(5_000), "r"),
            ("Acme", "SMB\u{202e}", "r"),
            ("Acme", "smb", long.as_str()),
        ] {
            let refused = record(&answer(name, seg, rev, "ACTIVE"), &id, at);
            assert!(
                matches!(refused, Err(CrmError::SchemaMismatch)),
                "{:?} {:?}: {refused:?}",
                name.get(..20),
                seg.get(..20)
            );
        }
        let word = format!("WEIRD\u{202e}\n\u{0}{}", "W".repeat(3_000));
        let Err(CrmError::Unclassified { raw_code }) =
            record(&answer("Acme", "smb", "r", &word), &id, at)
        else {
            panic!("an unknown status is unclassified");
        };
        assert!(
            raw_code.len() <= domain::text::MAX_EVIDENCE_BYTES + 3,
            "{}",
            raw_code.len()
        );
        assert!(
            !raw_code.contains(['\u{202e}', '\n', '\u{0}']),
            "{raw_code:?}"
        );
    }
}
