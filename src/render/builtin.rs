//! The built-in synthesizer: no samples, one synthesized voice per General MIDI
//! program family (16 families of 8 programs) and a synthesized drum kit on
//! channel 10.
//!
//! A voice is an oscillator (band-limited saw or square, sine, drawbar
//! organ, two-operator FM, or noise), a two-pole low-pass filter whose cutoff follows
//! the note and decays with its own envelope, and an attack–decay–sustain–release
//! amplitude envelope. Channels honour program changes, velocity, volume (CC7),
//! expression (CC11), pan (CC10), sustain pedal (CC64), reverb and chorus sends
//! (CC91, CC93; the effects are shared, see [`super::effects`]), pitch
//! bend with its range (RPN 0), and all-notes/sound-off.

use std::f32::consts::{PI, TAU};

use super::{BusSlices, PartSynth};
use crate::music::midi_file::ChannelMessage;

/// Output scale at 0 dB gain: chosen so that the benchmark's General MIDI songs come
/// out within a few dB of FluidSynth's RMS level with FluidR3_GM at its default gain.
pub const LEVEL: f32 = 0.32;

/// Voices per part; the quietest voice gives way when more are needed.
const MAX_VOICES: usize = 96;
/// Samples between updates of the filter coefficients.
const CONTROL_PERIOD: usize = 16;
/// An envelope below this level has ended.
const SILENT: f32 = 1e-4;
/// The drum channel (channel 10).
const DRUMS: u8 = 9;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wave {
    Sine,
    Saw,
    Square,
    /// Drawbars 8', 4', 2 2/3', 2'.
    Organ,
    /// Two-operator FM: modulator at `ratio` × the pitch, with `index` decaying with
    /// the filter envelope.
    Fm {
        ratio: f32,
        index: f32,
    },
    Noise,
}

/// The sound of one program family.
#[derive(Clone, Copy, Debug)]
struct Patch {
    wave: Wave,
    /// A second oscillator detuned by this many cents (0: none).
    detune_cents: f32,
    attack: f32,
    decay: f32,
    sustain: f32,
    release: f32,
    /// Filter cutoff as a multiple of the pitch, at the note's start and after the
    /// filter envelope has decayed (`filter_decay` seconds time constant).
    bright_start: f32,
    bright_end: f32,
    filter_decay: f32,
    gain: f32,
}

const fn patch(
    wave: Wave,
    detune_cents: f32,
    adsr: [f32; 4],
    bright: [f32; 3],
    gain: f32,
) -> Patch {
    Patch {
        wave,
        detune_cents,
        attack: adsr[0],
        decay: adsr[1],
        sustain: adsr[2],
        release: adsr[3],
        bright_start: bright[0],
        bright_end: bright[1],
        filter_decay: bright[2],
        gain,
    }
}

/// One patch per General MIDI family (program / 8).
const FAMILIES: [Patch; 16] = [
    // Piano
    patch(
        Wave::Saw,
        0.0,
        [0.002, 2.0, 0.0, 0.25],
        [8.0, 1.5, 0.3],
        0.9,
    ),
    // Chromatic percussion
    patch(
        Wave::Fm {
            ratio: 3.5,
            index: 2.0,
        },
        0.0,
        [0.001, 1.2, 0.0, 0.4],
        [40.0, 40.0, 1.0],
        0.6,
    ),
    // Organ
    patch(
        Wave::Organ,
        0.0,
        [0.01, 0.1, 1.0, 0.08],
        [40.0, 40.0, 1.0],
        0.45,
    ),
    // Guitar
    patch(
        Wave::Saw,
        0.0,
        [0.002, 1.5, 0.0, 0.15],
        [10.0, 1.0, 0.15],
        0.8,
    ),
    // Bass
    patch(
        Wave::Saw,
        0.0,
        [0.004, 0.8, 0.3, 0.08],
        [6.0, 2.0, 0.2],
        1.0,
    ),
    // Strings
    patch(Wave::Saw, 8.0, [0.15, 0.5, 0.8, 0.4], [4.0, 4.0, 1.0], 0.5),
    // Ensemble
    patch(Wave::Saw, 12.0, [0.2, 0.5, 0.8, 0.5], [3.0, 3.0, 1.0], 0.5),
    // Brass
    patch(
        Wave::Saw,
        0.0,
        [0.05, 0.3, 0.7, 0.15],
        [8.0, 3.0, 0.25],
        0.6,
    ),
    // Reed
    patch(
        Wave::Square,
        0.0,
        [0.03, 0.2, 0.8, 0.1],
        [5.0, 4.0, 0.3],
        0.5,
    ),
    // Pipe
    patch(
        Wave::Sine,
        0.0,
        [0.06, 0.2, 0.8, 0.12],
        [6.0, 6.0, 1.0],
        0.7,
    ),
    // Synth lead
    patch(
        Wave::Square,
        0.0,
        [0.005, 0.2, 0.7, 0.1],
        [12.0, 6.0, 0.3],
        0.5,
    ),
    // Synth pad
    patch(Wave::Saw, 15.0, [0.4, 1.0, 0.8, 0.8], [3.0, 3.0, 1.0], 0.45),
    // Synth effects
    patch(
        Wave::Fm {
            ratio: 1.41,
            index: 3.0,
        },
        0.0,
        [0.2, 1.0, 0.6, 1.0],
        [40.0, 40.0, 2.0],
        0.4,
    ),
    // Ethnic
    patch(
        Wave::Saw,
        0.0,
        [0.002, 1.0, 0.0, 0.2],
        [12.0, 2.0, 0.1],
        0.7,
    ),
    // Percussive
    patch(
        Wave::Fm {
            ratio: 1.6,
            index: 1.2,
        },
        0.0,
        [0.001, 0.5, 0.0, 0.2],
        [40.0, 40.0, 0.2],
        0.8,
    ),
    // Sound effects
    patch(
        Wave::Noise,
        0.0,
        [0.05, 0.5, 0.5, 0.5],
        [4.0, 4.0, 1.0],
        0.4,
    ),
];

/// A drum sound: a pitch-swept tone plus filtered noise under one decay.
#[derive(Clone, Copy, Debug)]
struct Drum {
    tone_start: f32,
    tone_end: f32,
    sweep: f32,
    tone: f32,
    noise: f32,
    /// Noise filter cutoff in Hz; with `high_pass` the noise keeps what is above it.
    noise_cutoff: f32,
    high_pass: bool,
    decay: f32,
}

const fn drum(tone: [f32; 4], noise: f32, noise_cutoff: f32, high_pass: bool, decay: f32) -> Drum {
    Drum {
        tone_start: tone[0],
        tone_end: tone[1],
        sweep: tone[2],
        tone: tone[3],
        noise,
        noise_cutoff,
        high_pass,
        decay,
    }
}

/// The drum for a key on channel 10 (General MIDI percussion map).
fn drum_for(key: u8) -> Drum {
    match key {
        35 | 36 => drum([160.0, 45.0, 0.05, 1.0], 0.05, 2000.0, false, 0.35),
        37 => drum([800.0, 800.0, 1.0, 0.4], 0.5, 3000.0, true, 0.04),
        38 | 40 => drum([200.0, 160.0, 0.05, 0.5], 0.8, 1500.0, true, 0.18),
        39 => drum([0.0, 0.0, 1.0, 0.0], 1.0, 1200.0, true, 0.12),
        41 | 43 | 45 | 47 | 48 | 50 => {
            let f = 70.0 + (key - 41) as f32 * 16.0;
            drum([f * 1.5, f, 0.1, 1.0], 0.1, 1500.0, false, 0.35)
        }
        42 | 44 => drum([0.0, 0.0, 1.0, 0.0], 0.7, 7000.0, true, 0.05),
        46 => drum([0.0, 0.0, 1.0, 0.0], 0.7, 7000.0, true, 0.35),
        49 | 52 | 55 | 57 => drum([0.0, 0.0, 1.0, 0.0], 0.7, 5000.0, true, 1.5),
        51 | 53 | 59 => drum([3000.0, 3000.0, 1.0, 0.1], 0.5, 6000.0, true, 1.0),
        _ => {
            let f = key_hz(key as f32);
            drum([f, f, 1.0, 0.6], 0.4, 3000.0, true, 0.15)
        }
    }
}

fn key_hz(key: f32) -> f32 {
    440.0 * ((key - 69.0) / 12.0).exp2()
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    program: u8,
    volume: u8,
    expression: u8,
    pan: u8,
    sustain: bool,
    bend: i16,
    bend_range: f32,
    rpn: (u8, u8),
    reverb_send: u8,
    chorus_send: u8,
}

impl Default for Channel {
    fn default() -> Self {
        Self {
            program: 0,
            volume: 100,
            expression: 127,
            pan: 64,
            sustain: false,
            bend: 0,
            bend_range: 2.0,
            rpn: (127, 127),
            reverb_send: 40,
            chorus_send: 0,
        }
    }
}

impl Channel {
    fn gain(&self) -> f32 {
        let v = self.volume as f32 / 127.0;
        let e = self.expression as f32 / 127.0;
        v * v * e * e
    }

    /// Constant-power pan gains (left, right).
    fn pan_gains(&self) -> (f32, f32) {
        let p = (self.pan.max(1) - 1) as f32 / 126.0 * PI / 2.0;
        (p.cos(), p.sin())
    }

    fn bend_ratio(&self) -> f32 {
        (self.bend as f32 / 8192.0 * self.bend_range / 12.0).exp2()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    Attack,
    Decay,
    Release,
    Done,
}

struct Voice {
    channel: u8,
    key: u8,
    velocity_gain: f32,
    kind: VoiceKind,
    /// The key is down.
    held: bool,
    /// Released while the pedal was down: ends when the pedal lifts.
    pedal_held: bool,
    stage: Stage,
    level: f32,
    attack_step: f32,
    decay_coef: f32,
    release_coef: f32,
    sustain: f32,
    phase: f32,
    phase2: f32,
    mod_phase: f32,
    /// Filter envelope, 1 → 0.
    filter_env: f32,
    filter_coef: f32,
    lp1: f32,
    lp2: f32,
    noise: u32,
    age: u64,
}

#[derive(Clone, Copy, Debug)]
enum VoiceKind {
    Tone(Patch),
    Drum(Drum),
}

/// The built-in synthesizer for one part's channels.
pub(crate) struct BuiltinSynth {
    rate: f32,
    channels: [Channel; 16],
    voices: Vec<Voice>,
    effects: bool,
    notes_started: u64,
}

impl BuiltinSynth {
    pub(crate) fn new(rate: u32, effects: bool) -> Self {
        Self {
            rate: rate as f32,
            channels: [Channel::default(); 16],
            voices: Vec::with_capacity(MAX_VOICES),
            effects,
            notes_started: 0,
        }
    }

    fn note_on(&mut self, channel: u8, key: u8, velocity: u8) {
        let ch = self.channels[channel as usize];
        let kind = if channel == DRUMS {
            VoiceKind::Drum(drum_for(key))
        } else {
            VoiceKind::Tone(FAMILIES[(ch.program / 8) as usize & 15])
        };
        // A key struck again on the same channel ends its earlier note.
        for v in &mut self.voices {
            if v.channel == channel && v.key == key && v.stage != Stage::Release {
                v.stage = Stage::Release;
                v.release_coef = v.release_coef.min(coef(0.03, self.rate));
            }
        }
        if self.voices.len() >= MAX_VOICES
            && let Some(quietest) = (0..self.voices.len()).min_by(|&a, &b| {
                self.voices[a]
                    .level
                    .total_cmp(&self.voices[b].level)
                    .then(self.voices[a].age.cmp(&self.voices[b].age))
            })
        {
            self.voices.swap_remove(quietest);
        }
        let (attack, decay, sustain, release) = match kind {
            VoiceKind::Tone(p) => (p.attack, p.decay, p.sustain, p.release),
            VoiceKind::Drum(d) => (0.001, d.decay, 0.0, d.decay.min(0.3)),
        };
        let v = velocity as f32 / 127.0;
        self.notes_started += 1;
        self.voices.push(Voice {
            channel,
            key,
            velocity_gain: v * v,
            kind,
            held: true,
            pedal_held: false,
            stage: Stage::Attack,
            level: 0.0,
            attack_step: 1.0 / (attack * self.rate).max(1.0),
            decay_coef: coef(decay, self.rate),
            release_coef: coef(release, self.rate),
            sustain,
            phase: 0.0,
            phase2: 0.25,
            mod_phase: 0.0,
            filter_env: 1.0,
            filter_coef: 1.0,
            lp1: 0.0,
            lp2: 0.0,
            noise: 0x9E37_79B9
                ^ (self.notes_started as u32).wrapping_mul(2_654_435_761)
                ^ key as u32,
            age: self.notes_started,
        });
    }

    fn note_off(&mut self, channel: u8, key: u8) {
        let sustain = self.channels[channel as usize].sustain;
        for v in &mut self.voices {
            if v.channel == channel && v.key == key && v.held {
                v.held = false;
                // Drums play out their own decay.
                if matches!(v.kind, VoiceKind::Drum(_)) {
                    continue;
                }
                if sustain {
                    v.pedal_held = true;
                } else {
                    v.stage = Stage::Release;
                }
            }
        }
    }

    fn controller(&mut self, channel: u8, controller: u8, value: u8) {
        let ch = &mut self.channels[channel as usize];
        match controller {
            7 => ch.volume = value,
            10 => ch.pan = value,
            11 => ch.expression = value,
            64 => {
                ch.sustain = value >= 64;
                if !ch.sustain {
                    for v in &mut self.voices {
                        if v.channel == channel && v.pedal_held {
                            v.pedal_held = false;
                            v.stage = Stage::Release;
                        }
                    }
                }
            }
            91 => ch.reverb_send = value,
            93 => ch.chorus_send = value,
            101 => ch.rpn.0 = value,
            100 => ch.rpn.1 = value,
            6 if ch.rpn == (0, 0) => ch.bend_range = value as f32,
            38 if ch.rpn == (0, 0) => ch.bend_range = ch.bend_range.floor() + value as f32 / 100.0,
            120 => self.voices.retain(|v| v.channel != channel),
            121 => {
                let kept = (
                    ch.volume,
                    ch.pan,
                    ch.program,
                    ch.reverb_send,
                    ch.chorus_send,
                );
                *ch = Channel::default();
                (
                    ch.volume,
                    ch.pan,
                    ch.program,
                    ch.reverb_send,
                    ch.chorus_send,
                ) = kept;
            }
            123 => {
                for v in &mut self.voices {
                    if v.channel == channel && !matches!(v.kind, VoiceKind::Drum(_)) {
                        v.held = false;
                        v.pedal_held = false;
                        v.stage = Stage::Release;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Per-sample multiplier that decays by 60 dB in `seconds`.
fn coef(seconds: f32, rate: f32) -> f32 {
    (-6.9 / (seconds * rate).max(1.0)).exp()
}

/// One-pole low-pass coefficient for a cutoff in Hz.
fn lowpass_coef(cutoff: f32, rate: f32) -> f32 {
    1.0 - (-TAU * cutoff.min(0.45 * rate) / rate).exp()
}

/// PolyBLEP correction for a discontinuity at phase 0 (`dt` = phase step).
#[inline]
fn poly_blep(t: f32, dt: f32) -> f32 {
    if t < dt {
        let x = t / dt;
        x + x - x * x - 1.0
    } else if t > 1.0 - dt {
        let x = (t - 1.0) / dt;
        x * x + x + x + 1.0
    } else {
        0.0
    }
}

#[inline]
fn wrap(p: f32) -> f32 {
    if p >= 1.0 { p - 1.0 } else { p }
}

#[inline]
fn next_noise(state: &mut u32) -> f32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    (*state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
}

impl Voice {
    /// Advances the amplitude envelope by one sample.
    #[inline]
    fn envelope(&mut self) -> f32 {
        match self.stage {
            Stage::Attack => {
                self.level += self.attack_step;
                if self.level >= 1.0 {
                    self.level = 1.0;
                    self.stage = Stage::Decay;
                }
            }
            Stage::Decay => {
                self.level = self.sustain + (self.level - self.sustain) * self.decay_coef;
                if self.sustain == 0.0 && self.level < SILENT {
                    self.stage = Stage::Done;
                }
            }
            Stage::Release => {
                self.level *= self.release_coef;
                if self.level < SILENT {
                    self.stage = Stage::Done;
                }
            }
            Stage::Done => self.level = 0.0,
        }
        self.level
    }

    /// Renders this voice into `out` with the gains (left, right, reverb send,
    /// chorus send); the sends only when `effects`.
    fn render_add(
        &mut self,
        rate: f32,
        freq: f32,
        gains: [f32; 4],
        out: &mut BusSlices<'_>,
        effects: bool,
    ) {
        let [gain_l, gain_r, reverb, chorus] = gains;
        let reverb = reverb * (gain_l + gain_r);
        let mut scratch = [0f32; CONTROL_PERIOD];
        let n = out.left.len();
        let mut start = 0;
        while start < n && self.stage != Stage::Done {
            let len = (n - start).min(CONTROL_PERIOD);
            let block = &mut scratch[..len];
            match self.kind {
                VoiceKind::Tone(p) => self.tone_block(&p, rate, freq, block),
                VoiceKind::Drum(d) => self.drum_block(&d, rate, block),
            }
            let range = start..start + len;
            for ((s, l), r) in block
                .iter()
                .zip(&mut out.left[range.clone()])
                .zip(&mut out.right[range.clone()])
            {
                *l += s * gain_l;
                *r += s * gain_r;
            }
            if effects && reverb > 0.0 {
                for (s, v) in block.iter().zip(&mut out.reverb[range.clone()]) {
                    *v += s * reverb;
                }
            }
            if effects && chorus > 0.0 {
                let (cl, cr) = (chorus * gain_l, chorus * gain_r);
                for ((s, l), r) in block
                    .iter()
                    .zip(&mut out.chorus_left[range.clone()])
                    .zip(&mut out.chorus_right[range.clone()])
                {
                    *l += s * cl;
                    *r += s * cr;
                }
            }
            start += len;
        }
    }

    fn tone_block(&mut self, p: &Patch, rate: f32, freq: f32, out: &mut [f32]) {
        // Two detuned oscillators sit symmetrically around the pitch.
        let spread = (p.detune_cents / 2400.0).exp2();
        let dt = (freq / rate / spread).min(0.49);
        let dt2 = (freq / rate * spread).min(0.49);
        let bright = p.bright_end + (p.bright_start - p.bright_end) * self.filter_env;
        self.filter_coef = lowpass_coef(freq * bright, rate);
        self.filter_env *= (-(out.len() as f32) / (p.filter_decay * rate)).exp();
        let a = self.filter_coef;
        for s in out.iter_mut() {
            let raw = match p.wave {
                Wave::Sine => (TAU * self.phase).sin(),
                Wave::Saw => {
                    let mut x = 2.0 * self.phase - 1.0 - poly_blep(self.phase, dt);
                    if p.detune_cents != 0.0 {
                        x += 2.0 * self.phase2 - 1.0 - poly_blep(self.phase2, dt2);
                        x *= 0.5;
                    }
                    x
                }
                Wave::Square => {
                    let mut x = if self.phase < 0.5 { 1.0 } else { -1.0 };
                    x += poly_blep(self.phase, dt);
                    x -= poly_blep(wrap(self.phase + 0.5), dt);
                    x * 0.7
                }
                Wave::Organ => {
                    let w = TAU * self.phase;
                    (w.sin()
                        + 0.5 * (2.0 * w).sin()
                        + 0.35 * (3.0 * w).sin()
                        + 0.25 * (4.0 * w).sin())
                        * 0.5
                }
                Wave::Fm { ratio, index } => {
                    let m = (TAU * self.mod_phase).sin() * index * (0.3 + 0.7 * self.filter_env);
                    self.mod_phase = wrap(self.mod_phase + (dt * ratio).min(0.49));
                    (TAU * self.phase + m).sin()
                }
                Wave::Noise => next_noise(&mut self.noise),
            };
            self.phase = wrap(self.phase + dt);
            self.phase2 = wrap(self.phase2 + dt2);
            self.lp1 += a * (raw - self.lp1);
            self.lp2 += a * (self.lp1 - self.lp2);
            *s = self.lp2 * self.envelope() * p.gain;
        }
    }

    fn drum_block(&mut self, d: &Drum, rate: f32, out: &mut [f32]) {
        // filter_env doubles as the pitch sweep: 1 → 0.
        let freq = d.tone_end + (d.tone_start - d.tone_end) * self.filter_env;
        self.filter_env *= (-(out.len() as f32) / (d.sweep * rate)).exp();
        let dt = (freq / rate).min(0.49);
        let a = lowpass_coef(d.noise_cutoff, rate);
        for s in out.iter_mut() {
            let tone = if d.tone > 0.0 {
                (TAU * self.phase).sin() * d.tone
            } else {
                0.0
            };
            self.phase = wrap(self.phase + dt);
            let n = next_noise(&mut self.noise);
            self.lp1 += a * (n - self.lp1);
            let noise = if d.high_pass { n - self.lp1 } else { self.lp1 };
            *s = (tone + noise * d.noise) * self.envelope();
        }
    }
}

impl PartSynth for BuiltinSynth {
    fn event(&mut self, channel: u8, message: ChannelMessage) {
        let channel = channel & 15;
        match message {
            ChannelMessage::NoteOn { key, velocity } => self.note_on(channel, key, velocity),
            ChannelMessage::NoteOff { key, .. } => self.note_off(channel, key),
            ChannelMessage::Controller { controller, value } => {
                self.controller(channel, controller, value)
            }
            ChannelMessage::ProgramChange { program } => {
                self.channels[channel as usize].program = program & 127
            }
            ChannelMessage::PitchBend { bend } => self.channels[channel as usize].bend = bend,
            ChannelMessage::ChannelPressure { .. } | ChannelMessage::KeyPressure { .. } => {}
        }
    }

    fn render(&mut self, mut out: BusSlices<'_>) {
        out.left.fill(0.0);
        out.right.fill(0.0);
        out.reverb.fill(0.0);
        out.chorus_left.fill(0.0);
        out.chorus_right.fill(0.0);
        let rate = self.rate;
        for v in &mut self.voices {
            let ch = &self.channels[v.channel as usize];
            let (pl, pr) = ch.pan_gains();
            let g = v.velocity_gain * ch.gain();
            let freq = key_hz(v.key as f32) * ch.bend_ratio();
            let gains = [
                g * pl,
                g * pr,
                ch.reverb_send as f32 / 127.0,
                ch.chorus_send as f32 / 127.0,
            ];
            v.render_add(rate, freq, gains, &mut out, self.effects);
        }
        self.voices.retain(|v| v.stage != Stage::Done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(synth: &mut BuiltinSynth, frames: usize) -> Vec<f32> {
        let mut bus = super::super::Bus::new(frames);
        synth.render(bus.slices(0..frames));
        bus.left
    }

    #[test]
    fn sustain_pedal_holds_released_notes() {
        let mut synth = BuiltinSynth::new(44_100, false);
        synth.event(0, ChannelMessage::ProgramChange { program: 16 }); // organ
        synth.event(
            0,
            ChannelMessage::Controller {
                controller: 64,
                value: 127,
            },
        );
        synth.event(
            0,
            ChannelMessage::NoteOn {
                key: 60,
                velocity: 100,
            },
        );
        render(&mut synth, 4410);
        synth.event(
            0,
            ChannelMessage::NoteOff {
                key: 60,
                velocity: 0,
            },
        );
        let held = render(&mut synth, 44_100);
        assert!(
            held[40_000..].iter().any(|s| s.abs() > 0.01),
            "pedal holds the note"
        );
        synth.event(
            0,
            ChannelMessage::Controller {
                controller: 64,
                value: 0,
            },
        );
        let after = render(&mut synth, 44_100);
        assert!(
            after[22_050..].iter().all(|s| s.abs() < 1e-3),
            "pedal up releases it"
        );
        assert!(synth.voices.is_empty());
    }

    #[test]
    fn every_family_and_drum_sounds_and_stays_bounded() {
        for program in (0..128).step_by(8) {
            let mut synth = BuiltinSynth::new(48_000, true);
            synth.event(0, ChannelMessage::ProgramChange { program });
            synth.event(
                0,
                ChannelMessage::NoteOn {
                    key: 64,
                    velocity: 127,
                },
            );
            let out = render(&mut synth, 24_000);
            let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!(peak > 0.02 && peak < 2.0, "program {program}: peak {peak}");
        }
        for key in 27..=87 {
            let mut synth = BuiltinSynth::new(44_100, false);
            synth.event(9, ChannelMessage::NoteOn { key, velocity: 127 });
            let out = render(&mut synth, 8_000);
            let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!(peak > 0.01 && peak < 2.0, "drum {key}: peak {peak}");
        }
    }
}
