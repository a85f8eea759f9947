//! `HandoffResolved` at schema version 1, before it named the handoff's
//! subject: FROZEN, never change this module.
//!
//! In version 1 a closed case said who closed it, what was done and when,
//! but not whose handoff it was; the process that routes handoff outcomes
//! to their order could not route it. Version 2 adds
//! [`crate::handoff::HandoffEvent::HandoffResolved::subject`]; [`upcast`]
//! fills it with `None` (version 1 did not say, and an event cannot look
//! up its stream's first event).
//!
//! # Technique: a frozen mirror of the enum up to the changed variant
//!
//! As in [`crate::quote::legacy::v1`]: bincode writes an enum as its variant
//! index followed by the variant's fields, so [`HandoffEvent`] mirrors the
//! version 1 `HandoffEvent` up to `HandoffResolved` (index 8), with unit
//! placeholders for the eight variants before it and none after it.
//! `HandoffResolved` keeps its version 1 fields, all of today's types
//! ([`Timestamp`]); should that type ever change, its old shape is frozen
//! here first, in the same change; the golden bytes in
//! `domain/tests/golden/handoff_resolved_v1.hex` fail otherwise.

use serde::{Deserialize, Serialize};

use crate::ids::Timestamp;

/// The version 1 handoff event enum, up to `HandoffResolved`. FROZEN: the
/// order of the variants is the version 1 variant order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandoffEvent {
    /// Index 0 (`HandoffRequested`): placeholder, its fields are never read here.
    HandoffRequested,
    /// Index 1 (`HandoffSent`): placeholder.
    HandoffSent,
    /// Index 2 (`HandoffAccepted`): placeholder.
    HandoffAccepted,
    /// Index 3 (`HandoffSucceeded`): placeholder.
    HandoffSucceeded,
    /// Index 4 (`HandoffRejected`): placeholder.
    HandoffRejected,
    /// Index 5 (`HandoffOutcomeUnknown`): placeholder.
    HandoffOutcomeUnknown,
    /// Index 6 (`HandoffRetryScheduled`): placeholder.
    HandoffRetryScheduled,
    /// Index 7 (`HandoffFalloutRaised`): placeholder.
    HandoffFalloutRaised,
    /// Index 8: an operator closed the case.
    HandoffResolved {
        /// Who.
        operator: String,
        /// What was done.
        note: String,
        /// When.
        at: Timestamp,
    },
}

impl HandoffEvent {
    /// The event type the variant stands for (a placeholder names the type
    /// whose index it holds).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::HandoffRequested => "HandoffRequested",
            Self::HandoffSent => "HandoffSent",
            Self::HandoffAccepted => "HandoffAccepted",
            Self::HandoffSucceeded => "HandoffSucceeded",
            Self::HandoffRejected => "HandoffRejected",
            Self::HandoffOutcomeUnknown => "HandoffOutcomeUnknown",
            Self::HandoffRetryScheduled => "HandoffRetryScheduled",
            Self::HandoffFalloutRaised => "HandoffFalloutRaised",
            Self::HandoffResolved { .. } => "HandoffResolved",
        }
    }
}

/// The upcaster from version 1 to version 2: a version 1 `HandoffResolved`
/// becomes the version 2 one with no subject (version 1 did not name it);
/// every other field is kept.
///
/// # Errors
/// The event type of a placeholder, when the payload was not a
/// `HandoffResolved` at all.
pub fn upcast(event: HandoffEvent) -> Result<crate::handoff::HandoffEvent, &'static str> {
    let HandoffEvent::HandoffResolved { operator, note, at } = event else {
        return Err(event.event_type());
    };
    Ok(crate::handoff::HandoffEvent::HandoffResolved {
        operator,
        note,
        at,
        subject: None,
    })
}
