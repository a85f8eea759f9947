//! A given/when/then harness for deciders, and sample data, usable from any crate's
//! tests.
//!
//! ```
//! use domain::testing::Given;
//! use domain::quote::{QuoteDecider, QuoteCommand, QuoteError};
//! use domain::ids::Timestamp;
//!
//! Given::<QuoteDecider>::nothing()
//!     .when(QuoteCommand::Expire { at: Timestamp(0) })
//!     .then_err(QuoteError::NotCreated);
//! ```

pub mod fixtures;

use crate::decider::{fold, Decider};

/// The history a scenario starts from.
#[derive(Debug)]
pub struct Given<D: Decider> {
    state: D::State,
}

impl<D: Decider> Given<D> {
    /// Starts from the state `events` fold to.
    pub fn events(events: Vec<D::Event>) -> Self {
        Given {
            state: fold::<D, _>(&events),
        }
    }

    /// Starts from an empty stream.
    pub fn nothing() -> Self {
        Given {
            state: D::initial(),
        }
    }

    /// Starts from an explicit state (for state-stored use of the decider).
    pub fn state(state: D::State) -> Self {
        Given { state }
    }

    /// Decides `command` against the given history.
    pub fn when(self, command: D::Command) -> When<D> {
        let result = D::decide(&self.state, &command);
        When {
            state: self.state,
            result,
        }
    }
}

/// The outcome of a decision, awaiting its expectation.
#[derive(Debug)]
pub struct When<D: Decider> {
    state: D::State,
    result: Result<Vec<D::Event>, D::Error>,
}

impl<D: Decider> When<D> {
    /// Asserts the command was accepted with exactly `expected`, and returns the
    /// state those events lead to for further assertions.
    ///
    /// # Panics
    /// When the command was refused or produced other events.
    #[track_caller]
    pub fn then(self, expected: Vec<D::Event>) -> D::State {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                events.iter().fold(self.state, D::evolve)
            }
            Err(error) => {
                panic!("expected events {expected:?}, but the command was refused: {error:?}")
            }
        }
    }

    /// Asserts the command was accepted and changed nothing (an idempotent repeat).
    ///
    /// # Panics
    /// When the command was refused or produced events.
    #[track_caller]
    pub fn then_nothing(self) {
        self.then(Vec::new());
    }

    /// Asserts the command was refused with `expected`.
    ///
    /// # Panics
    /// When the command was accepted or refused by another rule.
    #[track_caller]
    pub fn then_err(self, expected: D::Error) {
        match self.result {
            Ok(events) => panic!("expected refusal {expected:?}, but got events {events:?}"),
            Err(error) => assert_eq!(error, expected, "refused by another rule"),
        }
    }

    /// The raw decision, for assertions the helpers above do not cover.
    pub fn result(self) -> Result<Vec<D::Event>, D::Error> {
        self.result
    }
}
