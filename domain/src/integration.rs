//! Integration events: the facts other systems are told about.
//!
//! Most events are internal bookkeeping of a decider (a line added, a step
//! requested). A few are milestones that services outside the platform
//! (analytics, billing, other regions) subscribe to: a quote accepted, an
//! order captured, completed or cancelled, a handoff's outcome, a fallout
//! case opened or resolved. They are named here, once, so the relay and the
//! documentation agree on the list. Adding a type here makes it part of the
//! platform's public contract: its payload shape then changes only with a
//! schema version bump.

/// Every integration event type, sorted by aggregate then lifecycle.
pub const INTEGRATION_EVENT_TYPES: [&str; 11] = [
    // Quote.
    "QuoteAccepted",
    // Order.
    "OrderCaptured",
    "LineFalloutRaised",
    "LineFalloutResolved",
    "OrderCompleted",
    "OrderCancelled",
    // Handoff outcomes.
    "HandoffSucceeded",
    "HandoffRejected",
    "HandoffOutcomeUnknown",
    "HandoffFalloutRaised",
    "HandoffResolved",
];

/// True when `event_type` (an event's stable name, as stored in the log) is
/// an integration event.
pub fn is_integration_event(event_type: &str) -> bool {
    INTEGRATION_EVENT_TYPES.contains(&event_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::DomainEvent;
    use crate::testing::fixtures;

    #[test]
    fn milestones_are_integration_events_and_bookkeeping_is_not() {
        for name in [
            "QuoteAccepted",
            "OrderCaptured",
            "HandoffOutcomeUnknown",
            "OrderCompleted",
        ] {
            assert!(is_integration_event(name), "{name}");
        }
        for name in [
            "QuoteCreated",
            "LineAdded",
            "StepRequested",
            "HandoffSent",
            "",
            "quoteaccepted",
        ] {
            assert!(!is_integration_event(name), "{name}");
        }
    }

    #[test]
    fn the_list_names_real_event_types_once() {
        let mut names = INTEGRATION_EVENT_TYPES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), INTEGRATION_EVENT_TYPES.len());
        assert!(is_integration_event(
            fixtures::order_captured(&["l1"]).event_type()
        ));
        assert!(!is_integration_event(
            fixtures::quote_created().event_type()
        ));
    }
}
