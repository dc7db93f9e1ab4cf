//! What officers and machine clients do, as one layer that both the API
//! (`routes/`) and the console (`console/`) call, so that neither calls
//! the other: the checks, the audit and the store's write are the same
//! whichever way a decision comes in.

pub mod cash;
pub mod exceptions;
pub mod officers;
pub mod refunds;
