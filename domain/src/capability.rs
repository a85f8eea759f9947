//! Capabilities: what each external system does for a tenant (seed 001
//! §10, the capability matrix). The domain never guesses whether an
//! integration is supported: the quote flow and each line's fulfillment
//! plan take the tenant's [`Capabilities`] as input, so a decision stays a
//! pure function of its inputs, and a line that needs a disabled
//! capability is refused by a named rule instead of being sent.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::idempotency::{Purpose, TargetSystem};
use crate::order::Step;

/// One thing one external system does, by its code in the capability
/// matrix (`INVENTORY_RESERVE`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Capability {
    /// The CRM validates a customer account (looked up at quote creation).
    CrmValidateAccount,
    /// Inventory holds capacity for a line.
    InventoryReserve,
    /// Inventory gives a held reservation back (compensation).
    InventoryRelease,
    /// Provisioning activates the service.
    ProvisioningActivateService,
    /// Provisioning cancels an activation (compensation).
    ProvisioningCancelService,
    /// Billing activates the subscription's charges.
    BillingActivateSubscription,
    /// The notification provider e-mails the customer at order milestones.
    /// Not needed for fulfillment: disabled, the fulfillment policy records
    /// no milestone and nothing is sent.
    NotificationSendEmail,
    /// The document service renders a quote's proposal from its snapshot.
    DocumentGenerateQuotePdf,
    /// The document service renders an order's confirmation from the
    /// order's snapshot. Not needed for fulfillment: disabled, the policy
    /// records no confirmation and nothing is rendered.
    DocumentGenerateOrderConfirmation,
}

impl Capability {
    /// Every capability, in matrix order.
    pub const ALL: [Capability; 9] = [
        Capability::CrmValidateAccount,
        Capability::InventoryReserve,
        Capability::InventoryRelease,
        Capability::ProvisioningActivateService,
        Capability::ProvisioningCancelService,
        Capability::BillingActivateSubscription,
        Capability::NotificationSendEmail,
        Capability::DocumentGenerateQuotePdf,
        Capability::DocumentGenerateOrderConfirmation,
    ];

    /// Its stable code, as configured and shown.
    pub fn code(self) -> &'static str {
        match self {
            Capability::CrmValidateAccount => "CRM_VALIDATE_ACCOUNT",
            Capability::InventoryReserve => "INVENTORY_RESERVE",
            Capability::InventoryRelease => "INVENTORY_RELEASE",
            Capability::ProvisioningActivateService => "PROVISIONING_ACTIVATE_SERVICE",
            Capability::ProvisioningCancelService => "PROVISIONING_CANCEL_SERVICE",
            Capability::BillingActivateSubscription => "BILLING_ACTIVATE_SUBSCRIPTION",
            Capability::NotificationSendEmail => "NOTIFICATION_SEND_EMAIL",
            Capability::DocumentGenerateQuotePdf => "DOCUMENT_GENERATE_QUOTE_PDF",
            Capability::DocumentGenerateOrderConfirmation => "DOCUMENT_GENERATE_ORDER_CONFIRMATION",
        }
    }

    /// The capability with `code`, if there is one.
    pub fn from_code(code: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The system that offers it.
    pub fn system(self) -> TargetSystem {
        match self {
            Capability::CrmValidateAccount => TargetSystem::Crm,
            Capability::InventoryReserve | Capability::InventoryRelease => TargetSystem::Inventory,
            Capability::ProvisioningActivateService | Capability::ProvisioningCancelService => {
                TargetSystem::Provisioning
            }
            Capability::BillingActivateSubscription => TargetSystem::Billing,
            Capability::NotificationSendEmail => TargetSystem::Notification,
            Capability::DocumentGenerateQuotePdf
            | Capability::DocumentGenerateOrderConfirmation => TargetSystem::Document,
        }
    }

    /// The capability a handoff of `purpose` uses.
    pub fn of_purpose(purpose: Purpose) -> Capability {
        match purpose {
            Purpose::Reserve => Capability::InventoryReserve,
            Purpose::Release => Capability::InventoryRelease,
            Purpose::Activate => Capability::ProvisioningActivateService,
            Purpose::Cancel => Capability::ProvisioningCancelService,
            Purpose::ActivateBilling => Capability::BillingActivateSubscription,
            Purpose::Notify => Capability::NotificationSendEmail,
            Purpose::GenerateDocument => Capability::DocumentGenerateOrderConfirmation,
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What a line's fulfillment plan needs: each step's capability, and the
/// compensations that undo a step (release, cancel) so a cancelled line
/// can always be unwound.
pub fn required_for_fulfillment() -> Vec<Capability> {
    let mut steps = Vec::new();
    let mut step = Some(Step::FIRST);
    while let Some(s) = step {
        steps.push(Capability::of_purpose(s.purpose()));
        if let Some(undo) = s.compensation() {
            steps.push(Capability::of_purpose(undo));
        }
        step = s.next();
    }
    steps
}

/// The capabilities enabled for one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities(BTreeSet<Capability>);

impl Capabilities {
    /// Every capability enabled.
    pub fn all() -> Self {
        Self(Capability::ALL.into_iter().collect())
    }

    /// Exactly `enabled`.
    pub fn of(enabled: impl IntoIterator<Item = Capability>) -> Self {
        Self(enabled.into_iter().collect())
    }

    /// Whether `capability` is enabled.
    pub fn enabled(&self, capability: Capability) -> bool {
        self.0.contains(&capability)
    }

    /// These capabilities without `capability`.
    pub fn without(mut self, capability: Capability) -> Self {
        self.0.remove(&capability);
        self
    }

    /// The first capability a line's fulfillment needs that is disabled.
    pub fn missing_for_fulfillment(&self) -> Option<Capability> {
        required_for_fulfillment()
            .into_iter()
            .find(|c| !self.enabled(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut codes: Vec<&str> = Capability::ALL.iter().map(|c| c.code()).collect();
        for capability in Capability::ALL {
            assert_eq!(Capability::from_code(capability.code()), Some(capability));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Capability::ALL.len());
        assert_eq!(Capability::from_code("inventory_reserve"), None);
    }

    #[test]
    fn every_purpose_maps_to_a_capability_of_its_own_target() {
        for purpose in Purpose::ALL {
            assert_eq!(Capability::of_purpose(purpose).system(), purpose.target());
        }
    }

    #[test]
    fn fulfillment_needs_every_step_and_its_compensation_but_not_the_crm() {
        let required = required_for_fulfillment();
        assert!(required.contains(&Capability::InventoryReserve));
        assert!(required.contains(&Capability::InventoryRelease));
        assert!(required.contains(&Capability::ProvisioningActivateService));
        assert!(required.contains(&Capability::ProvisioningCancelService));
        assert!(required.contains(&Capability::BillingActivateSubscription));
        assert!(!required.contains(&Capability::CrmValidateAccount));
        assert!(!required.contains(&Capability::NotificationSendEmail));
        assert!(!required.contains(&Capability::DocumentGenerateOrderConfirmation));
        assert_eq!(Capabilities::all().missing_for_fulfillment(), None);
        let without = Capabilities::all().without(Capability::ProvisioningCancelService);
        assert_eq!(
            without.missing_for_fulfillment(),
            Some(Capability::ProvisioningCancelService)
        );
        let crm_off = Capabilities::all().without(Capability::CrmValidateAccount);
        assert_eq!(crm_off.missing_for_fulfillment(), None);
    }
}
