//! `as-of`: the state of one aggregate at a position or a time (the fold
//! of its events up to there), and the events that led there.

use clap::Args;
use domain::decider::{fold, Decider};
use domain::{HandoffDecider, OrderDecider, QuoteDecider};
use eventlog::RecordedEvent;
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::error::ReplayError;
use crate::ids;
use crate::output::Out;
use crate::payload::{self, Aggregate, Payload};
use crate::reader::LogReader;
use crate::render::{event_line, EventJson};
use crate::timefmt;

/// Arguments of `as-of`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  oms-replay as-of quote-q1 --position 1200\n  oms-replay as-of order-7f3a --time 2024-05-01T12:00:00Z --json"
)]
pub struct AsOfArgs {
    /// The aggregate's stream id (`quote-<id>`, `order-<id>` or `handoff-<id>`).
    pub stream: String,
    /// Include events up to this global position (inclusive).
    #[arg(long, conflicts_with = "time")]
    pub position: Option<u64>,
    /// Include events recorded up to this time (inclusive; ms, RFC 3339 or a day).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
}

/// Where the prefix ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Every event.
    Head,
    /// Events at positions up to and including this one.
    Position(u64),
    /// Events recorded at or before this time (Unix ms).
    Time(i64),
}

impl Bound {
    fn admits(self, record: &RecordedEvent) -> bool {
        match self {
            Self::Head => true,
            Self::Position(p) => record.position <= p,
            Self::Time(t) => record.recorded_at_ms <= t,
        }
    }
}

/// An aggregate's state at a bound.
#[derive(Debug, Clone)]
pub struct AsOf {
    /// The stream.
    pub stream_id: String,
    /// Its aggregate.
    pub aggregate: Aggregate,
    /// Stream version at the bound (0 before the first event).
    pub version: u64,
    /// The folded state.
    pub state: FoldedState,
    /// The events folded, in order.
    pub events: Vec<RecordedEvent>,
}

/// Folds `stream_id`'s events up to `bound`.
pub fn as_of(reader: &LogReader, stream_id: &str, bound: Bound) -> Result<AsOf, ReplayError> {
    let aggregate = Aggregate::of_stream(stream_id).ok_or_else(|| {
        ReplayError::Usage(format!(
            "{} is not an aggregate stream (quote-, order-, handoff-, catalog-)",
            ids::shown(stream_id)
        ))
    })?;
    let positions = reader.stream_positions(stream_id)?;
    if positions.is_empty() {
        return Err(ReplayError::Usage(format!(
            "no stream {} in the log",
            ids::shown(stream_id)
        )));
    }
    let mut events = Vec::new();
    for position in positions {
        let record = reader.get(position)?.ok_or(ReplayError::Damaged {
            position,
            problem: format!("the index of {stream_id} points at a missing record"),
        })?;
        // Stream order is position order: stop at the first event past the bound.
        if !bound.admits(&record) {
            break;
        }
        events.push(record);
    }
    let state = match aggregate {
        Aggregate::Quote => fold_state::<QuoteDecider>(&events)?,
        Aggregate::Order => fold_state::<OrderDecider>(&events)?,
        Aggregate::Handoff => fold_state::<HandoffDecider>(&events)?,
        Aggregate::Catalog => fold_state::<domain::CatalogDecider>(&events)?,
    };
    Ok(AsOf {
        stream_id: stream_id.to_owned(),
        aggregate,
        version: events.last().map_or(0, |e| e.stream_version),
        state,
        events,
    })
}

/// A folded state in the forms `as-of` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedState {
    /// The state as JSON (its `Serialize` form).
    pub json: serde_json::Value,
    /// The state's `Debug` text, `{:?}`.
    pub debug: String,
    /// The state's pretty `Debug` text, `{:#?}`.
    pub pretty: String,
}

/// Decodes and folds `events` with `D`, returning the state as JSON and as
/// `Debug` text (compact and pretty).
pub fn fold_state<D>(events: &[RecordedEvent]) -> Result<FoldedState, ReplayError>
where
    D: Decider,
    D::Event: TryFrom<Payload, Error = Payload>,
    D::State: Serialize,
{
    let decoded = events
        .iter()
        .map(|r| {
            let damaged = |problem: String| ReplayError::Damaged {
                position: r.position,
                problem,
            };
            let payload =
                payload::decode(r).map_err(|e| damaged(format!("payload does not decode: {e}")))?;
            D::Event::try_from(payload).map_err(|other| {
                damaged(format!(
                    "payload is a {} event, not one of this stream",
                    other.kind()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let state = fold::<D, _>(&decoded);
    let json = serde_json::to_value(&state)
        .map_err(|e| ReplayError::Usage(format!("the state does not serialise as JSON: {e}")))?;
    Ok(FoldedState {
        json,
        debug: format!("{state:?}"),
        pretty: format!("{state:#?}"),
    })
}

#[derive(Serialize)]
struct AsOfJson<'a> {
    stream_id: &'a str,
    aggregate: &'static str,
    as_of_position: Option<u64>,
    as_of_time: Option<String>,
    version: u64,
    last_position: Option<u64>,
    state: &'a serde_json::Value,
    state_debug: &'a str,
    events: Vec<EventJson<'a>>,
}

/// Runs `as-of`.
pub fn run(args: &AsOfArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    ids::check_stream("STREAM", &args.stream)?;
    let bound = match (args.position, &args.time) {
        (Some(p), _) => Bound::Position(p),
        (None, Some(t)) => Bound::Time(timefmt::parse_time(t)?),
        (None, None) => Bound::Head,
    };
    let reader = ctx.read_log()?;
    if let Bound::Position(p) = bound {
        let next = reader.next_position()?;
        if p >= next {
            return Err(ReplayError::Usage(match next.checked_sub(1) {
                Some(last) => {
                    format!("--position {p} is past the log's head (its last position is {last})")
                }
                None => format!("--position {p}: the log is empty"),
            }));
        }
    }
    let result = as_of(&reader, &args.stream, bound)?;
    if ctx.json {
        out.report(&AsOfJson {
            stream_id: &result.stream_id,
            aggregate: result.aggregate.as_str(),
            as_of_position: match bound {
                Bound::Position(p) => Some(p),
                _ => None,
            },
            as_of_time: match bound {
                Bound::Time(t) => Some(timefmt::format_ms(t)),
                _ => None,
            },
            version: result.version,
            last_position: result.events.last().map(|e| e.position),
            state: &result.state.json,
            state_debug: &result.state.debug,
            events: result.events.iter().map(EventJson::of).collect(),
        })?;
        return Ok(Outcome::Clean);
    }
    let at = match bound {
        Bound::Head => "the head".to_owned(),
        Bound::Position(p) => format!("position {p}"),
        Bound::Time(t) => timefmt::format_ms(t),
    };
    out.line(format_args!(
        "{} as of {at}: version {}",
        result.stream_id, result.version
    ))?;
    out.line("state:")?;
    out.line(&result.state.pretty)?;
    out.line(format_args!("events ({}):", result.events.len()))?;
    for event in &result.events {
        out.line(format_args!("  {}", event_line(event)))?;
    }
    Ok(Outcome::Clean)
}
