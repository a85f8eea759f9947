//! Document generation: a proposal rendered from the immutable snapshot of
//! one quote revision (seed 001 §17), synchronously, while the seller waits.
//!
//! The port ([`DocumentGenerator`]) takes a
//! [`domain::quote::document::DocumentRequest`] and answers the stored
//! artifact's id and sha256 ([`GeneratedDocument`]) or a [`DocumentError`].
//! The request is keyed by its snapshot id, template and locale, so a
//! repeated request (a retry after a timeout) is the same render, and the
//! document service answers the same artifact: the same snapshot and
//! template always give the same hash.
//!
//! | answer | result |
//! | --- | --- |
//! | 200, status `RENDERED` with `documentId` and `sha256` | the document |
//! | 200, unreadable body or another status | `SchemaMismatch` / `Unclassified` |
//! | 400 / 422 | `Rejected` (the template or data was refused) |
//! | 401 / 403 | `Security` |
//! | 429 / 5xx / connection refused / read timeout | `Unavailable` (retry the same command) |

use domain::idempotency::{request_hash, TargetSystem};
use domain::ids::TenantId;
use domain::quote::document::DocumentRequest;

use crate::config::{ConfigError, SystemsConfig};
use crate::external::document::DocumentAnswer;
use crate::external::http::TenantEndpoints;
use crate::external::BoxFuture;

/// The document service's path for renders, shared with the simulators.
pub const RENDER_PATH: &str = "/docs/v1/render";

/// A rendered, stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedDocument {
    /// The document store's id of the artifact.
    pub artifact_id: String,
    /// The sha256 of the artifact, as the service computed it.
    pub artifact_hash: String,
}

/// Why a document was not generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The tenant has no document service configured (or it is disabled).
    #[error("document generation is not configured for this tenant")]
    NotConfigured,
    /// The service could not answer now; the same request may be retried.
    #[error("document service is unavailable ({raw_code})")]
    Unavailable {
        /// The raw code, as evidence.
        raw_code: String,
    },
    /// The service refused the template or the data.
    #[error("document service refused the request ({raw_code})")]
    Rejected {
        /// The raw code, as evidence.
        raw_code: String,
    },
    /// The service refused the platform's credentials.
    #[error("document service refused the platform's credentials")]
    Security,
    /// The service answered in an unexpected shape.
    #[error("document service answered in an unexpected shape")]
    SchemaMismatch,
    /// The service answered something nobody mapped.
    #[error("document service answered something unmapped ({raw_code})")]
    Unclassified {
        /// The raw code, as evidence.
        raw_code: String,
    },
}

/// The document port.
pub trait DocumentGenerator: Send + Sync {
    /// Renders and stores the document `request` describes.
    ///
    /// # Errors
    /// A [`DocumentError`].
    fn generate<'a>(
        &'a self,
        tenant: &'a TenantId,
        request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<GeneratedDocument, DocumentError>>;
}

/// The render key: the same snapshot, template and locale is the same
/// render, for this tenant.
pub fn render_key(tenant: &TenantId, request: &DocumentRequest) -> String {
    let identity = format!(
        "{}:{}:{}:{}:{}",
        tenant,
        request.document_type,
        request.snapshot_id,
        request.template_version,
        request.locale
    );
    format!(
        "{tenant}:document:{}",
        &request_hash(identity.as_bytes())[..32]
    )
}

/// The document port over HTTP, one client per tenant.
pub struct HttpDocumentGenerator {
    endpoints: TenantEndpoints,
}

impl std::fmt::Debug for HttpDocumentGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDocumentGenerator")
            .field("tenants", &self.endpoints.tenants())
            .finish()
    }
}

impl HttpDocumentGenerator {
    /// Clients for every tenant that configures an enabled `document`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the table is invalid.
    pub fn from_config(config: &SystemsConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoints: TenantEndpoints::from_config(config, TargetSystem::Document)?,
        })
    }

    async fn render(
        &self,
        tenant: &TenantId,
        request: &DocumentRequest,
    ) -> Result<GeneratedDocument, DocumentError> {
        let endpoint = self
            .endpoints
            .get(tenant.as_str())
            .ok_or(DocumentError::NotConfigured)?;
        let url = crate::external::http::endpoint_url(&endpoint.base_url, RENDER_PATH, &[])
            .map_err(|_| DocumentError::NotConfigured)?;
        let body = serde_json::json!({
            "documentType": request.document_type,
            "revision": request.revision,
            "snapshotId": request.snapshot_id,
            "templateVersion": request.template_version,
            "locale": request.locale,
            "data": request.snapshot.fields,
        });
        let mut call = endpoint
            .client
            .post(url)
            .header(
                crate::external::IDEMPOTENCY_HEADER,
                render_key(tenant, request),
            )
            .header("x-tenant", tenant.as_str())
            .json(&body);
        if let Some(token) = &endpoint.token {
            call = call.bearer_auth(token);
        }
        let answer = call.send().await.map_err(|e| transport(&e))?;
        let status = answer.status().as_u16();
        let body = crate::external::http::read_body(answer)
            .await
            .map_err(|e| transport(&e))?;
        let bytes = body.usable();
        let raw_code = format!("HTTP-{status}");
        match status {
            200 => {}
            400 | 422 => return Err(DocumentError::Rejected { raw_code }),
            401 | 403 => return Err(DocumentError::Security),
            408 | 429 | 500 | 502 | 503 | 504 => {
                return Err(DocumentError::Unavailable { raw_code })
            }
            _ => return Err(DocumentError::Unclassified { raw_code }),
        }
        let answer: DocumentAnswer =
            serde_json::from_slice(bytes).map_err(|_| DocumentError::SchemaMismatch)?;
        if answer.status != "RENDERED" {
            // Bounded and clean, as every external word (ADR 0052): it
            // reaches the log and the quote's refusal.
            return Err(DocumentError::Unclassified {
                raw_code: domain::text::evidence(&answer.status),
            });
        }
        let (Some(artifact_id), Some(artifact_hash)) = (answer.document_id, answer.sha256) else {
            return Err(DocumentError::SchemaMismatch);
        };
        // The id becomes a platform id, the hash evidence a signature is
        // checked against: both must be what they claim.
        let is_hash = artifact_hash.len() == 64
            && artifact_hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if domain::ids::validate_id(&artifact_id).is_err() || !is_hash {
            return Err(DocumentError::SchemaMismatch);
        }
        Ok(GeneratedDocument {
            artifact_id,
            artifact_hash,
        })
    }
}

fn transport(error: &reqwest::Error) -> DocumentError {
    let mapped = crate::external::http::transport(error);
    DocumentError::Unavailable {
        raw_code: mapped.raw_code.unwrap_or_default(),
    }
}

impl DocumentGenerator for HttpDocumentGenerator {
    fn generate<'a>(
        &'a self,
        tenant: &'a TenantId,
        request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<GeneratedDocument, DocumentError>> {
        Box::pin(self.render(tenant, request))
    }
}
