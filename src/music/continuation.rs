//! Continuing a seed: quantise it onto the model's grid, let the model hear it, sample whole
//! bars after it, and write a standard MIDI file with the seed followed by the continuation.

use midly::num::{u4, u7, u15, u24, u28};
use midly::{
    Format, Header, MetaMessage, MidiMessage, Smf, Timing, Track, TrackEvent, TrackEventKind,
};

use super::events::{Drawn, EventConstraints, EventGenerator, EventModel, Token};
use super::model::{Encoding, MusicError, MusicModel, NadeModel};
use super::sample::{Constraints, Generator, Sampling, Scale};
use super::seed::{Note, Seed};

/// How the scale lock is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleChoice {
    /// No lock.
    Off,
    /// The key that best fits the seed (no lock for an empty seed).
    Auto,
    /// This key.
    Fixed(Scale),
}

impl std::str::FromStr for ScaleChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<ScaleChoice, String> {
        match s {
            "off" | "none" => Ok(ScaleChoice::Off),
            "auto" => Ok(ScaleChoice::Auto),
            _ => Scale::parse(s).map(ScaleChoice::Fixed).ok_or_else(|| {
                format!("unknown scale {s:?}: use auto, off, or TONIC:major|minor (e.g. C:major, F#:minor)")
            }),
        }
    }
}

/// How many keys may sound at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VoiceLimit {
    /// As many as the seed sounds at most (none for an empty seed).
    #[default]
    Seed,
    /// No limit.
    Off,
    /// At most this many.
    Max(usize),
}

impl VoiceLimit {
    /// The explicit limit.
    pub fn max(self) -> Option<usize> {
        match self {
            VoiceLimit::Max(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the limit follows the seed.
    pub fn fit(self) -> bool {
        self == VoiceLimit::Seed
    }
}

impl std::str::FromStr for VoiceLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<VoiceLimit, String> {
        match s {
            "seed" => Ok(VoiceLimit::Seed),
            "off" | "none" => Ok(VoiceLimit::Off),
            _ => match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(VoiceLimit::Max(n)),
                _ => Err(format!(
                    "unknown voice limit {s:?}: use seed, off, or a number of voices (1 or more)"
                )),
            },
        }
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContinueOptions {
    /// Bars to add after the seed.
    pub bars: u32,
    /// Temperature and top-p.
    pub sampling: Sampling,
    /// Scale lock.
    pub scale: ScaleChoice,
    /// Most keys sounding at once (1 gives a monophonic melody).
    pub max_voices: Option<usize>,
    /// Without `max_voices`, keep to as many keys at once as the seed sounds at most (a melody
    /// stays a melody, four voices stay four).
    pub fit_voices: bool,
    /// Random seed: the same seed gives the same continuation.
    pub seed: u64,
}

impl Default for ContinueOptions {
    fn default() -> ContinueOptions {
        ContinueOptions {
            bars: 4,
            sampling: Sampling::default(),
            scale: ScaleChoice::Off,
            max_voices: None,
            fit_voices: true,
            seed: 0,
        }
    }
}

/// The generated notes, in the seed's ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct Continuation {
    /// Notes, sorted by start.
    pub notes: Vec<Note>,
    /// Tick where the continuation starts (the seed rounded up to whole bars).
    pub start_tick: u64,
    /// Tick where it ends.
    pub end_tick: u64,
    /// The scale lock used.
    pub scale: Option<Scale>,
    /// Frames generated.
    pub frames: usize,
}

/// The seed's mean velocity at each grid position of a bar (fallback: its overall mean, or 90).
fn velocity_profile(seed: &Seed, step: u64, frames_per_bar: usize) -> Vec<u8> {
    let mut sum = vec![0u32; frames_per_bar];
    let mut count = vec![0u32; frames_per_bar];
    for n in &seed.notes {
        let pos = ((n.start % seed.bar_ticks()) / step) as usize % frames_per_bar;
        sum[pos] += n.velocity as u32;
        count[pos] += 1;
    }
    let total: u32 = sum.iter().sum();
    let all: u32 = count.iter().sum();
    let fallback = total.checked_div(all).map_or(90, |v| v as u8);
    sum.iter()
        .zip(&count)
        .map(|(s, c)| if *c > 0 { (s / c) as u8 } else { fallback })
        .collect()
}

/// The channel most of the seed's pitched notes use (0 for an empty seed).
fn main_channel(seed: &Seed) -> u8 {
    let mut count = [0usize; 16];
    for n in &seed.notes {
        count[n.channel as usize] += 1;
    }
    (0..16u8)
        .max_by_key(|c| (count[*c as usize], std::cmp::Reverse(*c)))
        .unwrap_or(0)
}

/// The key lock `opts.scale` asks for.
fn scale_for(seed: &Seed, opts: &ContinueOptions) -> Option<Scale> {
    match opts.scale {
        ScaleChoice::Off => None,
        ScaleChoice::Fixed(s) => Some(s),
        ScaleChoice::Auto => Scale::detect(&pitch_class_weights(&seed.notes)),
    }
}

/// Pitch-class weights of notes: their total lengths in ticks.
pub fn pitch_class_weights(notes: &[Note]) -> [f64; 12] {
    let mut w = [0.0f64; 12];
    for n in notes {
        w[n.key as usize % 12] += (n.end - n.start) as f64;
    }
    w
}

/// The most notes sounding at once (a note ending where another starts does not overlap it).
pub fn max_voices(spans: impl IntoIterator<Item = (u64, u64)>) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for (start, end) in spans {
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // At equal times, ends come before starts.
    edges.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// The voice limit of `opts` for `seed`: the explicit one, else the seed's own most voices
/// when `fit_voices` is on (none for an empty seed).
fn voice_limit(seed: &Seed, opts: &ContinueOptions) -> Option<usize> {
    opts.max_voices.or_else(|| {
        let most = max_voices(seed.notes.iter().map(|n| (n.start, n.end)));
        (opts.fit_voices && most > 0).then_some(most)
    })
}

/// Continues `seed` by `opts.bars` bars.
pub fn continue_seed(
    model: &mut MusicModel,
    seed: &Seed,
    opts: &ContinueOptions,
) -> Result<Continuation, MusicError> {
    continue_seed_until(model, seed, opts, &mut || false)
}

/// As [`continue_seed`], asking `stop` before each frame or token; once it answers true the
/// work ends with [`MusicError::Stopped`] (a client gone, a time limit reached).
pub fn continue_seed_until(
    model: &mut MusicModel,
    seed: &Seed,
    opts: &ContinueOptions,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Continuation, MusicError> {
    match model {
        MusicModel::Nade(m) => continue_nade(m, seed, opts, stop),
        MusicModel::Events(m) => continue_events(m, seed, opts, stop),
    }
}

/// Continuation with an event model: the seed's notes on the model's grid become its tokens,
/// then tokens are drawn until the continuation's last bar is full.
fn continue_events(
    model: &mut EventModel,
    seed: &Seed,
    opts: &ContinueOptions,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Continuation, MusicError> {
    let cfg = model.config.clone();
    let (spq, ppq) = (cfg.steps_per_quarter as u64, seed.ppq.max(1) as u64);
    let to_step = |tick: u64| (tick * spq + ppq / 2) / ppq;
    let to_tick = |step: u64| (step * ppq + spq / 2) / spq;
    let start_tick = seed.padded_end();
    let seed_steps = to_step(start_tick);
    let bar_steps = to_step(seed.bar_ticks()).max(1);
    let total = opts.bars as u64 * bar_steps;
    let end_steps = seed_steps + total;
    let scale = scale_for(seed, opts);
    let constraints = EventConstraints {
        sampling: opts.sampling,
        scale,
        max_voices: voice_limit(seed, opts),
    };

    let mut grid: Vec<(u8, u64, u64)> = Vec::with_capacity(seed.notes.len());
    for n in &seed.notes {
        let s = to_step(n.start);
        let e = to_step(n.end).max(s + 1);
        match grid.iter_mut().find(|g| g.0 == n.key && g.1 == s) {
            Some(g) => g.2 = g.2.max(e - s),
            None => grid.push((n.key, s, e - s)),
        }
    }
    grid.sort_unstable_by_key(|g| (g.1, g.0));
    let mut tokens = vec![cfg.index(Token::Start)];
    cfg.encode(&grid, seed_steps, &mut tokens);

    if stop() {
        return Err(MusicError::Stopped);
    }
    let mut generator = EventGenerator::new(model, bar_steps, opts.seed);
    generator.prime(model, &tokens)?;

    let step_ticks = seed.step_ticks(cfg.steps_per_quarter);
    let frames_per_bar = (seed.bar_ticks() / step_ticks).max(1) as usize;
    let velocities = velocity_profile(seed, step_ticks, frames_per_bar);
    let channel = main_channel(seed);
    let per_step = constraints.max_voices.unwrap_or(cfg.keys).min(cfg.keys);
    // Room for every note a usual continuation holds, so that generating does not allocate.
    let mut notes = Vec::with_capacity((total as usize * per_step).min(1 << 16));
    loop {
        if stop() {
            return Err(MusicError::Stopped);
        }
        match generator.next(model, &constraints)? {
            Drawn::Shift { from, steps } if from + steps as u64 >= end_steps => break,
            Drawn::Note { key, start, steps } => {
                let to = (start + steps as u64).min(end_steps);
                let start = start_tick + to_tick(start - seed_steps);
                notes.push(Note {
                    start,
                    end: start_tick + to_tick(to - seed_steps),
                    key: cfg.low_note + key as u8,
                    velocity: velocities
                        [((start % seed.bar_ticks()) / step_ticks) as usize % frames_per_bar]
                        .max(1),
                    channel,
                });
            }
            _ => {}
        }
    }
    notes.sort_by_key(|n| (n.start, n.key));
    Ok(Continuation {
        notes,
        start_tick,
        end_tick: start_tick + to_tick(total),
        scale,
        frames: total as usize,
    })
}

/// Continuation with an LSTM-NADE model, one frame at a time.
fn continue_nade(
    model: &mut NadeModel,
    seed: &Seed,
    opts: &ContinueOptions,
    stop: &mut dyn FnMut() -> bool,
) -> Result<Continuation, MusicError> {
    let cfg = model.config;
    let step = seed.step_ticks(cfg.steps_per_quarter);
    let frames_per_bar = (seed.bar_ticks() / step).max(1) as usize;
    let start_tick = seed.padded_end();
    let seed_frames = (start_tick / step) as usize;
    let scale = scale_for(seed, opts);
    let constraints = Constraints {
        sampling: opts.sampling,
        scale,
        max_voices: voice_limit(seed, opts),
    };
    let velocities = velocity_profile(seed, step, frames_per_bar);
    let channel = main_channel(seed);
    let total = opts.bars as usize * frames_per_bar;

    let mut generator = Generator::new(model, opts.seed);
    for frame in seed.frames(cfg.steps_per_quarter, seed_frames) {
        if stop() {
            return Err(MusicError::Stopped);
        }
        generator.prime(&frame)?;
    }
    let mut notes = Vec::new();
    // Open notes: start frame per key.
    let mut open: Vec<Option<usize>> = vec![None; 128];
    let close = |notes: &mut Vec<Note>, key: usize, from: usize, to: usize| {
        notes.push(Note {
            start: start_tick + from as u64 * step,
            end: start_tick + to as u64 * step,
            key: key as u8,
            velocity: velocities[from % frames_per_bar].max(1),
            channel,
        });
    };
    let mut sounding = [false; 128];
    for f in 0..total {
        if stop() {
            return Err(MusicError::Stopped);
        }
        let frame = generator.next_frame(&constraints)?;
        sounding.fill(false);
        let mut struck = [false; 128];
        for (note, onset) in cfg.decode(frame) {
            sounding[note as usize] = true;
            struck[note as usize] = match cfg.encoding {
                Encoding::Roll => open[note as usize].is_none(),
                Encoding::OnsetRoll => onset,
            };
        }
        for key in 0..128 {
            if let Some(from) = open[key]
                && (!sounding[key] || struck[key])
            {
                close(&mut notes, key, from, f);
                open[key] = None;
            }
            if sounding[key] && open[key].is_none() {
                open[key] = Some(f);
            }
        }
    }
    for (key, from) in open.iter().enumerate() {
        if let Some(from) = from {
            close(&mut notes, key, *from, total);
        }
    }
    notes.sort_by_key(|n| (n.start, n.key));
    Ok(Continuation {
        notes,
        start_tick,
        end_tick: start_tick + total as u64 * step,
        scale,
        frames: total,
    })
}

/// A standard MIDI file (format 1) holding the seed's tempo and time signature, then the seed's
/// notes (unless `only_continuation`), the continuation, and the seed's drum track untouched.
/// With `only_continuation` the continuation starts at tick 0 and the drums are left out.
pub fn write_midi(seed: &Seed, cont: &Continuation, only_continuation: bool) -> Vec<u8> {
    let shift = if only_continuation {
        cont.start_tick
    } else {
        0
    };
    let end = cont.end_tick - shift;
    // (tick, order, kind): note-offs sort before note-ons at the same tick.
    let mut events: Vec<(u64, u8, TrackEventKind<'static>)> = Vec::new();
    let note_events =
        |events: &mut Vec<(u64, u8, TrackEventKind<'static>)>, n: &Note, shift: u64| {
            let ch = u4::new(n.channel & 15);
            let key = u7::new(n.key & 127);
            events.push((
                n.start - shift,
                1,
                TrackEventKind::Midi {
                    channel: ch,
                    message: MidiMessage::NoteOn {
                        key,
                        vel: u7::new(n.velocity.clamp(1, 127)),
                    },
                },
            ));
            events.push((
                n.end - shift,
                0,
                TrackEventKind::Midi {
                    channel: ch,
                    message: MidiMessage::NoteOff {
                        key,
                        vel: u7::new(64),
                    },
                },
            ));
        };
    for p in &seed.programs {
        if p.tick <= seed.padded_end() && (!only_continuation || p.tick == 0) {
            events.push((
                if only_continuation { 0 } else { p.tick },
                0,
                TrackEventKind::Midi {
                    channel: u4::new(p.bytes[0] & 15),
                    message: MidiMessage::ProgramChange {
                        program: u7::new(p.bytes[1] & 127),
                    },
                },
            ));
        }
    }
    if !only_continuation {
        for n in &seed.notes {
            note_events(&mut events, n, 0);
        }
    }
    for n in &cont.notes {
        note_events(&mut events, n, shift);
    }
    let mut drums: Vec<(u64, u8, TrackEventKind<'static>)> = Vec::new();
    if !only_continuation {
        for d in &seed.drums {
            if let Ok(midly::live::LiveEvent::Midi { channel, message }) =
                midly::live::LiveEvent::parse(&d.bytes[..d.len as usize])
            {
                drums.push((d.tick, 0, TrackEventKind::Midi { channel, message }));
            }
        }
    }
    let (num, den) = seed.time_signature;
    let tempo = |us: u32| TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us.min(0xFF_FFFF))));
    let mut meta = vec![
        (0, 0, tempo(seed.tempo_at(shift))),
        (
            0,
            0,
            TrackEventKind::Meta(MetaMessage::TimeSignature(
                num,
                den.trailing_zeros() as u8,
                24,
                8,
            )),
        ),
    ];
    if !only_continuation {
        meta.extend(seed.tempo_changes.iter().map(|&(t, us)| (t, 0, tempo(us))));
    }
    let mut tracks = vec![to_track(meta, end), to_track(events, end)];
    if !drums.is_empty() {
        tracks.push(to_track(drums, end.max(seed.end_tick)));
    }
    let smf = Smf {
        header: Header::new(
            Format::Parallel,
            Timing::Metrical(u15::new(seed.ppq.min(0x7FFF))),
        ),
        tracks,
    };
    let mut out = Vec::new();
    smf.write_std(&mut out)
        .expect("writing to memory cannot fail");
    out
}

fn to_track(mut events: Vec<(u64, u8, TrackEventKind<'static>)>, end: u64) -> Track<'static> {
    events.sort_by_key(|e| (e.0, e.1));
    let mut track = Vec::with_capacity(events.len() + 1);
    let mut last = 0u64;
    for (tick, _, kind) in events {
        track.push(TrackEvent {
            delta: u28::new((tick - last).min(0x0FFF_FFFF) as u32),
            kind,
        });
        last = tick;
    }
    track.push(TrackEvent {
        delta: u28::new(end.saturating_sub(last).min(0x0FFF_FFFF) as u32),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    track
}
