//! Offline rendering: timed MIDI events → stereo audio → WAV.
//!
//! [`render`] takes a [`MidiSong`] (from [`crate::music::midi_file`], or made in
//! memory) and streams interleaved stereo `f32` chunks to a sink; [`render_to_wav`]
//! writes them to a file. The instruments are a SoundFont, played by rustysynth
//! ([`soundfont`]), or the built-in synthesizer ([`builtin`]).
//!
//! Work is split over threads by MIDI channel: the channels are dealt into
//! [`PARTS`] parts of about equal note counts, and each part renders its channels'
//! dry sound plus its reverb and chorus sends. The mixer sums the parts in a fixed
//! order and runs reverb and chorus once on the summed sends ([`effects`]). The
//! partition does not depend on the thread count, so one thread and several give
//! the same samples.

pub mod builtin;
mod effects;
mod error;
pub mod soundfont;

use std::path::Path;
use std::sync::Arc;

pub use error::RenderError;

use crate::audio::wav::{WavFormat, WavSink};
use crate::music::midi_file::{ChannelMessage, MidiSong};

/// Number of parts the channels are split into (one synthesizer each).
pub const PARTS: usize = 2;

/// Frames rendered per part between hand-overs to the mixer.
const CHUNK_FRAMES: usize = 4096;

/// The rates Reprise renders at.
pub const SUPPORTED_RATES: [u32; 2] = [44_100, 48_000];

/// The instruments that play the song.
#[derive(Clone)]
pub enum Instruments {
    /// The built-in synthesizer: synthesized voices for every General MIDI family and
    /// the drum kit on channel 10.
    BuiltIn,
    /// A SoundFont (SF2), played by rustysynth.
    SoundFont(Arc<rustysynth::SoundFont>),
}

/// Output level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    /// Gain in dB over the default level (which matches FluidSynth's default gain).
    GainDb(f32),
    /// Scale so that the loudest sample peaks at this level in dBFS.
    Normalize { peak_dbfs: f32 },
}

/// How to render.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Output rate in Hz: 44100 or 48000.
    pub sample_rate: u32,
    pub level: Level,
    /// Reverb (and, with a SoundFont, chorus).
    pub reverb: bool,
    /// Seconds rendered after the song's end, for releases and reverb to ring out.
    pub tail_seconds: f64,
    /// Threads to use, 1 to [`PARTS`]; the samples are the same for any count.
    pub threads: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            sample_rate: 44_100,
            level: Level::GainDb(0.0),
            reverb: true,
            tail_seconds: 2.0,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(PARTS),
        }
    }
}

impl RenderOptions {
    fn validate(&self) -> Result<(), RenderError> {
        if !SUPPORTED_RATES.contains(&self.sample_rate) {
            return Err(RenderError::InvalidParameter(format!(
                "sample rate {} Hz is not supported (use 44100 or 48000)",
                self.sample_rate
            )));
        }
        if !(self.tail_seconds.is_finite() && (0.0..=60.0).contains(&self.tail_seconds)) {
            return Err(RenderError::InvalidParameter(format!(
                "the tail must be 0 to 60 seconds (got {})",
                self.tail_seconds
            )));
        }
        let level_ok = match self.level {
            Level::GainDb(db) => db.is_finite() && (-96.0..=40.0).contains(&db),
            Level::Normalize { peak_dbfs } => {
                peak_dbfs.is_finite() && (-96.0..=0.0).contains(&peak_dbfs)
            }
        };
        if !level_ok {
            return Err(RenderError::InvalidParameter(format!(
                "level out of range: {:?} (gain -96 to 40 dB, normalize peak -96 to 0 dBFS)",
                self.level
            )));
        }
        if self.threads == 0 {
            return Err(RenderError::InvalidParameter(
                "threads must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What a render produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderSummary {
    pub sample_rate: u32,
    /// Stereo frames.
    pub frames: u64,
    /// Largest absolute sample after the gain, before any clipping (1.0 = full scale).
    pub peak: f32,
    /// RMS over both channels after the gain.
    pub rms: f32,
}

impl RenderSummary {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / self.sample_rate as f64
    }
}

/// Converts a linear level to dBFS (-inf for silence).
pub fn dbfs(level: f32) -> f32 {
    20.0 * level.log10()
}

/// What a part renders: dry stereo and the effect sends, each `len` frames.
pub(crate) struct Bus {
    pub(crate) left: Vec<f32>,
    pub(crate) right: Vec<f32>,
    /// Reverb send (mono, before the reverb's input gain).
    pub(crate) reverb: Vec<f32>,
    pub(crate) chorus_left: Vec<f32>,
    pub(crate) chorus_right: Vec<f32>,
}

impl Bus {
    fn new(len: usize) -> Self {
        Self {
            left: vec![0.0; len],
            right: vec![0.0; len],
            reverb: vec![0.0; len],
            chorus_left: vec![0.0; len],
            chorus_right: vec![0.0; len],
        }
    }

    /// The buses' slices for frames `range`.
    pub(crate) fn slices(&mut self, range: std::ops::Range<usize>) -> BusSlices<'_> {
        BusSlices {
            left: &mut self.left[range.clone()],
            right: &mut self.right[range.clone()],
            reverb: &mut self.reverb[range.clone()],
            chorus_left: &mut self.chorus_left[range.clone()],
            chorus_right: &mut self.chorus_right[range],
        }
    }
}

/// Slices of a [`Bus`], all the same length.
pub(crate) struct BusSlices<'a> {
    pub(crate) left: &'a mut [f32],
    pub(crate) right: &'a mut [f32],
    pub(crate) reverb: &'a mut [f32],
    pub(crate) chorus_left: &'a mut [f32],
    pub(crate) chorus_right: &'a mut [f32],
}

/// One part's synthesizer: it hears the events of its channels and renders them.
pub(crate) trait PartSynth: Send {
    fn event(&mut self, channel: u8, message: ChannelMessage);
    /// Renders `out.left.len()` frames, overwriting every slice of `out` (the sends
    /// are left at zero when effects are off).
    fn render(&mut self, out: BusSlices<'_>);
}

/// A part: its synthesizer and its events as (frame, channel, message).
struct Part {
    synth: Box<dyn PartSynth>,
    events: Vec<(u64, u8, ChannelMessage)>,
    next: usize,
    frame: u64,
}

impl Part {
    /// Renders the next `n` frames into `bus`, applying events at their frames.
    fn render_chunk(&mut self, bus: &mut Bus, n: usize) {
        let end = self.frame + n as u64;
        let mut done = 0usize;
        while let Some(&(at, channel, message)) = self.events.get(self.next) {
            if at >= end {
                break;
            }
            let upto = (at.saturating_sub(self.frame) as usize).max(done);
            if upto > done {
                self.synth.render(bus.slices(done..upto));
                done = upto;
            }
            self.synth.event(channel, message);
            self.next += 1;
        }
        if done < n {
            self.synth.render(bus.slices(done..n));
        }
        self.frame = end;
    }
}

/// Which part plays what. Notes are dealt by (channel, key), so one busy channel can
/// spread over parts: each part's synthesizer sees all of that channel's controller,
/// program and bend events, and every note of a key lands in the same part, so
/// note-offs find their notes. The drum channel stays whole (drum kits choke hi-hats
/// by exclusive class across keys).
struct Router {
    part_of_key: [[u8; 128]; 16],
    /// Parts that play any note of a channel.
    channel_in_part: [[bool; 16]; PARTS],
}

impl Router {
    /// Deals the song's notes into [`PARTS`] parts of about equal sounding time
    /// (longest first, each to the least loaded part; ties by channel and key, so the
    /// result depends only on the song).
    fn new(song: &MidiSong) -> Self {
        const RELEASE: f64 = 0.3;
        let mut load = vec![[0f64; 128]; 16];
        let mut started = vec![[None::<f64>; 128]; 16];
        for e in &song.events {
            let ch = e.channel as usize & 15;
            match e.message {
                ChannelMessage::NoteOn { key, .. } => {
                    let k = key as usize & 127;
                    if let Some(t0) = started[ch][k].replace(e.seconds) {
                        load[ch][k] += e.seconds - t0 + RELEASE;
                    }
                }
                ChannelMessage::NoteOff { key, .. } => {
                    let k = key as usize & 127;
                    if let Some(t0) = started[ch][k].take() {
                        load[ch][k] += e.seconds - t0 + RELEASE;
                    }
                }
                _ => {}
            }
        }
        for (ch, keys) in started.iter().enumerate() {
            for (k, t0) in keys.iter().enumerate() {
                if let Some(t0) = t0 {
                    load[ch][k] += song.duration - t0 + RELEASE;
                }
            }
        }
        // Units: (weight, channel, key); the drum channel is one unit (key 128).
        let mut units: Vec<(f64, usize, usize)> = Vec::new();
        for (ch, keys) in load.iter().enumerate() {
            if ch == DRUM_CHANNEL {
                units.push((keys.iter().sum(), ch, 128));
            } else {
                units.extend(
                    keys.iter()
                        .enumerate()
                        .filter(|(_, w)| **w > 0.0)
                        .map(|(k, w)| (*w, ch, k)),
                );
            }
        }
        units.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let mut part_load = [0f64; PARTS];
        let mut router = Router {
            part_of_key: [[0; 128]; 16],
            channel_in_part: [[false; 16]; PARTS],
        };
        for (weight, ch, key) in units {
            let part = (0..PARTS)
                .min_by(|&a, &b| part_load[a].total_cmp(&part_load[b]).then(a.cmp(&b)))
                .unwrap_or(0);
            part_load[part] += weight;
            router.channel_in_part[part][ch] = true;
            if key == 128 {
                router.part_of_key[ch] = [part as u8; 128];
            } else {
                router.part_of_key[ch][key] = part as u8;
            }
        }
        router
    }

    /// Calls `to(part)` for each part that must hear `message` on `channel`.
    fn route(&self, channel: usize, message: ChannelMessage, mut to: impl FnMut(usize)) {
        let key = match message {
            ChannelMessage::NoteOn { key, .. }
            | ChannelMessage::NoteOff { key, .. }
            | ChannelMessage::KeyPressure { key, .. } => Some(key as usize & 127),
            _ => None,
        };
        match key {
            Some(k) => to(self.part_of_key[channel][k] as usize),
            None => (0..PARTS)
                .filter(|&p| self.channel_in_part[p][channel])
                .for_each(to),
        }
    }
}

/// The General MIDI drum channel (channel 10).
const DRUM_CHANNEL: usize = 9;

fn build_parts(
    song: &MidiSong,
    instruments: &Instruments,
    options: &RenderOptions,
) -> Result<Vec<Part>, RenderError> {
    let router = Router::new(song);
    let rate = options.sample_rate as f64;
    let mut parts = Vec::with_capacity(PARTS);
    for _ in 0..PARTS {
        let synth: Box<dyn PartSynth> = match instruments {
            Instruments::BuiltIn => Box::new(builtin::BuiltinSynth::new(
                options.sample_rate,
                options.reverb,
            )),
            Instruments::SoundFont(font) => Box::new(soundfont::SoundFontSynth::new(
                font,
                options.sample_rate,
                options.reverb,
            )?),
        };
        parts.push(Part {
            synth,
            events: Vec::new(),
            next: 0,
            frame: 0,
        });
    }
    for e in &song.events {
        let frame = (e.seconds.max(0.0) * rate).round() as u64;
        let channel = e.channel & 15;
        router.route(channel as usize, e.message, |p| {
            parts[p].events.push((frame, channel, e.message))
        });
    }
    Ok(parts)
}

/// The linear gain for [`Level::GainDb`], with the instruments' calibration.
fn linear_gain(instruments: &Instruments, db: f32) -> f32 {
    let calibration = match instruments {
        Instruments::BuiltIn => builtin::LEVEL,
        Instruments::SoundFont(_) => soundfont::LEVEL,
    };
    calibration * 10f32.powf(db / 20.0)
}

/// Renders `song` and hands interleaved stereo chunks to `sink`, in order.
///
/// `progress` is called with (frames done, frames in all) after each chunk. With
/// [`Level::Normalize`] the whole song is rendered into memory first.
pub fn render(
    song: &MidiSong,
    instruments: &Instruments,
    options: &RenderOptions,
    sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RenderSummary, RenderError> {
    options.validate()?;
    if let Level::Normalize { peak_dbfs } = options.level {
        let mut all = Vec::new();
        let raw = render_raw(
            song,
            instruments,
            options,
            1.0,
            &mut |c| {
                all.extend_from_slice(c);
                Ok(())
            },
            progress,
        )?;
        let gain = if raw.peak > 0.0 {
            10f32.powf(peak_dbfs / 20.0) / raw.peak
        } else {
            1.0
        };
        for s in &mut all {
            *s *= gain;
        }
        for chunk in all.chunks(CHUNK_FRAMES * 2) {
            sink(chunk)?;
        }
        return Ok(RenderSummary {
            peak: raw.peak * gain,
            rms: raw.rms * gain,
            ..raw
        });
    }
    let Level::GainDb(db) = options.level else {
        unreachable!("normalize handled above")
    };
    render_raw(
        song,
        instruments,
        options,
        linear_gain(instruments, db),
        sink,
        progress,
    )
}

fn render_raw(
    song: &MidiSong,
    instruments: &Instruments,
    options: &RenderOptions,
    gain: f32,
    sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RenderSummary, RenderError> {
    let total = ((song.duration.max(0.0) + options.tail_seconds) * options.sample_rate as f64)
        .ceil() as u64;
    let mut parts = build_parts(song, instruments, options)?;
    // Denormals are flushed on every rendering thread alike, so results do not
    // depend on the thread count.
    let _ftz = crate::rt::ScopedFtz::enable();
    let mut mixer = Mixer::new(gain, options);
    let chunks = total.div_ceil(CHUNK_FRAMES as u64);
    let chunk_len = |k: u64| (total - k * CHUNK_FRAMES as u64).min(CHUNK_FRAMES as u64) as usize;

    if options.threads <= 1 {
        let mut buses: Vec<Bus> = (0..PARTS).map(|_| Bus::new(CHUNK_FRAMES)).collect();
        for k in 0..chunks {
            let n = chunk_len(k);
            for (part, bus) in parts.iter_mut().zip(buses.iter_mut()) {
                part.render_chunk(bus, n);
            }
            mixer.mix(&buses, n, sink)?;
            progress(k * CHUNK_FRAMES as u64 + n as u64, total);
        }
        return Ok(mixer.summary(options.sample_rate, total));
    }

    // Each part renders on its own thread and hands its buses over a bounded channel;
    // this thread mixes, runs the effects and writes, and hands the buses back.
    std::thread::scope(|scope| -> Result<RenderSummary, RenderError> {
        let mut links = Vec::new();
        for part in parts.iter_mut() {
            let (to_mixer, from_worker) = crossbeam_channel::bounded::<Bus>(4);
            let (to_worker, returned) = crossbeam_channel::bounded::<Bus>(8);
            for _ in 0..6 {
                let _ = to_worker.send(Bus::new(CHUNK_FRAMES));
            }
            scope.spawn(move || {
                let _ftz = crate::rt::ScopedFtz::enable();
                for k in 0..chunks {
                    let Ok(mut bus) = returned.recv() else {
                        return; // the mixer stopped (an error): stop too
                    };
                    part.render_chunk(&mut bus, chunk_len(k));
                    if to_mixer.send(bus).is_err() {
                        return;
                    }
                }
            });
            links.push((from_worker, to_worker));
        }
        let mut buses = Vec::with_capacity(PARTS);
        for k in 0..chunks {
            let n = chunk_len(k);
            for (from_worker, _) in &links {
                let bus = from_worker
                    .recv()
                    .map_err(|_| RenderError::Worker("a render thread stopped".into()))?;
                buses.push(bus);
            }
            mixer.mix(&buses, n, sink)?;
            for ((_, to_worker), bus) in links.iter().zip(buses.drain(..)) {
                let _ = to_worker.send(bus);
            }
            progress(k * CHUNK_FRAMES as u64 + n as u64, total);
        }
        Ok(mixer.summary(options.sample_rate, total))
    })
}

/// Sums the parts in order, adds reverb and chorus, applies the gain, interleaves and
/// measures.
struct Mixer {
    gain: f32,
    effects: Option<(effects::Reverb, effects::Chorus)>,
    sum: Bus,
    out: Vec<f32>,
    peak: f32,
    sum_sq: f64,
}

impl Mixer {
    fn new(gain: f32, options: &RenderOptions) -> Self {
        Self {
            gain,
            effects: options.reverb.then(|| {
                (
                    effects::Reverb::new(options.sample_rate),
                    effects::Chorus::new(options.sample_rate),
                )
            }),
            sum: Bus::new(CHUNK_FRAMES),
            out: Vec::with_capacity(CHUNK_FRAMES * 2),
            peak: 0.0,
            sum_sq: 0.0,
        }
    }

    fn mix(
        &mut self,
        parts: &[Bus],
        n: usize,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    ) -> Result<(), RenderError> {
        let sum = &mut self.sum;
        let with_effects = self.effects.is_some();
        for (p, part) in parts.iter().enumerate() {
            let add = |dst: &mut [f32], src: &[f32]| {
                if p == 0 {
                    dst[..n].copy_from_slice(&src[..n]);
                } else {
                    dst[..n]
                        .iter_mut()
                        .zip(&src[..n])
                        .for_each(|(d, s)| *d += s);
                }
            };
            add(&mut sum.left, &part.left);
            add(&mut sum.right, &part.right);
            if with_effects {
                add(&mut sum.reverb, &part.reverb);
                add(&mut sum.chorus_left, &part.chorus_left);
                add(&mut sum.chorus_right, &part.chorus_right);
            }
        }
        if let Some((reverb, chorus)) = &mut self.effects {
            chorus.process_add(
                &sum.chorus_left[..n],
                &sum.chorus_right[..n],
                &mut sum.left[..n],
                &mut sum.right[..n],
            );
            reverb.process_add(&sum.reverb[..n], &mut sum.left[..n], &mut sum.right[..n]);
        }
        self.out.clear();
        let mut peak = self.peak;
        let mut sum_sq = 0.0f32;
        for (&l, &r) in sum.left[..n].iter().zip(&sum.right[..n]) {
            let (l, r) = (l * self.gain, r * self.gain);
            peak = peak.max(l.abs()).max(r.abs());
            sum_sq += l * l + r * r;
            self.out.push(l);
            self.out.push(r);
        }
        self.peak = peak;
        self.sum_sq += sum_sq as f64;
        sink(&self.out)
    }

    fn summary(&self, sample_rate: u32, frames: u64) -> RenderSummary {
        RenderSummary {
            sample_rate,
            frames,
            peak: self.peak,
            rms: if frames == 0 {
                0.0
            } else {
                (self.sum_sq / (2 * frames) as f64).sqrt() as f32
            },
        }
    }
}

/// Renders `song` into memory as interleaved stereo.
pub fn render_to_vec(
    song: &MidiSong,
    instruments: &Instruments,
    options: &RenderOptions,
) -> Result<(Vec<f32>, RenderSummary), RenderError> {
    let mut all = Vec::new();
    let summary = render(
        song,
        instruments,
        options,
        &mut |c| {
            all.extend_from_slice(c);
            Ok(())
        },
        &mut |_, _| {},
    )?;
    Ok((all, summary))
}

/// Renders `song` to a stereo WAV file.
pub fn render_to_wav(
    song: &MidiSong,
    instruments: &Instruments,
    options: &RenderOptions,
    path: &Path,
    format: WavFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RenderSummary, RenderError> {
    options.validate()?;
    let mut wav = WavSink::create_with_channels(path, options.sample_rate, 2, format)?;
    let summary = render(
        song,
        instruments,
        options,
        &mut |chunk| wav.write(chunk).map_err(RenderError::from),
        progress,
    )?;
    wav.finalize()?;
    Ok(summary)
}
