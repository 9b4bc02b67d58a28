//! A stand-in DAW for the jam tests and the timing benchmark: plays a planned list of MIDI
//! messages at their times through a JACK port and records what comes back, every time on
//! the process clock (`reprise::rt::time`).
#![allow(dead_code)]

use std::time::Duration;

use reprise::music::live::{MidiEvent, MidiIn, MidiOut};
use reprise::rt::time::now_us;

/// Sends each message at its time (sleep, then spin): `(time_us, bytes)` in time order.
/// Returns the times the sends happened. The calling thread asks for real-time priority
/// (where permitted) so that a loaded machine does not make the DAW itself late.
pub fn play(out: &mut MidiOut, plan: &[(u64, Vec<u8>)]) -> Vec<u64> {
    reprise::rt::priority::make_current_thread_realtime();
    let mut sent = Vec::with_capacity(plan.len());
    for (t, bytes) in plan {
        let now = now_us();
        if *t > now + 1_000 {
            std::thread::sleep(Duration::from_micros(t - now - 1_000));
        }
        while now_us() < *t {
            std::hint::spin_loop();
        }
        out.send(bytes).expect("the DAW port sends");
        sent.push(now_us());
    }
    sent
}

/// Everything that arrives on `input` until `until_us`.
pub fn collect(input: &mut MidiIn, until_us: u64) -> Vec<MidiEvent> {
    let mut got = Vec::new();
    while now_us() < until_us {
        match input.try_recv() {
            Some(e) => got.push(e),
            None => std::thread::sleep(Duration::from_micros(300)),
        }
    }
    while let Some(e) = input.try_recv() {
        got.push(e);
    }
    got
}

/// MIDI clock at `bpm` from `t0_us` (tick 0) for `ticks` ticks, Start just before tick 0.
pub fn clock_plan(t0_us: u64, bpm: f64, ticks: u64) -> Vec<(u64, Vec<u8>)> {
    let us_per_tick = 60e6 / (bpm * 24.0);
    let mut plan = vec![(t0_us - 1_000, vec![0xFA])];
    for k in 0..ticks {
        plan.push((t0_us + (k as f64 * us_per_tick) as u64, vec![0xF8]));
    }
    plan
}

/// Merges messages into a plan, keeping it in time order.
pub fn merge(plan: &mut Vec<(u64, Vec<u8>)>, more: impl IntoIterator<Item = (u64, Vec<u8>)>) {
    plan.extend(more);
    plan.sort_by_key(|(t, _)| *t);
}

/// The JACK period in microseconds of the server `scripts/with-jack` started.
pub fn jack_period_us() -> f64 {
    let var = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(d)
    };
    var("REPRISE_JACK_PERIOD", 256.0) / var("REPRISE_JACK_RATE", 48_000.0) * 1e6
}

/// The clock grid as the DAW really sent it: `(intended, actual)` send times of every clock
/// tick in `plan`.
pub fn tick_times(plan: &[(u64, Vec<u8>)], sent: &[u64]) -> Vec<(u64, u64)> {
    plan.iter()
        .zip(sent)
        .filter(|((_, bytes), _)| bytes.as_slice() == [0xF8])
        .map(|((t, _), s)| (*t, *s))
        .collect()
}
