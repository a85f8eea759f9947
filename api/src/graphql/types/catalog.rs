//! The tenant's catalog control plane as the API shows it.

use async_graphql::{Enum, SimpleObject};
use domain::catalog::{CatalogState, CatalogVersion};

use super::scalars::DateTime;

/// Whether a catalog version may be quoted against.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum CatalogVersionStatus {
    /// New quotes and new prices may use it.
    Active,
    /// Retired for good: no new quote and no new price; accepted quotes keep it.
    Retired,
}

/// One version of the tenant's catalog.
#[derive(SimpleObject, Clone, Debug)]
pub struct CatalogVersionNode {
    /// The version's name, as quotes record it (`catalogVersion`).
    pub version: String,
    /// Active or retired.
    pub status: CatalogVersionStatus,
    /// When it was activated.
    pub activated_at: DateTime,
    /// When it was retired.
    pub retired_at: Option<DateTime>,
    /// Why it was retired.
    pub retired_reason: Option<String>,
}

/// The tenant's catalog: which versions may be quoted against.
#[derive(SimpleObject, Clone, Debug)]
pub struct CatalogNode {
    /// False until the first version is activated: then every version may
    /// be quoted, as before the catalog was managed. True for good after.
    pub managed: bool,
    /// The version a quote created without `catalogVersion` is configured
    /// against: the latest activated version still active (`catalog-current`
    /// while unmanaged; none when every version is retired).
    pub current_version: Option<String>,
    /// Every version ever activated, by name.
    pub versions: Vec<CatalogVersionNode>,
}

impl From<&CatalogState> for CatalogNode {
    fn from(catalog: &CatalogState) -> Self {
        let node = |(version, entry): (&String, &CatalogVersion)| CatalogVersionNode {
            version: version.clone(),
            status: if entry.retired.is_some() {
                CatalogVersionStatus::Retired
            } else {
                CatalogVersionStatus::Active
            },
            activated_at: entry.activated_at.into(),
            retired_at: entry.retired.as_ref().map(|r| r.at.into()),
            retired_reason: entry.retired.as_ref().map(|r| r.reason.clone()),
        };
        Self {
            managed: !catalog.versions.is_empty(),
            current_version: catalog.default_version().map(str::to_owned),
            versions: catalog.versions.iter().map(node).collect(),
        }
    }
}
