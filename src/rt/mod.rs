//! Helpers for threads that must not block: a denormal guard, shared counters and the
//! process-wide monotonic clock.

mod ftz;
pub mod time;

pub use ftz::ScopedFtz;
