//! `trace`: for one correlation id, the causal tree of commands and events
//! across quotes, orders and handoffs.
//!
//! Every event's causation id is the id of the command that produced it.
//! The fulfillment policy derives each command id it issues from the id of
//! the event that triggered it (`domain::policy`), so running the policy
//! again on each event of the correlation tells which event issued which
//! command. Commands nobody in the correlation issued (a user's, the
//! dispatcher's, a callback's) are the roots; policy commands that have no
//! event yet are shown as pending.

use std::collections::{BTreeMap, HashMap, HashSet};

use clap::Args;
use domain::idempotency::CommandKey;
use domain::ids::Timestamp;
use domain::policy::{react, IssuedCommand, PolicyInput};
use eventlog::RecordedEvent;
use serde::Serialize;

use crate::cli::{Ctx, Outcome};
use crate::error::ReplayError;
use crate::ids;
use crate::output::Out;
use crate::payload;
use crate::progress::Progress;
use crate::reader::LogReader;
use crate::render::event_line;
use crate::timefmt;

/// Arguments of `trace`.
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  oms-replay trace corr-42\n  oms-replay trace corr-42 --json | jq .roots"
)]
pub struct TraceArgs {
    /// The correlation id to trace.
    pub correlation: String,
}

/// A command in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandNode {
    /// The command id (the causation id of its events).
    pub command_id: String,
    /// Where the command came from: `policy Order::Capture`, or `external`.
    pub kind: String,
    /// The stream it was addressed to (or wrote to).
    pub stream_id: Option<String>,
    /// Position of the event whose reaction issued it.
    pub issued_by: Option<u64>,
    /// Indexes into [`Trace::events`] of the events it produced.
    pub events: Vec<usize>,
}

/// The causal tree of one correlation id.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The correlation id.
    pub correlation_id: String,
    /// Its events, in position order.
    pub events: Vec<RecordedEvent>,
    /// Every command: executed ones and policy commands still pending.
    pub commands: Vec<CommandNode>,
    /// Indexes of the commands nobody in the correlation issued.
    pub roots: Vec<usize>,
    /// For each event index, the commands its reaction issued.
    pub issued: HashMap<usize, Vec<usize>>,
}

fn label(command: &IssuedCommand) -> String {
    let (aggregate, debug) = match command {
        IssuedCommand::Order(c) => ("Order", format!("{c:?}")),
        IssuedCommand::Handoff(c) => ("Handoff", format!("{c:?}")),
    };
    let variant: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    format!("policy {aggregate}::{variant}")
}

/// Builds the causal tree of `correlation_id` from every event carrying it.
pub fn trace(
    reader: &LogReader,
    correlation_id: &str,
    progress: &Progress,
) -> Result<Trace, ReplayError> {
    let head = reader.next_position()?;
    progress.set_total(head);
    let mut events = Vec::new();
    for (i, record) in reader.records(0, head).enumerate() {
        let record = record?;
        if i % 1024 == 0 {
            progress.set(u64::try_from(i).unwrap_or(u64::MAX));
        }
        if record.correlation_id == correlation_id {
            events.push(record);
        }
    }
    progress.finish();
    // command id -> (issuing event index, target stream, label)
    let mut issued_by: HashMap<String, (usize, String, String)> = HashMap::new();
    let mut issue_order: Vec<String> = Vec::new();
    // The tenant's capabilities when the log was written are not in the
    // log: every reaction the policy can issue is considered, and only the
    // commands whose events the log holds are linked.
    let capabilities = domain::capability::Capabilities::all();
    for (index, record) in events.iter().enumerate() {
        let Ok(payload) = payload::decode(record) else {
            continue;
        };
        let event_id = record.event_id.to_string();
        let trigger = payload.as_trigger();
        let input = PolicyInput {
            event_id: &event_id,
            stream_id: &record.stream_id,
            recorded_at: Timestamp(record.recorded_at_ms),
            event: trigger,
            capabilities: &capabilities,
        };
        for command in react(&input) {
            let entry = (index, command.stream_id.clone(), label(&command.command));
            // The causation id its events carry: the command's key.
            let key = CommandKey::reaction(event_id.clone(), command.action.clone()).encode();
            if issued_by.insert(key.clone(), entry).is_none() {
                issue_order.push(key);
            }
        }
    }
    // Executed commands, in the order of their first event.
    let mut commands: Vec<CommandNode> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (index, record) in events.iter().enumerate() {
        let id = record
            .causation_id
            .clone()
            .unwrap_or_else(|| "(no causation id)".to_owned());
        let node = *by_id.entry(id.clone()).or_insert_with(|| {
            let issued = issued_by.get(&id);
            commands.push(CommandNode {
                command_id: id.clone(),
                kind: issued.map_or_else(|| "external".to_owned(), |i| i.2.clone()),
                stream_id: Some(record.stream_id.clone()),
                issued_by: issued.map(|i| events[i.0].position),
                events: Vec::new(),
            });
            commands.len() - 1
        });
        commands[node].events.push(index);
    }
    // Policy commands with no event (yet).
    for id in issue_order {
        if by_id.contains_key(&id) {
            continue;
        }
        if let Some((index, stream, kind)) = issued_by.get(&id) {
            commands.push(CommandNode {
                command_id: id.clone(),
                kind: format!("{kind} (pending: no event recorded)"),
                stream_id: Some(stream.clone()),
                issued_by: Some(events[*index].position),
                events: Vec::new(),
            });
            by_id.insert(id, commands.len() - 1);
        }
    }
    let mut issued: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        match issued_by.get(&command.command_id) {
            Some((event, _, _)) if by_id.get(&command.command_id) == Some(&i) => {
                issued.entry(*event).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    Ok(Trace {
        correlation_id: correlation_id.to_owned(),
        events,
        commands,
        roots,
        issued,
    })
}

#[derive(Serialize)]
struct CommandJson {
    command_id: String,
    kind: String,
    stream_id: Option<String>,
    issued_by_position: Option<u64>,
    events: Vec<EventNodeJson>,
}

#[derive(Serialize)]
struct EventNodeJson {
    position: u64,
    stream_id: String,
    stream_version: u64,
    event_type: String,
    event_id: String,
    recorded_at: String,
    caused: Vec<CommandJson>,
}

impl Trace {
    fn command_json(&self, index: usize, seen: &mut HashSet<usize>) -> Option<CommandJson> {
        if !seen.insert(index) {
            return None;
        }
        let command = self.commands.get(index)?;
        let events = command
            .events
            .iter()
            .filter_map(|&e| {
                let record = self.events.get(e)?;
                let caused = self
                    .issued
                    .get(&e)
                    .into_iter()
                    .flatten()
                    .filter_map(|&c| self.command_json(c, seen))
                    .collect();
                Some(EventNodeJson {
                    position: record.position,
                    stream_id: record.stream_id.clone(),
                    stream_version: record.stream_version,
                    event_type: record.event_type.clone(),
                    event_id: record.event_id.to_string(),
                    recorded_at: timefmt::format_ms(record.recorded_at_ms),
                    caused,
                })
            })
            .collect();
        Some(CommandJson {
            command_id: command.command_id.clone(),
            kind: command.kind.clone(),
            stream_id: command.stream_id.clone(),
            issued_by_position: command.issued_by,
            events,
        })
    }

    fn write_text(
        &self,
        index: usize,
        depth: usize,
        seen: &mut HashSet<usize>,
        lines: &mut Vec<String>,
    ) {
        if !seen.insert(index) {
            return;
        }
        let Some(command) = self.commands.get(index) else {
            return;
        };
        let pad = "  ".repeat(depth);
        lines.push(format!(
            "{pad}command {} [{}] -> {}",
            command.command_id,
            command.kind,
            command.stream_id.as_deref().unwrap_or("?")
        ));
        for &e in &command.events {
            if let Some(record) = self.events.get(e) {
                lines.push(format!("{pad}  {}", event_line(record)));
            }
            for &c in self.issued.get(&e).into_iter().flatten() {
                self.write_text(c, depth + 2, seen, lines);
            }
        }
    }

    /// The tree as indented text, one command or event per line.
    pub fn to_text(&self) -> Vec<String> {
        let mut by_aggregate: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &self.events {
            let kind = e.stream_id.split('-').next().unwrap_or("");
            *by_aggregate.entry(kind).or_default() += 1;
        }
        let mut lines = vec![format!(
            "correlation {}: {} events ({}), {} commands",
            self.correlation_id,
            self.events.len(),
            by_aggregate
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.commands.len()
        )];
        let mut seen = HashSet::new();
        for &root in &self.roots {
            self.write_text(root, 0, &mut seen, &mut lines);
        }
        lines
    }

    /// The tree as JSON: `{correlation_id, events, commands, roots: [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut seen = HashSet::new();
        let roots: Vec<CommandJson> = self
            .roots
            .iter()
            .filter_map(|&r| self.command_json(r, &mut seen))
            .collect();
        serde_json::json!({
            "correlation_id": self.correlation_id,
            "events": self.events.len(),
            "commands": self.commands.len(),
            "roots": roots,
        })
    }
}

/// Runs `trace`.
pub fn run(args: &TraceArgs, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    ids::check_correlation("CORRELATION", &args.correlation)?;
    let reader = ctx.read_log()?;
    let tree = trace(&reader, &args.correlation, &ctx.progress("trace", None))?;
    if tree.events.is_empty() {
        return Err(ReplayError::Usage(format!(
            "no event carries correlation id {}",
            ids::shown(&args.correlation)
        )));
    }
    if ctx.json {
        out.report(&tree.to_json())?;
    } else {
        for line in tree.to_text() {
            out.line(line)?;
        }
    }
    Ok(Outcome::Clean)
}
