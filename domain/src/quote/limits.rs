//! The quote's size limits: what one line may carry. The decider refuses
//! a line beyond them (`invalid_quantity`, `invalid_term`,
//! `too_many_options`); the API states
//! them in its input errors.

/// The most units one line orders. It keeps every quantity inside a
/// GraphQL `Int` (signed 32 bits), which client code generators map to a
/// 32-bit integer.
pub const MAX_QUANTITY: u32 = 1_000_000;

/// The longest contract term of a line, in months (ten years).
pub const MAX_TERM_MONTHS: u32 = 120;

/// The most configured options one line carries.
pub const MAX_OPTIONS_PER_LINE: usize = 32;
