//! What a simulator does with a request: the [`Fault`]s, the ratio-based
//! [`FaultMix`] and the [`Script`]s that choose among them.

use std::str::FromStr;

/// What a simulator does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// Apply the effect; answer (pending + callback, or final).
    Succeed,
    /// Refuse by a business rule (no effect).
    BusinessReject,
    /// Refuse the request's content (no effect).
    ValidationReject,
    /// Apply the effect, then hold the answer past any read timeout.
    TimeoutAfterApply,
    /// Hold the answer past any read timeout and never apply the effect.
    TimeoutBeforeApply,
    /// Apply, then answer after `late_ms`.
    AnswerLate,
    /// Apply, answer pending, call back twice with the same message id.
    CallbackTwice,
    /// Apply, answer pending, call back the final state then a stale one.
    CallbackOutOfOrder,
    /// Apply, deliver the callback, only then answer.
    CallbackBeforeResponse,
    /// Apply, answer pending, never call back.
    DropCallback,
    /// Apply, answer 200 with a body that is not the contract's.
    MalformedBody,
    /// 401, no effect.
    Unauthorized,
    /// 429, no effect.
    TooManyRequests,
    /// 500, no effect.
    ServerError,
    /// An HTTP status nobody mapped (418), no effect.
    UnknownStatusCode,
    /// 200 with an external status word nobody mapped, no effect.
    UnknownExternalStatus,
    /// Accept (answer pending) and never progress: no effect, no callback,
    /// the status stays pending.
    NeverCompletes,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 17] = [
        Fault::Succeed,
        Fault::BusinessReject,
        Fault::ValidationReject,
        Fault::TimeoutAfterApply,
        Fault::TimeoutBeforeApply,
        Fault::AnswerLate,
        Fault::CallbackTwice,
        Fault::CallbackOutOfOrder,
        Fault::CallbackBeforeResponse,
        Fault::DropCallback,
        Fault::MalformedBody,
        Fault::Unauthorized,
        Fault::TooManyRequests,
        Fault::ServerError,
        Fault::UnknownStatusCode,
        Fault::UnknownExternalStatus,
        Fault::NeverCompletes,
    ];

    /// Whether the simulator of `system` plays this fault. CRM answers a
    /// lookup (a read: nothing to reject, apply or call back); only the
    /// systems that call back (inventory, provisioning, billing) play the
    /// callback faults, and notification and the document service answer
    /// each request itself. A fault a simulator could not play would be
    /// used up by its next request with no effect, so a script of one is
    /// refused.
    pub fn plays_on(self, system: domain::idempotency::TargetSystem) -> bool {
        use Fault as F;
        let a_callback = matches!(
            self,
            F::CallbackTwice | F::CallbackOutOfOrder | F::CallbackBeforeResponse | F::DropCallback
        );
        match system {
            domain::idempotency::TargetSystem::Crm => matches!(
                self,
                F::Succeed
                    | F::Unauthorized
                    | F::TooManyRequests
                    | F::ServerError
                    | F::UnknownStatusCode
                    | F::TimeoutAfterApply
                    | F::TimeoutBeforeApply
                    | F::AnswerLate
                    | F::MalformedBody
                    | F::UnknownExternalStatus
            ),
            other => !a_callback || integration::config::sends_callbacks(other),
        }
    }

    /// The fault's name, as scripts and configuration spell it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Succeed => "Succeed",
            Fault::BusinessReject => "BusinessReject",
            Fault::ValidationReject => "ValidationReject",
            Fault::TimeoutAfterApply => "TimeoutAfterApply",
            Fault::TimeoutBeforeApply => "TimeoutBeforeApply",
            Fault::AnswerLate => "AnswerLate",
            Fault::CallbackTwice => "CallbackTwice",
            Fault::CallbackOutOfOrder => "CallbackOutOfOrder",
            Fault::CallbackBeforeResponse => "CallbackBeforeResponse",
            Fault::DropCallback => "DropCallback",
            Fault::MalformedBody => "MalformedBody",
            Fault::Unauthorized => "Unauthorized",
            Fault::TooManyRequests => "TooManyRequests",
            Fault::ServerError => "ServerError",
            Fault::UnknownStatusCode => "UnknownStatusCode",
            Fault::UnknownExternalStatus => "UnknownExternalStatus",
            Fault::NeverCompletes => "NeverCompletes",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not one of [`Fault::ALL`], or a malformed mix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(String);

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                FaultParseError(format!(
                    "unknown fault `{}`; known: {}",
                    domain::text::escaped(name),
                    known.join(", ")
                ))
            })
    }
}

/// A ratio-based fault mix, in basis points (1/10,000) per fault; the rest
/// succeeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultMix {
    weights: Vec<(Fault, u32)>,
}

impl FaultMix {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `fault` for `basis_points` of the requests (500 = 5 %).
    pub fn with(mut self, fault: Fault, basis_points: u32) -> Self {
        self.weights.push((fault, basis_points));
        self
    }

    /// The faults and their weights, in the order given.
    pub fn weights(&self) -> &[(Fault, u32)] {
        &self.weights
    }

    pub(super) fn pick(&self, roll: u32) -> Fault {
        let mut acc = 0u32;
        for (fault, weight) in &self.weights {
            acc = acc.saturating_add(*weight);
            if roll < acc {
                return *fault;
            }
        }
        Fault::Succeed
    }
}

/// Parses `Fault=basis_points,...`, e.g.
/// `TimeoutAfterApply=500,CallbackTwice=300` (5 % and 3 %); the weights add
/// up to at most 10,000.
impl FromStr for FaultMix {
    type Err = FaultParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut mix = FaultMix::new();
        let mut total = 0u32;
        let mut named = std::collections::HashSet::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, weight) = item
                .split_once('=')
                .ok_or_else(|| FaultParseError(format!("`{item}` is not `Fault=basis_points`")))?;
            let fault = name.trim().parse::<Fault>()?;
            if !named.insert(name.trim().to_owned()) {
                return Err(FaultParseError(format!(
                    "`{}` is given twice; name each fault once",
                    name.trim()
                )));
            }
            let weight = weight.trim().parse::<u32>().map_err(|_| {
                FaultParseError(format!("`{weight}` is not a number of basis points"))
            })?;
            total = total.saturating_add(weight);
            mix = mix.with(fault, weight);
        }
        if total > 10_000 {
            return Err(FaultParseError(format!(
                "the weights add up to {total} basis points, more than 10000"
            )));
        }
        Ok(mix)
    }
}

/// How to script a simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Script {
    /// The next requests (any key, any tenant), in order.
    Next(Vec<Fault>),
    /// The next requests made for one tenant, in order: a business
    /// idempotency key that starts with the tenant, or a CRM lookup or
    /// document render whose `x-tenant` header names it. Taken before
    /// [`Script::Next`]; another tenant's requests never take them.
    NextFor {
        /// The tenant.
        tenant: String,
        /// The faults.
        faults: Vec<Fault>,
    },
    /// The next requests carrying this idempotency key (or, for CRM, this
    /// customer id), in order.
    ForKey {
        /// The key.
        key: String,
        /// The faults.
        faults: Vec<Fault>,
    },
    /// A ratio-based mix for requests not otherwise scripted.
    Mix(FaultMix),
    /// Forget every script and mix.
    Clear,
}

#[cfg(test)]
mod tests {
    use super::FaultMix;

    /// A mix names each fault once: a second weight for one fault was
    /// taken without a word, whichever the operator meant.
    #[test]
    fn a_mix_names_each_fault_once() {
        assert!("BusinessReject=100,TimeoutAfterApply=200"
            .parse::<FaultMix>()
            .is_ok());
        let twice = "BusinessReject=100, BusinessReject=200"
            .parse::<FaultMix>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(twice.contains("given twice"), "{twice}");
    }
}
