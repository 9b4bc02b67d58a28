//! Offline rendering: timed MIDI events → stereo audio → WAV.
//!
//! [`render`] takes a [`MidiSong`] (from [`crate::music::midi_file`], or made in
//! memory) and streams interleaved stereo `f32` chunks to a sink; [`render_to_wav`]
//! writes them to a file. The instruments are a SoundFont, played by rustysynth
//! ([`soundfont`]), or the built-in synthesizer ([`builtin`]).
//!
//! Work is split over threads by MIDI channel: the channels are dealt into
//! [`PARTS`] parts of about equal note counts, each part has its own synthesizer
//! (reverb and chorus are linear, so a reverb per part sums to the reverb of the
//! whole), and the parts are summed in a fixed order. The partition does not depend
//! on the thread count, so one thread and several give the same samples.

pub mod builtin;
mod error;
mod reverb;
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

/// One part's synthesizer: it hears the events of its channels and renders stereo.
pub(crate) trait PartSynth: Send {
    fn event(&mut self, channel: u8, message: ChannelMessage);
    /// Renders `left.len()` frames (`left` and `right` have the same length),
    /// overwriting both.
    fn render(&mut self, left: &mut [f32], right: &mut [f32]);
}

/// A part: its synthesizer and its events as (frame, channel, message).
struct Part {
    synth: Box<dyn PartSynth>,
    events: Vec<(u64, u8, ChannelMessage)>,
    next: usize,
    frame: u64,
}

impl Part {
    /// Renders the next `left.len()` frames, applying events at their frames.
    fn render_chunk(&mut self, left: &mut [f32], right: &mut [f32]) {
        let end = self.frame + left.len() as u64;
        let mut done = 0usize;
        while let Some(&(at, channel, message)) = self.events.get(self.next) {
            if at >= end {
                break;
            }
            let upto = (at.saturating_sub(self.frame) as usize).max(done);
            if upto > done {
                self.synth
                    .render(&mut left[done..upto], &mut right[done..upto]);
                done = upto;
            }
            self.synth.event(channel, message);
            self.next += 1;
        }
        if done < left.len() {
            self.synth.render(&mut left[done..], &mut right[done..]);
        }
        self.frame = end;
    }
}

/// Deals channels into [`PARTS`] parts of about equal note counts (the drums count
/// double: many short voices each); returns each channel's part.
fn partition(song: &MidiSong) -> [usize; 16] {
    let mut notes = [0u64; 16];
    for e in &song.events {
        if let ChannelMessage::NoteOn { .. } = e.message {
            notes[e.channel as usize & 15] += if e.channel == 9 { 2 } else { 1 };
        }
    }
    let mut order: Vec<usize> = (0..16).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(notes[c]), c));
    let mut load = [0u64; PARTS];
    let mut part_of = [0usize; 16];
    for c in order {
        let lightest = (0..PARTS).min_by_key(|&p| (load[p], p)).unwrap_or(0);
        part_of[c] = lightest;
        load[lightest] += notes[c];
    }
    part_of
}

fn build_parts(
    song: &MidiSong,
    instruments: &Instruments,
    options: &RenderOptions,
) -> Result<Vec<Part>, RenderError> {
    let part_of = partition(song);
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
        parts[part_of[channel as usize]]
            .events
            .push((frame, channel, e.message));
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
    let mut mixer = Mixer::new(gain);
    let chunks = total.div_ceil(CHUNK_FRAMES as u64);
    let chunk_len = |k: u64| (total - k * CHUNK_FRAMES as u64).min(CHUNK_FRAMES as u64) as usize;

    if options.threads <= 1 {
        let mut bufs = vec![(vec![0f32; CHUNK_FRAMES], vec![0f32; CHUNK_FRAMES]); PARTS];
        for k in 0..chunks {
            let n = chunk_len(k);
            for (part, (l, r)) in parts.iter_mut().zip(bufs.iter_mut()) {
                part.render_chunk(&mut l[..n], &mut r[..n]);
            }
            mixer.mix(&bufs, n, sink)?;
            progress(k * CHUNK_FRAMES as u64 + n as u64, total);
        }
        return Ok(mixer.summary(options.sample_rate, total));
    }

    // Part 0 renders on this thread; the others on their own, handing chunks over
    // bounded channels and getting the buffers back for reuse.
    let (first, rest) = parts.split_at_mut(1);
    std::thread::scope(|scope| -> Result<RenderSummary, RenderError> {
        let mut links = Vec::new();
        for part in rest.iter_mut() {
            let (to_mixer, from_worker) = crossbeam_channel::bounded::<(Vec<f32>, Vec<f32>)>(4);
            let (to_worker, returned) = crossbeam_channel::bounded::<(Vec<f32>, Vec<f32>)>(8);
            for _ in 0..6 {
                let _ = to_worker.send((vec![0f32; CHUNK_FRAMES], vec![0f32; CHUNK_FRAMES]));
            }
            scope.spawn(move || {
                let _ftz = crate::rt::ScopedFtz::enable();
                for k in 0..chunks {
                    let n = chunk_len(k);
                    let Ok((mut l, mut r)) = returned.recv() else {
                        return;
                    };
                    part.render_chunk(&mut l[..n], &mut r[..n]);
                    if to_mixer.send((l, r)).is_err() {
                        return; // the mixer stopped (an error): stop too
                    }
                }
            });
            links.push((from_worker, to_worker));
        }
        let mut bufs = vec![(vec![0f32; CHUNK_FRAMES], vec![0f32; CHUNK_FRAMES])];
        for k in 0..chunks {
            let n = chunk_len(k);
            let (l, r) = &mut bufs[0];
            first[0].render_chunk(&mut l[..n], &mut r[..n]);
            bufs.truncate(1);
            for (from_worker, _) in &links {
                let chunk = from_worker
                    .recv()
                    .map_err(|_| RenderError::Worker("a render thread stopped".into()))?;
                bufs.push(chunk);
            }
            mixer.mix(&bufs, n, sink)?;
            for ((_, to_worker), chunk) in links.iter().zip(bufs.drain(1..)) {
                let _ = to_worker.send(chunk);
            }
            progress(k * CHUNK_FRAMES as u64 + n as u64, total);
        }
        Ok(mixer.summary(options.sample_rate, total))
    })
}

/// Sums the parts in order, applies the gain, interleaves and measures.
struct Mixer {
    gain: f32,
    out: Vec<f32>,
    peak: f32,
    sum_sq: f64,
}

impl Mixer {
    fn new(gain: f32) -> Self {
        Self {
            gain,
            out: Vec::with_capacity(CHUNK_FRAMES * 2),
            peak: 0.0,
            sum_sq: 0.0,
        }
    }

    fn mix(
        &mut self,
        parts: &[(Vec<f32>, Vec<f32>)],
        n: usize,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    ) -> Result<(), RenderError> {
        self.out.clear();
        let mut peak = self.peak;
        let mut sum_sq = 0.0f32;
        for i in 0..n {
            let mut l = 0.0f32;
            let mut r = 0.0f32;
            for (pl, pr) in parts {
                l += pl[i];
                r += pr[i];
            }
            l *= self.gain;
            r *= self.gain;
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
