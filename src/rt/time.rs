//! One monotonic clock for the whole process.
//!
//! Input events, clock ticks, scheduled output and measurements are all stamped in
//! microseconds since a process-wide base [`Instant`], so times taken on different threads
//! compare directly. Reading it is a clock read and an atomic load: it does not allocate or
//! lock once the base is set (call [`init`] before a real-time thread first reads it).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static BASE: OnceLock<Instant> = OnceLock::new();

/// Sets the base if it is not set yet and returns it.
pub fn init() -> Instant {
    *BASE.get_or_init(Instant::now)
}

/// Microseconds since the base.
pub fn now_us() -> u64 {
    to_us(Instant::now())
}

/// An instant in microseconds since the base (0 for instants before it).
pub fn to_us(instant: Instant) -> u64 {
    instant.saturating_duration_since(init()).as_micros() as u64
}

/// The instant of a time in microseconds since the base.
pub fn from_us(us: u64) -> Instant {
    init() + Duration::from_micros(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_monotonic_and_round_trip() {
        let a = now_us();
        let b = now_us();
        assert!(b >= a);
        let t = from_us(a + 1234);
        assert_eq!(to_us(t), a + 1234);
    }
}
