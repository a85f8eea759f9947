/*!
Replay tooling for audit and incident recovery: the library behind the
`oms-replay` command line.

It works on the data directory of a stopped server (a running server holds
the directory's lock; the tool then says so and names the admin GraphQL
mutation that does the same job online).

| subcommand | module | job |
| --- | --- | --- |
| `verify` | [`commands::verify`] | every hash, the chain, positions, index, heads; digests |
| `dump` | [`commands::dump`] | events as JSON lines with decoded payloads, filtered |
| `as-of` | [`commands::as_of`] | an aggregate's state at a position or time |
| `trace` | [`commands::trace`] | the causal tree of one correlation id |
| `consumers` | [`commands::consumers`] | checkpoints, lag, last errors |
| `rebuild` | [`commands::rebuild`] | projections rebuilt from position 0 |
| `reset-consumer` | [`commands::reset_consumer`] | move a checkpoint; recovery mode for side effects |
| `export` / `import` | [`commands::export`], [`commands::import`] | the portable, verifiable file |
| `stats` | [`commands::stats`] | counts per type, tenant, day; bytes |

Errors are one type, [`ReplayError`], mapped to exit codes once, in
[`cli`].
*/
#![forbid(unsafe_code)]

pub use error::ReplayError;

pub mod allocator;
pub mod cli;
pub mod commands;
pub mod datadir;
pub mod error;
pub mod export_format;
pub mod ids;
pub mod interrupt;
pub mod output;
pub mod payload;
pub mod progress;
pub mod projection;
pub mod reader;
pub mod render;
pub mod timefmt;
