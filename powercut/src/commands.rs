//! The command-path workload of the power-cut loop: clients create quotes,
//! add a line and send that line again unchanged (a command that changes
//! nothing, whose id is recorded alone), each command with its own command
//! id; after a cut every acknowledged command's effect is there, and the
//! same command sent again with its id is answered with its first outcome.

use std::collections::HashMap;
use std::path::Path;

use application::{CommandContext, CommandPath};
use domain::idempotency::CommandKey;
use domain::ids::{quote_stream, QuoteId, TenantId};
use domain::quote::QuoteCommand;
use domain::testing::fixtures::{at, customer, line};
use domain::QuoteDecider;
use eventlog::EventLog;

const TENANT: &str = "t1";

/// An acknowledged command as the child reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandAck {
    pub(crate) command_id: String,
    quote: String,
    kind: String,
    version: u64,
}

impl CommandAck {
    /// "CMD <command id> <quote> <create|line|unchanged> <version> END".
    pub(crate) fn parse(line: &str) -> Option<Self> {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["CMD", command_id, quote, kind, version, "END"] => Some(Self {
                command_id: (*command_id).to_owned(),
                quote: (*quote).to_owned(),
                kind: (*kind).to_owned(),
                version: version.parse().ok()?,
            }),
            _ => None,
        }
    }
}

fn command(quote: &str, kind: &str) -> QuoteCommand {
    match kind {
        "create" => QuoteCommand::Create {
            quote_id: QuoteId::new(quote),
            tenant_id: TenantId::new(TENANT),
            customer: customer(),
            catalog_version: "catalog-2024.06".into(),
            customer_suspension: None,
            catalog: domain::catalog::VersionStanding::Unmanaged,
            at: at(0),
        },
        "line" => QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        },
        _ => QuoteCommand::ChangeLine {
            line: line("l1"),
            at: at(2),
        },
    }
}

fn context(command_id: &str) -> CommandContext {
    CommandContext::new(
        CommandKey::client(&TenantId::new(TENANT), command_id),
        TENANT,
        "powercut",
    )
}

async fn execute(path: &CommandPath, quote: &str, kind: &str, command_id: &str) -> (u64, bool) {
    let stream = quote_stream(&QuoteId::new(quote));
    let outcome = path
        .execute::<QuoteDecider>(&stream, &command(quote, kind), &context(command_id))
        .await
        .unwrap_or_else(|e| panic!("{kind} {quote}: {e}"));
    (outcome.stream_version, outcome.deduplicated)
}

/// The child's work: four clients, each creating quotes, adding a line to
/// each and changing it to what it is, reporting every acknowledged
/// command. Runs until killed.
pub(crate) async fn drive(log: EventLog, cycle: &str) {
    let path = CommandPath::new(log);
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let path = path.clone();
            let cycle = cycle.to_owned();
            tokio::spawn(async move {
                for i in 0u64.. {
                    let quote = format!("q-c{cycle}-k{client}-{i}");
                    for kind in ["create", "line", "unchanged"] {
                        let command_id = format!("{kind}-{quote}");
                        let (version, _) = execute(&path, &quote, kind, &command_id).await;
                        println!("CMD {command_id} {quote} {kind} {version} END");
                    }
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
}

/// After a cut: every acknowledged command's stream reached its version,
/// and the command sent again with its id is answered with its first
/// outcome, writing nothing.
pub(crate) fn check(dir: &Path, acked: &HashMap<String, CommandAck>, ctx: &str) {
    if acked.is_empty() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let log = EventLog::open(crate::harness::config(dir))
            .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        let before = log.next_position();
        let path = CommandPath::new(log.clone());
        for ack in acked.values() {
            let (version, deduplicated) =
                execute(&path, &ack.quote, &ack.kind, &ack.command_id).await;
            assert!(
                deduplicated && version == ack.version,
                "{ctx}: {} acknowledged at version {} answered again with version {version} \
                 (deduplicated: {deduplicated})",
                ack.command_id,
                ack.version
            );
        }
        assert_eq!(log.next_position(), before, "{ctx}: a retry wrote events");
        log.close().await;
    });
}
