//! Reconciliation: reading statements and registers (I/O, in [`profile`])
//! apart from matching their lines to payments (pure, in [`matching`]).

pub mod matching;
pub mod profile;
mod shipped;

pub use profile::{LineError, Profile, Profiles};
