//! The catalog as a control plane (stream `catalog-<tenant>`): which
//! catalog versions a tenant may quote against.
//!
//! An administrator activates a version and later retires it; both are
//! events, so what was sellable when is part of the log. Retirement is
//! final: a retired version is never activated again (a corrected catalog
//! gets a new version). A quote records the version it is configured
//! against when it is created ([`crate::quote::QuoteCommand::Create`]), and
//! the quote's rules take the catalog's [`VersionStanding`] as an input
//! (the domain never guesses): a quote is created only against a version
//! that may be quoted, a new price is refused for a quote whose version
//! was retired since (`catalog_version_retired`), and an accepted quote
//! keeps its version whatever happens to the catalog later.
//!
//! A tenant whose catalog never activated a version is *unmanaged*: every
//! version may be quoted, as before the control plane existed. The first
//! activation makes the tenant's catalog managed, for good.
//!
//! ```
//! use domain::catalog::{CatalogCommand, CatalogDecider, VersionStanding};
//! use domain::decider::{run, Decider};
//! use domain::ids::{TenantId, Timestamp};
//!
//! let activate = CatalogCommand::Activate {
//!     tenant_id: TenantId::new("t1"),
//!     version: "2026.11".to_owned(),
//!     at: Timestamp(1),
//! };
//! let state = run::<CatalogDecider>(CatalogDecider::initial(), &activate)?.state;
//! assert_eq!(state.standing("2026.11"), VersionStanding::Active);
//! assert_eq!(state.standing("2026.10"), VersionStanding::Unknown);
//! # Ok::<(), domain::catalog::CatalogError>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decider::{Decider, DomainEvent, RuleViolation};
use crate::ids::{TenantId, Timestamp};

/// The longest catalog version name, in bytes (a label, not an id: it may
/// hold any printable text the catalog team uses).
pub const MAX_VERSION_BYTES: usize = 128;

/// A request to change a tenant's catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CatalogCommand {
    /// Make a version available to quote against.
    Activate {
        /// The tenant whose catalog it is.
        tenant_id: TenantId,
        /// The version.
        version: String,
        /// When.
        at: Timestamp,
    },
    /// Withdraw a version from new quotes and new prices, for good.
    Retire {
        /// The version.
        version: String,
        /// Why (shown to whoever meets the refusal).
        reason: String,
        /// When.
        at: Timestamp,
    },
}

/// Something that happened to a tenant's catalog.
///
/// APPEND-ONLY: bincode encodes the variant index, so never reorder, rename
/// or remove a variant or a field; add new variants at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogEvent {
    /// A version may be quoted against from now on.
    CatalogVersionActivated {
        /// The tenant whose catalog it is.
        tenant_id: TenantId,
        /// The version.
        version: String,
        /// When.
        at: Timestamp,
    },
    /// A version may no longer be quoted against or priced.
    CatalogVersionRetired {
        /// The version.
        version: String,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for CatalogEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::CatalogVersionActivated { .. } => "CatalogVersionActivated",
            Self::CatalogVersionRetired { .. } => "CatalogVersionRetired",
        }
    }

    /// The current version of the event's type ([`crate::upcast::CURRENT_VERSIONS`]).
    fn schema_version(&self) -> u16 {
        crate::upcast::current_version(self.event_type())
    }
}

/// Why a catalog refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The version name is empty, too long or holds a control character.
    #[error("a catalog version is 1 to {MAX_VERSION_BYTES} bytes of printable text")]
    InvalidVersion,
    /// The version was retired; retirement is final.
    #[error("catalog version `{0}` is retired; activate a new version instead")]
    VersionRetired(String),
    /// The version was never activated, so there is nothing to retire.
    #[error("catalog version `{0}` was never activated")]
    VersionNotActivated(String),
}

impl RuleViolation for CatalogError {
    fn rule(&self) -> &'static str {
        match self {
            Self::InvalidVersion => "invalid_catalog_version",
            Self::VersionRetired(_) => "catalog_version_retired",
            Self::VersionNotActivated(_) => "catalog_version_not_activated",
        }
    }
}

/// Where a version stands in a tenant's catalog: the input the quote's
/// rules take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionStanding {
    /// The tenant's catalog never activated a version: every version may be
    /// quoted.
    Unmanaged,
    /// Activated and not retired.
    Active,
    /// Retired: no new quote, no new price.
    Retired,
    /// The catalog is managed and never activated this version.
    Unknown,
}

impl VersionStanding {
    /// True when a quote may be created or priced against the version.
    pub fn may_quote(self) -> bool {
        matches!(self, Self::Unmanaged | Self::Active)
    }
}

/// One version as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CatalogVersion {
    /// When it was activated.
    pub activated_at: Timestamp,
    /// When and why it was retired, if it was.
    pub retired: Option<Retirement>,
}

/// When and why a version was retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Retirement {
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: String,
}

/// A tenant's catalog: every version it ever activated, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CatalogState {
    /// The versions, by name.
    pub versions: BTreeMap<String, CatalogVersion>,
}

impl CatalogState {
    /// Where `version` stands.
    pub fn standing(&self, version: &str) -> VersionStanding {
        if self.versions.is_empty() {
            return VersionStanding::Unmanaged;
        }
        match self.versions.get(version) {
            None => VersionStanding::Unknown,
            Some(CatalogVersion { retired: None, .. }) => VersionStanding::Active,
            Some(_) => VersionStanding::Retired,
        }
    }
}

impl CatalogState {
    /// The version a quote created without naming one is configured
    /// against: [`UNMANAGED_DEFAULT_VERSION`] while the catalog is
    /// unmanaged, else the latest activated version still active (ties by
    /// name), `None` when every version is retired.
    pub fn default_version(&self) -> Option<&str> {
        if self.versions.is_empty() {
            return Some(UNMANAGED_DEFAULT_VERSION);
        }
        self.versions
            .iter()
            .filter(|(_, entry)| entry.retired.is_none())
            .max_by_key(|(name, entry)| (entry.activated_at, *name))
            .map(|(name, _)| name.as_str())
    }
}

/// The version a quote of an unmanaged catalog gets when none is named.
pub const UNMANAGED_DEFAULT_VERSION: &str = "catalog-current";

/// The catalog decider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatalogDecider;

fn valid_version(version: &str) -> Result<(), CatalogError> {
    if version.is_empty()
        || version.len() > MAX_VERSION_BYTES
        || version.trim() != version
        || version.chars().any(char::is_control)
    {
        return Err(CatalogError::InvalidVersion);
    }
    Ok(())
}

impl Decider for CatalogDecider {
    type State = CatalogState;
    type Command = CatalogCommand;
    type Event = CatalogEvent;
    type Error = CatalogError;

    fn initial() -> CatalogState {
        CatalogState::default()
    }

    /// Activating an active version and retiring a retired one change
    /// nothing (no event), so a repeated admin action is harmless.
    fn decide(
        state: &CatalogState,
        command: &CatalogCommand,
    ) -> Result<Vec<CatalogEvent>, CatalogError> {
        match command {
            CatalogCommand::Activate {
                tenant_id,
                version,
                at,
            } => {
                valid_version(version)?;
                match state.versions.get(version) {
                    Some(CatalogVersion { retired: None, .. }) => Ok(Vec::new()),
                    Some(_) => Err(CatalogError::VersionRetired(version.clone())),
                    None => Ok(vec![CatalogEvent::CatalogVersionActivated {
                        tenant_id: tenant_id.clone(),
                        version: version.clone(),
                        at: *at,
                    }]),
                }
            }
            CatalogCommand::Retire {
                version,
                reason,
                at,
            } => {
                valid_version(version)?;
                match state.versions.get(version) {
                    None => Err(CatalogError::VersionNotActivated(version.clone())),
                    Some(CatalogVersion {
                        retired: Some(_), ..
                    }) => Ok(Vec::new()),
                    Some(_) => Ok(vec![CatalogEvent::CatalogVersionRetired {
                        version: version.clone(),
                        reason: reason.clone(),
                        at: *at,
                    }]),
                }
            }
        }
    }

    fn evolve(mut state: CatalogState, event: &CatalogEvent) -> CatalogState {
        match event {
            CatalogEvent::CatalogVersionActivated { version, at, .. } => {
                state.versions.insert(
                    version.clone(),
                    CatalogVersion {
                        activated_at: *at,
                        retired: None,
                    },
                );
            }
            CatalogEvent::CatalogVersionRetired {
                version,
                reason,
                at,
            } => {
                if let Some(entry) = state.versions.get_mut(version) {
                    entry.retired = Some(Retirement {
                        at: *at,
                        reason: reason.clone(),
                    });
                }
            }
        }
        state
    }

    /// A catalog lives as long as its tenant.
    fn is_terminal(_: &CatalogState) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::{fold, run};

    fn activate(version: &str) -> CatalogCommand {
        CatalogCommand::Activate {
            tenant_id: TenantId::new("t1"),
            version: version.to_owned(),
            at: Timestamp(1),
        }
    }

    fn retire(version: &str) -> CatalogCommand {
        CatalogCommand::Retire {
            version: version.to_owned(),
            reason: "superseded".to_owned(),
            at: Timestamp(2),
        }
    }

    fn after(commands: &[CatalogCommand]) -> CatalogState {
        commands.iter().fold(CatalogDecider::initial(), |state, c| {
            run::<CatalogDecider>(state, c).expect("accepted").state
        })
    }

    #[test]
    fn an_unmanaged_catalog_admits_every_version_until_the_first_activation() {
        let empty = CatalogDecider::initial();
        assert_eq!(empty.standing("anything"), VersionStanding::Unmanaged);
        assert!(empty.standing("anything").may_quote());
        let managed = after(&[activate("v1")]);
        assert_eq!(managed.standing("v1"), VersionStanding::Active);
        assert_eq!(managed.standing("anything"), VersionStanding::Unknown);
        assert_eq!(empty.default_version(), Some(UNMANAGED_DEFAULT_VERSION));
        assert_eq!(managed.default_version(), Some("v1"));
        assert!(!managed.standing("anything").may_quote());
    }

    #[test]
    fn retirement_is_final_and_repeats_change_nothing() {
        let state = after(&[activate("v1"), activate("v2"), retire("v1")]);
        assert_eq!(state.standing("v1"), VersionStanding::Retired);
        assert!(!state.standing("v1").may_quote());
        assert_eq!(state.standing("v2"), VersionStanding::Active);
        assert_eq!(state.default_version(), Some("v2"));
        assert_eq!(
            after(&[activate("v1"), retire("v1")]).default_version(),
            None
        );
        assert_eq!(
            CatalogDecider::decide(&state, &activate("v1")),
            Err(CatalogError::VersionRetired("v1".to_owned()))
        );
        assert_eq!(CatalogDecider::decide(&state, &retire("v1")), Ok(vec![]));
        assert_eq!(CatalogDecider::decide(&state, &activate("v2")), Ok(vec![]));
    }

    #[test]
    fn only_an_activated_version_is_retired_and_names_are_printable() {
        let state = after(&[activate("v1")]);
        let refused = CatalogDecider::decide(&state, &retire("v9"));
        assert_eq!(
            refused.as_ref().map_err(RuleViolation::rule),
            Err("catalog_version_not_activated")
        );
        for bad in ["", " v1", "v\n1", &"x".repeat(MAX_VERSION_BYTES + 1)] {
            assert_eq!(
                CatalogDecider::decide(&state, &activate(bad)),
                Err(CatalogError::InvalidVersion),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_state_is_the_fold_of_its_events() {
        let events: Vec<CatalogEvent> = [activate("v1"), retire("v1")]
            .iter()
            .scan(CatalogDecider::initial(), |state, c| {
                let decision = run::<CatalogDecider>(state.clone(), c).expect("accepted");
                *state = decision.state;
                Some(decision.events)
            })
            .flatten()
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(
            fold::<CatalogDecider, _>(&events).standing("v1"),
            VersionStanding::Retired
        );
    }
}
