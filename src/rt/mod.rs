//! Helpers for threads that must not block: a denormal guard, real-time priority and the
//! process-wide monotonic clock.

mod ftz;
pub mod priority;
pub mod time;

pub use ftz::ScopedFtz;
