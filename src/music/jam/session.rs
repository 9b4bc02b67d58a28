//! The jam thread's logic: recording the call, deciding when it ends, turning the model's
//! continuation into a response, and feeding the scheduler ahead of time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

use super::clock::{ClockFollower, TICKS_PER_QUARTER, Transport};
use super::scheduler::{Scheduled, SchedulerShared};
use super::{CcMap, JamError, JamOptions};
use crate::music::continuation::{Continuation, ContinueOptions, continue_seed};
use crate::music::live::MidiEvent;
use crate::music::model::MusicModel;
use crate::music::sample::{Rng, Sampling};
use crate::music::seed::{Note, Seed};

/// Ticks per quarter note of the seeds and responses (clock ticks × 20).
pub const PPQ: u16 = 480;
const PPQ_PER_CLOCK: f64 = PPQ as f64 / TICKS_PER_QUARTER;
/// Events are pushed to the scheduler this long before they are due.
pub const HORIZON_US: u64 = 30_000;
/// The response starts at the first bar line at least this long after the call ended.
pub const LEAD_US: u64 = 50_000;

/// A note of the call, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CallNote {
    key: u8,
    velocity: u8,
    start: f64,
    end: Option<f64>,
}

/// Records the notes of a call and tells when it has ended.
#[derive(Debug)]
pub struct CallRecorder {
    notes: Vec<CallNote>,
    held: usize,
    last_release: f64,
}

impl Default for CallRecorder {
    fn default() -> Self {
        CallRecorder {
            notes: Vec::with_capacity(1024),
            held: 0,
            last_release: 0.0,
        }
    }
}

impl CallRecorder {
    /// A note starts at `pos` (clock ticks).
    pub fn note_on(&mut self, key: u8, velocity: u8, pos: f64) {
        self.notes.push(CallNote {
            key: key & 127,
            velocity: velocity.clamp(1, 127),
            start: pos,
            end: None,
        });
        self.held += 1;
    }

    /// A note stops at `pos`; notes the recorder never saw start are ignored.
    pub fn note_off(&mut self, key: u8, pos: f64) {
        if let Some(n) = self
            .notes
            .iter_mut()
            .find(|n| n.key == key & 127 && n.end.is_none())
        {
            n.end = Some(pos.max(n.start));
            self.held -= 1;
            self.last_release = pos;
        }
    }

    /// Whether a call is being recorded.
    pub fn is_recording(&self) -> bool {
        !self.notes.is_empty()
    }

    /// Whether the call has ended by silence at `pos`: no note held for `silence` ticks.
    pub fn silence_reached(&self, pos: f64, silence: f64) -> bool {
        self.is_recording() && self.held == 0 && pos - self.last_release >= silence
    }

    /// Forgets the call.
    pub fn clear(&mut self) {
        self.notes.clear();
        self.held = 0;
    }

    /// Takes the call as a seed whose tick 0 is the bar line the call started in; notes
    /// still held end at `pos`. `bar` is the bar length in clock ticks.
    pub fn take(&mut self, pos: f64, bar: f64, beats_per_bar: u8) -> Seed {
        let mut seed = Seed::empty(PPQ);
        seed.time_signature = (beats_per_bar, 4);
        let first = self
            .notes
            .iter()
            .map(|n| n.start)
            .fold(f64::INFINITY, f64::min);
        // A note played a little before a bar line belongs to that bar.
        let early = TICKS_PER_QUARTER / 8.0;
        let origin = if first.is_finite() {
            ((first + early) / bar).floor() * bar
        } else {
            0.0
        };
        let to_ticks = |p: f64| ((p - origin) * PPQ_PER_CLOCK).round().max(0.0) as u64;
        for n in self.notes.drain(..) {
            let start = to_ticks(n.start);
            let end = to_ticks(n.end.unwrap_or(pos)).max(start + 1);
            seed.notes.push(Note {
                start,
                end,
                key: n.key,
                velocity: n.velocity,
                channel: 0,
            });
        }
        seed.notes.sort_by_key(|n| (n.start, n.key));
        seed.end_tick = seed.notes.iter().map(|n| n.end).max().unwrap_or(0);
        self.held = 0;
        seed
    }
}

/// One note event of a response, in [`PPQ`] ticks from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseEvent {
    /// Tick from the response start.
    pub tick: u64,
    /// Note-on (else note-off).
    pub on: bool,
    /// MIDI key.
    pub key: u8,
    /// Velocity of a note-on.
    pub velocity: u8,
}

/// A generated response: note events in time order (note-offs before note-ons at the same
/// tick) over a whole number of bars.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Response {
    /// Events, sorted.
    pub events: Vec<ResponseEvent>,
    /// Length in [`PPQ`] ticks.
    pub length: u64,
}

impl Response {
    /// The continuation's notes, moved to start at tick 0.
    pub fn from_continuation(c: &Continuation) -> Response {
        let mut events = Vec::with_capacity(2 * c.notes.len());
        for n in &c.notes {
            let (start, end) = (n.start - c.start_tick, n.end - c.start_tick);
            events.push(ResponseEvent {
                tick: start,
                on: true,
                key: n.key,
                velocity: n.velocity,
            });
            events.push(ResponseEvent {
                tick: end,
                on: false,
                key: n.key,
                velocity: 0,
            });
        }
        events.sort_by_key(|e| (e.tick, e.on, e.key));
        Response {
            events,
            length: c.end_tick - c.start_tick,
        }
    }
}

/// What the player needs to turn ticks into times.
pub struct Timing<'a> {
    /// The grid.
    pub clock: &'a ClockFollower,
    /// Added to every output time (negative: earlier).
    pub offset_us: i64,
    /// Output channel (0..16).
    pub channel: u8,
}

impl Timing<'_> {
    fn time_of(&self, pos: f64) -> Option<u64> {
        let t = self.clock.time_at(pos)? as i64 + self.offset_us;
        Some(t.max(0) as u64)
    }
}

/// Plays a response into the scheduler's ring, a little ahead of time.
#[derive(Debug)]
pub struct Player {
    response: Option<Response>,
    /// Where the response starts, in clock ticks.
    start: f64,
    cursor: usize,
    repeat: u64,
    looping: bool,
    sounding: [bool; 128],
    generation: u32,
}

impl Default for Player {
    fn default() -> Self {
        Player {
            response: None,
            start: 0.0,
            cursor: 0,
            repeat: 0,
            looping: false,
            sounding: [false; 128],
            generation: 0,
        }
    }
}

impl Player {
    /// Whether a response is playing (or waiting for its start).
    pub fn is_playing(&self) -> bool {
        self.response.is_some()
    }

    /// Forgets the response (the caller cancels what was already queued).
    pub fn clear(&mut self) {
        self.response = None;
        self.sounding = [false; 128];
    }

    /// Plays `response` from clock position `start`, under scheduler generation
    /// `generation`. A response already playing is cut at `start`: its sounding notes get
    /// their note-offs there (nothing of it after `start` has been queued yet as long as
    /// `start` is more than [`HORIZON_US`] away).
    pub fn play(
        &mut self,
        response: Response,
        start: f64,
        looping: bool,
        generation: u32,
        timing: &Timing,
        ring: &mut rtrb::Producer<Scheduled>,
    ) {
        if self.response.is_some() {
            let t = timing.time_of(start).unwrap_or(0);
            for key in 0..128u8 {
                if std::mem::take(&mut self.sounding[key as usize]) {
                    let off = [0x80 | timing.channel, key, 0];
                    if let Some(e) = Scheduled::new(t, self.generation, &off) {
                        let _ = ring.push(e);
                    }
                }
            }
        }
        *self = Player {
            response: Some(response),
            start,
            cursor: 0,
            repeat: 0,
            looping,
            sounding: [false; 128],
            generation,
        };
    }

    /// Queues every event due before `now + HORIZON_US`. Returns false once a response that
    /// does not loop is over.
    pub fn pump(
        &mut self,
        now: u64,
        timing: &Timing,
        ring: &mut rtrb::Producer<Scheduled>,
    ) -> bool {
        let Some(response) = &self.response else {
            return false;
        };
        let horizon = now + HORIZON_US;
        let ticks = |t: u64| self.start + t as f64 / PPQ_PER_CLOCK;
        loop {
            let base = self.repeat * response.length;
            let Some(e) = response.events.get(self.cursor) else {
                let end = timing.time_of(ticks(base + response.length));
                if self.looping && response.length > 0 {
                    if end.is_some_and(|end| end <= horizon) {
                        self.repeat += 1;
                        self.cursor = 0;
                        continue;
                    }
                    return true;
                }
                if end.is_some_and(|end| end <= now) {
                    self.response = None;
                    return false;
                }
                return true;
            };
            let Some(t) = timing.time_of(ticks(base + e.tick)) else {
                return true;
            };
            if t > horizon || ring.is_full() {
                return true;
            }
            let status = if e.on { 0x90 } else { 0x80 } | timing.channel;
            let message = [status, e.key & 127, if e.on { e.velocity } else { 0 }];
            if let Some(s) = Scheduled::new(t, self.generation, &message) {
                let _ = ring.push(s);
            }
            self.sounding[e.key as usize & 127] = e.on;
            self.cursor += 1;
        }
    }
}

/// Listening, answering, or waiting for the DAW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum JamState {
    /// Waiting for or recording a call.
    Listening = 0,
    /// Playing a response.
    Answering = 1,
    /// The DAW's transport is stopped.
    Stopped = 2,
}

/// Counters and state for the status line, written by the jam thread.
#[derive(Debug, Default)]
pub struct JamStatus {
    /// Tempo × 1000.
    pub bpm_milli: AtomicU64,
    /// Current bar (from 0), −1 while stopped.
    pub bar: AtomicI64,
    /// [`JamState`] as a number.
    pub state: AtomicU8,
    /// Note-ons received.
    pub notes_in: AtomicU64,
    /// Note-ons ignored (played while answering without --overlap).
    pub ignored: AtomicU64,
    /// Input messages dropped because the input ring was full.
    pub dropped_in: AtomicU64,
    /// Responses generated.
    pub responses: AtomicU64,
    /// Microseconds from the end of the last call to its response ready to play.
    pub last_ready_us: AtomicU64,
    /// The longest such time so far.
    pub max_ready_us: AtomicU64,
    /// Microseconds from the end of the last call to the start of its response.
    pub last_lead_us: AtomicU64,
}

impl JamStatus {
    /// The state.
    pub fn state(&self) -> JamState {
        match self.state.load(Ordering::Relaxed) {
            0 => JamState::Listening,
            1 => JamState::Answering,
            _ => JamState::Stopped,
        }
    }
}

/// Settings the controllers can change while jamming.
#[derive(Clone, Copy, Debug)]
struct Live {
    temperature: f32,
    bars: u32,
    seed: u64,
}

/// The jam thread's state.
pub struct Session {
    model: MusicModel,
    opts: JamOptions,
    live: Live,
    clock: ClockFollower,
    recorder: CallRecorder,
    player: Player,
    held: [u8; 128],
    held_count: usize,
    end_call: bool,
    ring: rtrb::Producer<Scheduled>,
    shared: Arc<SchedulerShared>,
    status: Arc<JamStatus>,
}

impl Session {
    /// A session whose grid (without MIDI clock) starts at `origin_us`.
    pub fn new(
        model: MusicModel,
        opts: JamOptions,
        origin_us: u64,
        ring: rtrb::Producer<Scheduled>,
        shared: Arc<SchedulerShared>,
        status: Arc<JamStatus>,
    ) -> Session {
        let live = Live {
            temperature: opts.sampling.temperature,
            bars: opts.bars,
            seed: opts.seed,
        };
        Session {
            clock: ClockFollower::new(opts.bpm, origin_us),
            model,
            opts,
            live,
            recorder: CallRecorder::default(),
            player: Player::default(),
            held: [0; 128],
            held_count: 0,
            end_call: false,
            ring,
            shared,
            status,
        }
    }

    fn bar(&self) -> f64 {
        self.opts.beats_per_bar as f64 * TICKS_PER_QUARTER
    }

    /// Stops the response and everything it left sounding.
    fn silence(&mut self) {
        self.player.clear();
        self.shared.cancel();
    }

    /// Handles one input message.
    pub fn handle(&mut self, event: &MidiEvent) {
        let t = event.received_us;
        let bytes = event.bytes();
        if let Some(transport) = self.clock.on_message(bytes, t) {
            match transport {
                Transport::Start | Transport::Stop | Transport::Position(_) => {
                    self.silence();
                    self.recorder.clear();
                }
                Transport::Continue => {}
            }
            return;
        }
        match *bytes {
            [status, key, vel] if status & 0xF0 == 0x90 && vel > 0 => {
                self.status.notes_in.fetch_add(1, Ordering::Relaxed);
                let k = key as usize & 127;
                self.held[k] = self.held[k].saturating_add(1);
                self.held_count += 1;
                self.update_mute();
                if self.player.is_playing() && !self.opts.overlap {
                    if !self.opts.looping {
                        self.status.ignored.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    // A new call stops the loop.
                    self.silence();
                }
                if let Some(pos) = self.clock.position_at(t) {
                    self.recorder.note_on(key, vel, pos);
                }
            }
            [status, key, _] if status & 0xF0 == 0x80 || status & 0xF0 == 0x90 => {
                let k = key as usize & 127;
                if self.held[k] > 0 {
                    self.held[k] -= 1;
                    self.held_count -= 1;
                }
                self.update_mute();
                if let Some(pos) = self.clock.position_at(t) {
                    self.recorder.note_off(key, pos);
                }
            }
            [status, cc, value] if status & 0xF0 == 0xB0 => self.control(cc, value),
            _ => {}
        }
    }

    fn update_mute(&self) {
        if self.opts.mute_while_playing {
            self.shared
                .mute
                .store(self.held_count > 0, Ordering::Release);
        }
    }

    fn control(&mut self, cc: u8, value: u8) {
        let map: CcMap = self.opts.cc;
        let on = value >= 64;
        if Some(cc) == map.end_call && on {
            self.end_call = true;
        } else if Some(cc) == map.temperature {
            self.live.temperature = 0.2 + value as f32 / 127.0 * 1.8;
        } else if Some(cc) == map.bars {
            self.live.bars = 1 + (value as u32 * 7 + 63) / 127;
        } else if Some(cc) == map.variation && on {
            let mut rng = Rng::new(self.live.seed ^ crate::rt::time::now_us());
            self.live.seed = rng.next_u64();
        } else if Some(cc) == map.panic && on {
            self.silence();
            self.recorder.clear();
        }
    }

    /// Advances time: ends the call when due, generates the response and queues what is due
    /// soon. `now` is the process clock.
    pub fn poll(&mut self, now: u64) -> Result<(), JamError> {
        let pos = self.clock.position_at(now);
        let end_by_cc = std::mem::take(&mut self.end_call);
        if let Some(pos) = pos {
            let silence = self.opts.call_end_bars as f64 * self.bar();
            let listening = !self.player.is_playing() || self.opts.overlap;
            if listening
                && (self.recorder.silence_reached(pos, silence)
                    || (end_by_cc && self.recorder.is_recording()))
            {
                self.respond(now, pos)?;
            }
        }
        let timing = Timing {
            clock: &self.clock,
            offset_us: (self.opts.offset_ms * 1000.0) as i64,
            channel: self.opts.channel,
        };
        self.player.pump(now, &timing, &mut self.ring);
        self.publish(pos);
        Ok(())
    }

    fn respond(&mut self, call_end: u64, pos: f64) -> Result<(), JamError> {
        let bar = self.bar();
        let seed = self.recorder.take(pos, bar, self.opts.beats_per_bar);
        let opts = ContinueOptions {
            bars: self.live.bars,
            sampling: Sampling {
                temperature: self.live.temperature,
                top_p: self.opts.sampling.top_p,
            },
            scale: self.opts.scale,
            max_voices: self.opts.max_voices,
            fit_voices: self.opts.fit_voices,
            seed: self.live.seed,
        };
        let generating = crate::rt::time::now_us();
        let cont = continue_seed(&mut self.model, &seed, &opts)?;
        self.live.seed = self.live.seed.wrapping_add(1);
        let response = Response::from_continuation(&cont);
        // From the end of the call (seen by this poll, which runs every millisecond) to the
        // response ready to play.
        let ready_us = crate::rt::time::now_us().saturating_sub(generating);
        let ready = call_end + ready_us;
        self.status.last_ready_us.store(ready_us, Ordering::Relaxed);
        self.status
            .max_ready_us
            .fetch_max(ready_us, Ordering::Relaxed);
        self.status.responses.fetch_add(1, Ordering::Relaxed);
        // The first bar line the response can start on without being late.
        let earliest = (call_end + LEAD_US).max(ready + HORIZON_US + 2_000);
        let Some(earliest_pos) = self.clock.position_at(earliest) else {
            return Ok(());
        };
        let start = (earliest_pos / bar).ceil() * bar;
        if let Some(t) = self.clock.time_at(start) {
            self.status
                .last_lead_us
                .store(t.saturating_sub(call_end), Ordering::Relaxed);
        }
        if !self.opts.overlap && self.player.is_playing() {
            self.silence();
        }
        let generation = self.shared.generation.load(Ordering::Acquire);
        let timing = Timing {
            clock: &self.clock,
            offset_us: (self.opts.offset_ms * 1000.0) as i64,
            channel: self.opts.channel,
        };
        self.player.play(
            response,
            start,
            self.opts.looping,
            generation,
            &timing,
            &mut self.ring,
        );
        Ok(())
    }

    /// Records the input ring's drop count for the status line.
    pub fn status_dropped(&self, dropped: u64) {
        self.status.dropped_in.store(dropped, Ordering::Relaxed);
    }

    fn publish(&self, pos: Option<f64>) {
        let s = &self.status;
        s.bpm_milli
            .store((self.clock.bpm() * 1000.0) as u64, Ordering::Relaxed);
        s.bar.store(
            pos.map_or(-1, |p| (p / self.bar()).floor() as i64),
            Ordering::Relaxed,
        );
        let state = if pos.is_none() {
            JamState::Stopped
        } else if self.player.is_playing() {
            JamState::Answering
        } else {
            JamState::Listening
        };
        s.state.store(state as u8, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAR: f64 = 96.0;

    #[test]
    fn the_call_ends_after_the_silence_not_while_a_note_is_held() {
        let mut r = CallRecorder::default();
        assert!(!r.silence_reached(1000.0, BAR), "no call yet");
        r.note_on(60, 100, 10.0);
        r.note_on(64, 90, 12.0);
        r.note_off(60, 30.0);
        assert!(!r.silence_reached(500.0, BAR), "a note is still held");
        r.note_off(64, 40.0);
        assert!(!r.silence_reached(40.0 + BAR - 0.5, BAR));
        assert!(r.silence_reached(40.0 + BAR, BAR));
        // A note-off for a note never recorded changes nothing.
        r.note_off(70, 200.0);
        assert!(r.silence_reached(40.0 + BAR, BAR));
        r.clear();
        assert!(!r.is_recording());
    }

    #[test]
    fn the_call_is_quantised_relative_to_its_first_bar() {
        let mut r = CallRecorder::default();
        // Bar 3 starts at tick 288; the first note comes 2 ticks early.
        r.note_on(60, 100, 286.0);
        r.note_off(60, 300.0);
        r.note_on(62, 0, 312.0);
        let seed = r.take(400.0, BAR, 4);
        assert_eq!(seed.ppq, PPQ);
        assert_eq!(seed.time_signature, (4, 4));
        assert_eq!(seed.notes.len(), 2);
        assert_eq!(
            seed.notes[0].start, 0,
            "played early, counted on the bar line"
        );
        assert_eq!(seed.notes[0].end, 12 * 20);
        // Still held at the end: ends at tick 400; velocity 0 became 1.
        assert_eq!(
            (seed.notes[1].start, seed.notes[1].end),
            (24 * 20, 112 * 20)
        );
        assert_eq!(seed.notes[1].velocity, 1);
        assert_eq!(seed.padded_end(), 2 * 1920);
        assert!(!r.is_recording());
    }

    fn response() -> Response {
        let c = Continuation {
            notes: vec![
                Note {
                    start: 3840,
                    end: 4320,
                    key: 60,
                    velocity: 80,
                    channel: 0,
                },
                Note {
                    start: 4320,
                    end: 5760,
                    key: 64,
                    velocity: 70,
                    channel: 0,
                },
            ],
            start_tick: 3840,
            end_tick: 3840 + 1920,
            scale: None,
            frames: 16,
        };
        Response::from_continuation(&c)
    }

    #[test]
    fn responses_start_at_zero_with_offs_before_ons() {
        let r = response();
        assert_eq!(r.length, 1920);
        let seq: Vec<(u64, bool, u8)> = r.events.iter().map(|e| (e.tick, e.on, e.key)).collect();
        assert_eq!(
            seq,
            vec![
                (0, true, 60),
                (480, false, 60),
                (480, true, 64),
                (1920, false, 64)
            ]
        );
    }

    #[test]
    fn the_player_queues_ahead_in_time_order_and_loops() {
        // 120 BPM from time 0: a quarter (24 ticks) is 500 ms.
        let clock = ClockFollower::new(120.0, 0);
        let timing = Timing {
            clock: &clock,
            offset_us: -1_000,
            channel: 3,
        };
        let (mut prod, mut cons) = rtrb::RingBuffer::new(64);
        let mut p = Player::default();
        p.play(response(), 96.0, true, 7, &timing, &mut prod);
        // Nothing before the start (2 s) minus the horizon.
        assert!(p.pump(1_900_000, &timing, &mut prod));
        assert!(cons.pop().is_err());
        assert!(p.pump(2_000_000, &timing, &mut prod));
        let e = cons.pop().unwrap();
        assert_eq!(
            (e.time_us, e.generation, e.bytes()),
            (1_999_000, 7, &[0x93, 60, 80][..])
        );
        // Second time round: the bar after.
        assert!(p.pump(4_000_000, &timing, &mut prod));
        let times: Vec<u64> = std::iter::from_fn(|| cons.pop().ok())
            .map(|e| e.time_us)
            .collect();
        assert_eq!(times, vec![2_499_000, 2_499_000, 3_999_000, 3_999_000]);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_response_that_does_not_loop_ends_and_one_cut_short_stops_its_notes() {
        let clock = ClockFollower::new(120.0, 0);
        let timing = Timing {
            clock: &clock,
            offset_us: 0,
            channel: 0,
        };
        let (mut prod, mut cons) = rtrb::RingBuffer::new(64);
        let mut p = Player::default();
        p.play(response(), 0.0, false, 1, &timing, &mut prod);
        assert!(p.pump(600_000, &timing, &mut prod));
        // Note 64 sounds from 0.5 s; a new response at tick 48 (1 s) cuts it there.
        p.play(response(), 48.0, false, 1, &timing, &mut prod);
        let got: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| cons.pop().ok())
            .map(|e| (e.time_us, e.bytes().to_vec()))
            .collect();
        assert_eq!(got.last().unwrap(), &(1_000_000, vec![0x80, 64, 0]));
        assert!(!p.pump(100_000_000, &timing, &mut prod), "over");
        assert!(!p.is_playing());
    }
}
