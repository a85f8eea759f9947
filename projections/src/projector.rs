//! The projector contract and the batch step every runner shares.
//!
//! A projector is a pure fold: [`Projector::apply`] reads rows through the
//! tree, changes them in its in-memory caches and never reads a clock;
//! [`Projector::flush`] turns the caches into [`Writes`], which the worker
//! ([`crate::worker`]) commits together with the new checkpoint.

use crate::commit::Writes;
use crate::error::FoldError;
use crate::event::Decoded;
use crate::models;
use crate::store;

/// A fold from events to rows.
pub(crate) trait Projector: Send {
    /// Applies one event, staging its effects in memory.
    ///
    /// # Errors
    /// The event cannot be applied (undecodable payload, a history that
    /// contradicts itself, storage failure): the projector stops there.
    fn apply(&mut self, tree: &sled::Tree, event: &Decoded) -> Result<(), FoldError>;

    /// Moves every staged change into `out` as final values (puts and
    /// removals, never deltas).
    fn flush(&mut self, out: &mut Writes) -> Result<(), FoldError>;

    /// Forgets every staged change.
    fn discard(&mut self);
}

/// Names of every projector, in the order status reports them.
/// (The dashboard is not a projector of its own: its counters are kept by
/// `handoffs` and `fallout`, in the same batches as the rows they count.)
pub const PROJECTOR_NAMES: [&str; 5] = ["quotes", "orders", "handoffs", "fallout", "audit"];

/// Row layout version of a projector; bump it when a row's encoding
/// changes, and stored generations refill from position 0 on open.
pub(crate) fn layout_version(name: &str) -> u32 {
    match name {
        // 2: a quote row's price carries `price_book` (`QuotePriced` schema
        // version 2, ADR 0013).
        // 3: an acceptance carries the id of the order it captures.
        // 4: a quote row carries the customer's suspension.
        // 5: a quote row carries a failed customer check.
        // 6: a signature of another revision leaves the status as it was.
        // 7: a new price drops its revision's proposal and signature, a new
        // proposal of another document its signature; a late signature of
        // an earlier revision keeps a later one.
        // 8: an approval granted after the proposal or signature (an
        // account suspended since) leaves the quote proposed or signed.
        "quotes" => 8,
        // 2: a "local impossible" case the line holds offers the line's
        // actions.
        // 3: a case whose line or order was cancelled offers only the
        // handoff's resolution (`line_cancelled`; cases held and lines
        // cancelled by order).
        // 4: a case whose step may have taken effect offers no new attempt.
        "fallout" => 4,
        // 2: a cancelled order's active lines are cancelled too, with what
        // cannot be undone left uncompensated.
        "orders" => 2,
        "handoffs" | "audit" => 1,
        _ => 0,
    }
}

/// A fresh projector by name.
pub(crate) fn new_projector(name: &str) -> Option<Box<dyn Projector>> {
    Some(match name {
        "quotes" => Box::new(models::quotes::QuotesProjector::default()),
        "orders" => Box::new(models::orders::OrdersProjector::default()),
        "handoffs" => Box::new(models::handoffs::HandoffsProjector::default()),
        "fallout" => Box::new(models::fallout::FalloutProjector::default()),
        "audit" => Box::new(models::audit::AuditProjector::default()),
        _ => return None,
    })
}

/// Reads the checkpoint of a generation tree, as a projection error.
pub(crate) fn read_checkpoint(
    name: &str,
    tree: &sled::Tree,
) -> Result<u64, crate::ProjectionError> {
    store::checkpoint(tree).map_err(|e| crate::ProjectionError::Corrupt {
        projector: name.to_owned(),
        message: e.0,
    })
}
