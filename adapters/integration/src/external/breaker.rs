//! A circuit breaker per tenant and system.
//!
//! After `threshold` consecutive technical failures (retryable errors and
//! timeouts) the circuit opens: calls fail fast with
//! [`super::PortError::CircuitOpen`] for `open_ms`, without touching the
//! handoff, so nothing is marked failed. Then one probe goes through; its
//! success closes the circuit, its failure opens it again.

use std::sync::Mutex;

use domain::outcome::OutcomeClass;

/// The breaker's state, behind a mutex (held for a few instructions, never
/// across an await).
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    open_ms: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until_ms: Option<i64>,
    /// When the half-open probe was let through; a probe whose result never
    /// comes (its call was not made after all) expires after `open_ms`.
    probing_since: Option<i64>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(threshold: u32, open_ms: u64) -> Self {
        Self {
            threshold: threshold.max(1),
            open_ms,
            state: Mutex::new(State::default()),
        }
    }

    /// `Ok` when a call may go now; otherwise how long to wait, in ms.
    ///
    /// # Errors
    /// The wait, while the circuit is open or a probe is in flight.
    pub fn admit(&self, now_ms: i64) -> Result<(), u64> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        match state.open_until_ms {
            None => Ok(()),
            Some(until) if now_ms < until => Err(u64::try_from(until.saturating_sub(now_ms))
                .unwrap_or(0)
                .max(1)),
            Some(_)
                if state.probing_since.is_some_and(|since| {
                    now_ms.saturating_sub(since) < i64::try_from(self.open_ms).unwrap_or(i64::MAX)
                }) =>
            {
                Err(self.open_ms.clamp(1, 250))
            }
            Some(_) => {
                state.probing_since = Some(now_ms);
                Ok(())
            }
        }
    }

    /// Records the class of a finished call.
    pub fn record(&self, class: OutcomeClass, now_ms: i64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let technical = matches!(
            class,
            OutcomeClass::TechnicalRetryable | OutcomeClass::Unknown
        );
        if !technical {
            *state = State::default();
            return;
        }
        state.failures = state.failures.saturating_add(1);
        if state.probing_since.is_some() || state.failures >= self.threshold {
            let open = i64::try_from(self.open_ms).unwrap_or(i64::MAX);
            state.open_until_ms = Some(now_ms.saturating_add(open));
            state.probing_since = None;
        }
    }

    /// True while calls fail fast.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.state
            .lock()
            .map(|s| s.open_until_ms.is_some_and(|until| now_ms < until))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_fails_fast_then_probes_once() {
        let breaker = CircuitBreaker::new(3, 1_000);
        for _ in 0..2 {
            assert_eq!(breaker.admit(0), Ok(()));
            breaker.record(OutcomeClass::TechnicalRetryable, 0);
        }
        assert_eq!(breaker.admit(0), Ok(()));
        breaker.record(OutcomeClass::Unknown, 10);
        assert!(breaker.is_open(10));
        assert_eq!(breaker.admit(500), Err(510));
        // Half-open: one probe, others wait.
        assert_eq!(breaker.admit(1_010), Ok(()));
        assert!(breaker.admit(1_011).is_err());
        breaker.record(OutcomeClass::TechnicalRetryable, 1_020);
        assert!(breaker.admit(1_500).is_err());
        assert_eq!(breaker.admit(2_020), Ok(()));
        breaker.record(OutcomeClass::Succeeded, 2_030);
        assert_eq!(breaker.admit(2_031), Ok(()));
        assert!(!breaker.is_open(2_031));
    }

    #[test]
    fn a_probe_whose_call_never_came_expires() {
        let breaker = CircuitBreaker::new(1, 100);
        breaker.record(OutcomeClass::TechnicalRetryable, 0);
        assert_eq!(breaker.admit(100), Ok(()));
        assert!(breaker.admit(150).is_err());
        assert_eq!(breaker.admit(200), Ok(()));
    }

    #[test]
    fn business_answers_reset_the_count() {
        let breaker = CircuitBreaker::new(2, 1_000);
        breaker.record(OutcomeClass::TechnicalRetryable, 0);
        breaker.record(OutcomeClass::BusinessRejected, 0);
        breaker.record(OutcomeClass::TechnicalRetryable, 0);
        assert!(!breaker.is_open(0));
    }
}
