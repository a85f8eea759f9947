//! The operations dashboard: outcome counts by target system and class,
//! handoffs per stage (pending, unknown), the oldest pending handoff, and
//! fallout cases opened and resolved per hour.
//!
//! It has no projector of its own: the `handoffs` projector keeps the outcome
//! and stage counters and the rank index the oldest pending handoff is read
//! from, and the `fallout` projector keeps the hourly and open-case counters,
//! each in the same atomic batch as the rows they count (see those modules
//! for the keys). The dashboard therefore always agrees with the lists, and
//! rebuilding those two projectors rebuilds it.

use domain::idempotency::TargetSystem;
use domain::ids::{HandoffId, TenantId, Timestamp};
use domain::outcome::OutcomeClass;
use serde::Serialize;

use super::fallout::{hour_of, HOURLY, HOUR_MS, OPEN_COUNT};
use super::handoffs::{HandoffStage, OUTCOME_COUNT, RANK_INDEX, STAGES, STAGE_COUNT};
use super::{class_code, target_code};
use crate::error::QueryError;
use crate::keys::{self, KeyBuf};

/// Hours of fallout history the dashboard returns.
pub const DASHBOARD_HOURS: i64 = 24;

/// How often one outcome class was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeCount {
    /// The class.
    pub class: OutcomeClass,
    /// Observations.
    pub count: u64,
}

/// How many handoffs are in one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageCount {
    /// The stage.
    pub stage: HandoffStage,
    /// Handoffs.
    pub count: u64,
}

/// The figures of one target system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetDashboard {
    /// The system.
    pub target: TargetSystem,
    /// Observations by class (classes never seen are left out).
    pub outcomes: Vec<OutcomeCount>,
    /// Handoffs by current stage (empty stages are left out).
    pub stages: Vec<StageCount>,
    /// Pending handoffs.
    pub pending: u64,
    /// Handoffs whose outcome is unknown.
    pub unknown: u64,
}

/// Fallout cases opened and resolved in one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourlyFallout {
    /// Start of the hour (ms).
    pub hour_start_ms: i64,
    /// Cases opened.
    pub opened: u64,
    /// Cases resolved.
    pub resolved: u64,
}

/// The dashboard of one tenant at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The time ages are computed at.
    pub now_ms: i64,
    /// Figures per target system (systems never used are left out).
    pub targets: Vec<TargetDashboard>,
    /// Pending handoffs, all systems.
    pub pending: u64,
    /// Handoffs whose outcome is unknown, all systems.
    pub unknown: u64,
    /// Age of the oldest pending handoff.
    pub oldest_pending_age_ms: Option<i64>,
    /// The oldest pending handoff.
    pub oldest_pending_handoff: Option<HandoffId>,
    /// Open fallout cases.
    pub open_fallout: u64,
    /// Cases opened and resolved per hour, for the [`DASHBOARD_HOURS`] hours
    /// ending with the hour of `now_ms`, oldest first.
    pub fallout_by_hour: Vec<HourlyFallout>,
}

fn counter(tree: &sled::Tree, key: &[u8]) -> Result<u64, QueryError> {
    Ok(tree
        .get(key)?
        .and_then(|v| keys::read_u64(&v, 0))
        .unwrap_or(0))
}

/// The oldest entry of one rank's section of the handoffs rank index.
fn oldest(
    tree: &sled::Tree,
    t: &[u8; 16],
    rank: u8,
) -> Result<Option<(i64, HandoffId)>, QueryError> {
    let prefix = KeyBuf::new(t, RANK_INDEX).byte(rank).done();
    let Some(entry) = tree.scan_prefix(&prefix).next() else {
        return Ok(None);
    };
    let (key, value) = entry?;
    Ok(keys::read_u64(&key, prefix.len()).map(|ts| {
        (
            keys::ts_from_asc(ts),
            HandoffId::new(String::from_utf8_lossy(&value)),
        )
    }))
}

/// The dashboard of `tenant` at `now_ms`, from the handoffs and fallout trees.
pub(crate) fn dashboard(
    handoffs: &sled::Tree,
    fallout: &sled::Tree,
    tenant: &TenantId,
    now_ms: i64,
) -> Result<Dashboard, QueryError> {
    let t = keys::tenant_prefix(tenant.as_str());
    let mut targets = Vec::new();
    for target in TargetSystem::ALL {
        let tc = target_code(target);
        let mut outcomes = Vec::new();
        for class in OutcomeClass::ALL {
            let count = counter(
                handoffs,
                &KeyBuf::new(&t, OUTCOME_COUNT)
                    .byte(tc)
                    .byte(class_code(class))
                    .done(),
            )?;
            if count > 0 {
                outcomes.push(OutcomeCount { class, count });
            }
        }
        let mut stages = Vec::new();
        for stage in STAGES {
            let count = counter(
                handoffs,
                &KeyBuf::new(&t, STAGE_COUNT)
                    .byte(tc)
                    .byte(stage.code())
                    .done(),
            )?;
            if count > 0 {
                stages.push(StageCount { stage, count });
            }
        }
        if outcomes.is_empty() && stages.is_empty() {
            continue;
        }
        let pending = stages
            .iter()
            .filter(|s| s.stage.is_pending())
            .map(|s| s.count)
            .sum();
        let unknown = stages
            .iter()
            .filter(|s| s.stage == HandoffStage::Unknown)
            .map(|s| s.count)
            .sum();
        targets.push(TargetDashboard {
            target,
            outcomes,
            stages,
            pending,
            unknown,
        });
    }
    // Pending handoffs are ranks 0 (unknown) and 1 (other pending stages).
    let oldest = match (oldest(handoffs, &t, 0)?, oldest(handoffs, &t, 1)?) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    let now_hour = hour_of(Timestamp(now_ms));
    let mut fallout_by_hour = Vec::new();
    for i in (0..DASHBOARD_HOURS).rev() {
        let hour = now_hour - i * HOUR_MS;
        let key = |kind: u8| {
            KeyBuf::new(&t, HOURLY)
                .u64(keys::ts_asc(hour))
                .byte(kind)
                .done()
        };
        fallout_by_hour.push(HourlyFallout {
            hour_start_ms: hour,
            opened: counter(fallout, &key(0))?,
            resolved: counter(fallout, &key(1))?,
        });
    }
    Ok(Dashboard {
        tenant_id: tenant.clone(),
        now_ms,
        pending: targets.iter().map(|t| t.pending).sum(),
        unknown: targets.iter().map(|t| t.unknown).sum(),
        targets,
        oldest_pending_age_ms: oldest.as_ref().map(|(at, _)| now_ms.saturating_sub(*at)),
        oldest_pending_handoff: oldest.map(|(_, id)| id),
        open_fallout: counter(fallout, &KeyBuf::new(&t, OPEN_COUNT).done())?,
        fallout_by_hour,
    })
}
