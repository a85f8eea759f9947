//! Anti-corruption layers, dispatcher, callback inbox, reconciliation and
//! simulators of the external systems.
//!
//! Filled by the adapters issue.
