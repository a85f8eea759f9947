//! What one execute request does, decided under the ledger's lock, one
//! function per family of faults: refusals without effect (a bare status,
//! or an answer that records a state), billing's duplicate check, and
//! effect then answer (with the callbacks it schedules).

use axum::http::StatusCode;
use domain::idempotency::{Purpose, TargetSystem};

use super::{Ctx, Fault, LedgerEntry, Shared, SimulatorOptions};
use crate::dialect::{self, ErrorKind};

/// What the handler decided under the lock.
pub(super) struct Plan {
    pub(super) status: StatusCode,
    pub(super) body: Option<serde_json::Value>,
    pub(super) raw_body: Option<&'static str>,
    pub(super) delay_ms: u64,
    pub(super) callbacks: Vec<(u64, String, String)>, // (delay, message id, state)
    pub(super) callback_first: bool,
}

impl Plan {
    /// Answers `status`, with no body, at once, with no callback.
    fn status(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            raw_body: None,
            delay_ms: 0,
            callbacks: Vec::new(),
            callback_first: false,
        }
    }
}

/// Decides the answer and applies the effect, under the ledger's lock.
pub(super) fn plan(
    ctx: &Ctx,
    entry: &mut LedgerEntry,
    fault: Fault,
    purpose: Purpose,
    hash: &str,
    async_mode: bool,
) -> Plan {
    let system = ctx.system;
    let reference = format!("{}-ref-{}", system.as_str(), &hash[..12.min(hash.len())]);
    if let Some(plan) = bare_refusal(&ctx.shared.options, fault) {
        return plan;
    }
    if let Some(plan) = answered_refusal(system, entry, fault, purpose, &reference) {
        return plan;
    }
    // Billing deduplicates by key; the others apply every request they get.
    if system == TargetSystem::Billing && entry.effects > 0 {
        return billing_duplicate(system, entry, hash, &reference);
    }
    effect_then_answer(ctx, entry, fault, purpose, &reference, async_mode)
}

/// Refusals without effect that leave the ledger alone: a bare HTTP status
/// (held for `hang_ms` when the request times out before it is applied).
fn bare_refusal(options: &SimulatorOptions, fault: Fault) -> Option<Plan> {
    let mut plan = Plan::status(StatusCode::OK);
    match fault {
        Fault::Unauthorized => plan.status = StatusCode::UNAUTHORIZED,
        Fault::TooManyRequests => plan.status = StatusCode::TOO_MANY_REQUESTS,
        Fault::ServerError => plan.status = StatusCode::INTERNAL_SERVER_ERROR,
        Fault::UnknownStatusCode => plan.status = StatusCode::IM_A_TEAPOT,
        Fault::TimeoutBeforeApply => {
            plan.status = StatusCode::SERVICE_UNAVAILABLE;
            plan.delay_ms = options.hang_ms;
        }
        _ => return None,
    }
    Some(plan)
}

/// Refusals without effect that record the key's state and answer in the
/// system's dialect: business or validation rejects, a status word nobody
/// mapped, a pending that never completes.
fn answered_refusal(
    system: TargetSystem,
    entry: &mut LedgerEntry,
    fault: Fault,
    purpose: Purpose,
    reference: &str,
) -> Option<Plan> {
    let mut plan = Plan::status(StatusCode::OK);
    match fault {
        Fault::BusinessReject => {
            entry.state = dialect::rejected_state(system, true).to_owned();
            (plan.status, plan.body) = error(
                system,
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::Business,
            );
        }
        Fault::ValidationReject => {
            entry.state = dialect::rejected_state(system, false).to_owned();
            (plan.status, plan.body) =
                error(system, StatusCode::BAD_REQUEST, ErrorKind::Validation);
        }
        Fault::UnknownExternalStatus => {
            entry.state = dialect::unknown_state(system).to_owned();
            plan.body = Some(dialect::answer(system, &entry.state, reference));
        }
        Fault::NeverCompletes => {
            entry.state = dialect::pending_state(system, purpose).to_owned();
            plan.status = StatusCode::ACCEPTED;
            plan.body = Some(dialect::answer(system, &entry.state, reference));
        }
        _ => return None,
    }
    Some(plan)
}

/// An error answer in the system's dialect.
fn error(
    system: TargetSystem,
    status: StatusCode,
    kind: ErrorKind,
) -> (StatusCode, Option<serde_json::Value>) {
    (status, Some(dialect::error(system, kind)))
}

/// Billing's answer to a key whose effect is already applied: `DUPLICATE`
/// for the same request, 409 for another one; no new effect.
fn billing_duplicate(
    system: TargetSystem,
    entry: &LedgerEntry,
    hash: &str,
    reference: &str,
) -> Plan {
    let mut plan = Plan::status(StatusCode::OK);
    if entry.request_hash == hash {
        plan.body = Some(dialect::answer(system, "DUPLICATE", reference));
    } else {
        (plan.status, plan.body) = error(system, StatusCode::CONFLICT, ErrorKind::Conflict);
    }
    plan
}

/// Applies the effect, then answers: a malformed body; the final state
/// (late or after a hang, as scripted) without a callback target; else
/// pending, with the callbacks it schedules.
fn effect_then_answer(
    ctx: &Ctx,
    entry: &mut LedgerEntry,
    fault: Fault,
    purpose: Purpose,
    reference: &str,
    async_mode: bool,
) -> Plan {
    let system = ctx.system;
    let options = &ctx.shared.options;
    let mut plan = Plan::status(StatusCode::OK);
    entry.effects += 1;
    let done = dialect::final_state(system, purpose);
    entry.state = done.to_owned();
    if fault == Fault::MalformedBody {
        plan.raw_body = Some("<html><body>upstream proxy says hi</body></html>");
        return plan;
    }
    plan.delay_ms = match fault {
        Fault::TimeoutAfterApply => options.hang_ms,
        Fault::AnswerLate => options.late_ms,
        _ => 0,
    };
    if !async_mode {
        plan.body = Some(dialect::answer(system, done, reference));
        return plan;
    }
    plan.status = StatusCode::ACCEPTED;
    plan.body = Some(dialect::answer(
        system,
        dialect::pending_state(system, purpose),
        reference,
    ));
    plan.callbacks = callbacks(&ctx.shared, system, fault, purpose, done);
    plan.callback_first = fault == Fault::CallbackBeforeResponse;
    plan
}

/// The callbacks a pending answer schedules, in order, as (delay, message
/// id, state): none, the final state twice with one message id, the final
/// state then a stale one, the final state after a hang, or the final
/// state once.
fn callbacks(
    shared: &Shared,
    system: TargetSystem,
    fault: Fault,
    purpose: Purpose,
    done: &str,
) -> Vec<(u64, String, String)> {
    let delay = shared.options.callback_delay_ms;
    let hang = shared.options.hang_ms;
    // Drawn even when the callback is dropped: message ids stay as they were.
    let first = shared.message_id(system);
    match fault {
        Fault::DropCallback => Vec::new(),
        Fault::CallbackTwice => vec![
            (delay, first.clone(), done.to_owned()),
            (delay, first, done.to_owned()),
        ],
        Fault::CallbackOutOfOrder => vec![
            (delay, first, done.to_owned()),
            (
                delay,
                shared.message_id(system),
                dialect::stale_state(system, purpose).to_owned(),
            ),
        ],
        Fault::TimeoutAfterApply => vec![(hang + delay, first, done.to_owned())],
        _ => vec![(delay, first, done.to_owned())],
    }
}
