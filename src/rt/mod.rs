//! Helpers for threads that must not block: a denormal guard and shared counters.

mod ftz;

pub use ftz::ScopedFtz;
