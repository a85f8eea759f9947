//! The capability matrix (seed 001 §10) as the API shows it.

use async_graphql::{Enum, SimpleObject};
use integration::config::{CapabilityEntry, CapabilityState as State};

use super::enums::TargetSystem;

/// Why a capability is, or is not, available to the tenant.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum CapabilityState {
    /// Its system is configured and enabled, and the registry leaves it on.
    Enabled,
    /// Turned off in the tenant's capability registry.
    DisabledByConfiguration,
    /// Its system is configured but disabled.
    SystemDisabled,
    /// Its system is not configured for the tenant.
    SystemNotConfigured,
}

/// One setting of a capability.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct CapabilitySetting {
    /// The setting's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// One row of the tenant's capability matrix.
#[derive(SimpleObject, Clone, Debug)]
pub struct CapabilityNode {
    /// The capability's code, e.g. `INVENTORY_RESERVE`.
    pub code: String,
    /// The system that offers it.
    pub system: TargetSystem,
    /// Whether the platform may use it now: a quote whose lines need a
    /// capability that is not enabled is refused at acceptance
    /// (`capability_disabled`), and no request is ever sent for it.
    pub enabled: bool,
    /// Why it is, or is not, enabled.
    pub state: CapabilityState,
    /// Its configured settings, by name.
    pub settings: Vec<CapabilitySetting>,
}

impl From<CapabilityEntry> for CapabilityNode {
    fn from(entry: CapabilityEntry) -> Self {
        let state = match entry.state {
            State::Enabled => CapabilityState::Enabled,
            State::DisabledByConfiguration => CapabilityState::DisabledByConfiguration,
            State::SystemDisabled => CapabilityState::SystemDisabled,
            State::SystemNotConfigured => CapabilityState::SystemNotConfigured,
        };
        Self {
            code: entry.capability.code().to_owned(),
            system: entry.system.into(),
            enabled: state == CapabilityState::Enabled,
            state,
            settings: entry
                .settings
                .into_iter()
                .map(|(name, value)| CapabilitySetting { name, value })
                .collect(),
        }
    }
}
