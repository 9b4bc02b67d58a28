//! Following a DAW's MIDI clock: tempo, song position and transport.
//!
//! Positions are in clock ticks (24 per quarter note) as `f64`; times in microseconds on
//! the process clock ([`crate::rt::time`]). While the DAW sends clock, tempo and phase come
//! from a least-squares line through the last [`HISTORY`] ticks, which averages out the
//! arrival jitter of single ticks (a JACK period, for example). Without clock the grid runs
//! at a fixed tempo from a given origin.

/// MIDI clock ticks per quarter note.
pub const TICKS_PER_QUARTER: f64 = 24.0;
/// Ticks fitted for tempo and phase (two beats).
pub const HISTORY: usize = 48;

/// Slowest and fastest tempo believed, in microseconds per tick (20 and 400 BPM).
const SLOWEST_US_PER_TICK: f64 = 60e6 / (20.0 * TICKS_PER_QUARTER);
const FASTEST_US_PER_TICK: f64 = 60e6 / (400.0 * TICKS_PER_QUARTER);

/// Transport messages the follower reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Start (0xFA): from the beginning.
    Start,
    /// Continue (0xFB): from the current song position.
    Continue,
    /// Stop (0xFC).
    Stop,
    /// Song Position Pointer (0xF2), in ticks.
    Position(u64),
}

/// Tempo and bar position from MIDI clock, or from a fixed tempo without it.
#[derive(Clone, Debug)]
pub struct ClockFollower {
    us_per_tick: f64,
    /// Time of position 0 on the line position → time.
    intercept_us: f64,
    external: bool,
    running: bool,
    /// Song position (ticks) of the next clock tick.
    next_tick: u64,
    /// True between Start/Continue/SPP and the first tick that follows.
    awaiting_tick: bool,
    last_tick_us: Option<u64>,
    hist_pos: [f64; HISTORY],
    hist_time: [f64; HISTORY],
    hist_len: usize,
    hist_head: usize,
}

impl ClockFollower {
    /// A grid at `bpm` whose position 0 is at `origin_us`, until MIDI clock arrives.
    pub fn new(bpm: f64, origin_us: u64) -> ClockFollower {
        let us_per_tick =
            (60e6 / (bpm * TICKS_PER_QUARTER)).clamp(FASTEST_US_PER_TICK, SLOWEST_US_PER_TICK);
        ClockFollower {
            us_per_tick,
            intercept_us: origin_us as f64,
            external: false,
            running: true,
            next_tick: 0,
            awaiting_tick: false,
            last_tick_us: None,
            hist_pos: [0.0; HISTORY],
            hist_time: [0.0; HISTORY],
            hist_len: 0,
            hist_head: 0,
        }
    }

    /// Whether MIDI clock or transport messages have been seen.
    pub fn is_external(&self) -> bool {
        self.external
    }

    /// Whether the grid is moving (always without external clock).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Tempo in quarter notes per minute.
    pub fn bpm(&self) -> f64 {
        60e6 / (self.us_per_tick * TICKS_PER_QUARTER)
    }

    /// Microseconds per tick.
    pub fn us_per_tick(&self) -> f64 {
        self.us_per_tick
    }

    /// Feeds one message received at `time_us`; returns the transport change it makes.
    /// Messages other than clock, transport and song position are ignored.
    pub fn on_message(&mut self, bytes: &[u8], time_us: u64) -> Option<Transport> {
        match *bytes.first()? {
            0xF8 => {
                self.external = true;
                self.tick(time_us);
                None
            }
            0xFA => {
                self.external = true;
                self.running = true;
                self.next_tick = 0;
                self.resync();
                Some(Transport::Start)
            }
            0xFB => {
                self.external = true;
                self.running = true;
                self.resync();
                Some(Transport::Continue)
            }
            0xFC => {
                self.external = true;
                self.running = false;
                Some(Transport::Stop)
            }
            0xF2 if bytes.len() == 3 => {
                self.external = true;
                let sixteenths = (bytes[1] as u64 & 0x7F) | ((bytes[2] as u64 & 0x7F) << 7);
                self.next_tick = sixteenths * 6;
                self.resync();
                Some(Transport::Position(self.next_tick))
            }
            _ => None,
        }
    }

    fn resync(&mut self) {
        self.awaiting_tick = true;
        self.hist_len = 0;
        self.hist_head = 0;
    }

    fn tick(&mut self, time_us: u64) {
        let previous = self.last_tick_us.replace(time_us);
        if !self.running {
            // Stopped DAWs often keep sending clock: follow the tempo only.
            if let Some(prev) = previous {
                let interval = time_us.saturating_sub(prev) as f64;
                if (FASTEST_US_PER_TICK..=SLOWEST_US_PER_TICK).contains(&interval) {
                    self.us_per_tick += 0.1 * (interval - self.us_per_tick);
                }
            }
            return;
        }
        let pos = self.next_tick as f64;
        self.next_tick += 1;
        self.awaiting_tick = false;
        self.hist_pos[self.hist_head] = pos;
        self.hist_time[self.hist_head] = time_us as f64;
        self.hist_head = (self.hist_head + 1) % HISTORY;
        self.hist_len = (self.hist_len + 1).min(HISTORY);
        self.fit();
    }

    /// Least-squares line time = intercept + slope · position through the history.
    fn fit(&mut self) {
        let n = self.hist_len;
        let (pos, time) = (&self.hist_pos[..n], &self.hist_time[..n]);
        // Centre on the first point for precision.
        let (p0, t0) = (pos[0], time[0]);
        if n >= 8 {
            let mean_p = pos.iter().map(|p| p - p0).sum::<f64>() / n as f64;
            let mean_t = time.iter().map(|t| t - t0).sum::<f64>() / n as f64;
            let (mut sxy, mut sxx) = (0.0, 0.0);
            for (p, t) in pos.iter().zip(time) {
                let dp = p - p0 - mean_p;
                sxy += dp * (t - t0 - mean_t);
                sxx += dp * dp;
            }
            if sxx > 0.0 {
                let slope = (sxy / sxx).clamp(FASTEST_US_PER_TICK, SLOWEST_US_PER_TICK);
                self.us_per_tick = slope;
                self.intercept_us = t0 + mean_t - slope * (p0 + mean_p);
                return;
            }
        }
        // Too few ticks for a line: anchor the last one at the tempo known so far.
        let last = (self.hist_head + HISTORY - 1) % HISTORY;
        if n >= 2 {
            let prev = (self.hist_head + HISTORY - 2) % HISTORY;
            let interval = self.hist_time[last] - self.hist_time[prev];
            if (FASTEST_US_PER_TICK..=SLOWEST_US_PER_TICK).contains(&interval) {
                self.us_per_tick += 0.3 * (interval - self.us_per_tick);
            }
        }
        self.intercept_us = self.hist_time[last] - self.us_per_tick * self.hist_pos[last];
    }

    /// The position at a time, or `None` while the DAW is stopped (or has just started and
    /// sent no tick yet).
    pub fn position_at(&self, time_us: u64) -> Option<f64> {
        if !self.running || self.awaiting_tick {
            return None;
        }
        Some((time_us as f64 - self.intercept_us) / self.us_per_tick)
    }

    /// The time of a position, or `None` while the grid is not moving.
    pub fn time_at(&self, position: f64) -> Option<u64> {
        if !self.running || self.awaiting_tick {
            return None;
        }
        Some((self.intercept_us + position * self.us_per_tick).max(0.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US_120: f64 = 500_000.0 / 24.0;

    fn feed_ticks(c: &mut ClockFollower, from_us: f64, us_per_tick: f64, n: usize, jitter: u64) {
        for i in 0..n {
            // Deterministic jitter in [0, jitter).
            let j = if jitter > 0 {
                (i as u64 * 7919) % jitter
            } else {
                0
            };
            c.on_message(&[0xF8], (from_us + i as f64 * us_per_tick) as u64 + j);
        }
    }

    #[test]
    fn without_clock_the_grid_runs_at_the_given_tempo() {
        let c = ClockFollower::new(120.0, 1_000_000);
        assert!(!c.is_external());
        assert!((c.bpm() - 120.0).abs() < 1e-9);
        assert_eq!(c.position_at(1_000_000), Some(0.0));
        // One bar of 4/4 at 120 BPM is 2 s = 96 ticks.
        assert!((c.position_at(3_000_000).unwrap() - 96.0).abs() < 1e-6);
        assert_eq!(c.time_at(96.0), Some(3_000_000));
    }

    #[test]
    fn tempo_and_phase_follow_jittery_ticks() {
        let mut c = ClockFollower::new(90.0, 0);
        assert_eq!(c.on_message(&[0xFA], 10_000), Some(Transport::Start));
        assert_eq!(
            c.position_at(10_000),
            None,
            "no position before the first tick"
        );
        // 140 BPM with up to 5.3 ms of arrival jitter (a JACK period).
        let us = 60e6 / (140.0 * 24.0);
        feed_ticks(&mut c, 20_000.0, us, 200, 5_333);
        assert!((c.bpm() - 140.0).abs() < 1.0, "bpm {}", c.bpm());
        // Bar 2 of 4/4 (tick 192) lies where the DAW put it, within a couple of ms
        // (the jitter averages 2.7 ms late).
        let want = 20_000.0 + 192.0 * us + 2_666.0;
        let got = c.time_at(192.0).unwrap() as f64;
        assert!((got - want).abs() < 1_500.0, "{got} vs {want}");
    }

    #[test]
    fn a_tempo_change_is_followed_within_two_beats() {
        let mut c = ClockFollower::new(120.0, 0);
        c.on_message(&[0xFA], 0);
        feed_ticks(&mut c, 1_000.0, US_120, 96, 0);
        assert!((c.bpm() - 120.0).abs() < 0.01);
        // From tick 96 on, 140 BPM.
        let us_140 = 60e6 / (140.0 * 24.0);
        let from = 1_000.0 + 96.0 * US_120;
        feed_ticks(&mut c, from, us_140, 48, 0);
        assert!((c.bpm() - 140.0).abs() < 0.01, "{}", c.bpm());
        // The next bar line (tick 192) is where the new tempo puts it.
        let want = from + 96.0 * us_140;
        assert!((c.time_at(192.0).unwrap() as f64 - want).abs() < 2.0);
    }

    #[test]
    fn start_resets_to_bar_zero_and_stop_freezes() {
        let mut c = ClockFollower::new(120.0, 0);
        c.on_message(&[0xFA], 0);
        feed_ticks(&mut c, 1_000.0, US_120, 100, 0);
        assert!((c.position_at(1_000 + (99.0 * US_120) as u64).unwrap() - 99.0).abs() < 0.01);
        assert_eq!(c.on_message(&[0xFC], 3_000_000), Some(Transport::Stop));
        assert_eq!(c.position_at(3_000_000), None);
        assert_eq!(c.time_at(0.0), None);
        // A new Start: the next tick is position 0 again.
        c.on_message(&[0xFA], 5_000_000);
        c.on_message(&[0xF8], 5_010_000);
        assert!(c.position_at(5_010_000).unwrap().abs() < 1e-6);
        assert!((c.bpm() - 120.0).abs() < 0.5);
    }

    #[test]
    fn song_position_pointer_and_continue_move_the_position() {
        let mut c = ClockFollower::new(120.0, 0);
        c.on_message(&[0xFA], 0);
        feed_ticks(&mut c, 0.0, US_120, 10, 0);
        c.on_message(&[0xFC], 300_000);
        // Position 32 sixteenths = two bars of 4/4 = 192 ticks (LSB first).
        assert_eq!(
            c.on_message(&[0xF2, 32, 0], 400_000),
            Some(Transport::Position(192))
        );
        assert_eq!(c.on_message(&[0xFB], 500_000), Some(Transport::Continue));
        c.on_message(&[0xF8], 600_000);
        assert!((c.position_at(600_000).unwrap() - 192.0).abs() < 1e-6);
        // A large pointer: 0x7F + 0x7F·128 sixteenths.
        assert_eq!(
            c.on_message(&[0xF2, 0x7F, 0x7F], 700_000),
            Some(Transport::Position(16_383 * 6))
        );
    }

    #[test]
    fn tempo_is_followed_while_stopped_and_junk_is_ignored() {
        let mut c = ClockFollower::new(120.0, 0);
        c.on_message(&[0xFC], 0);
        feed_ticks(&mut c, 0.0, 60e6 / (100.0 * 24.0), 100, 0);
        assert!((c.bpm() - 100.0).abs() < 0.5, "{}", c.bpm());
        assert_eq!(c.on_message(&[], 0), None);
        assert_eq!(c.on_message(&[0xF2, 1], 0), None);
        assert_eq!(c.on_message(&[0x90, 60, 100], 0), None);
        // A tick interval of an hour is not a tempo.
        c.on_message(&[0xF8], 3_600_000_000);
        assert!((c.bpm() - 100.0).abs() < 0.5);
    }
}
