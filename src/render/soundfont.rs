//! SoundFont (SF2) synthesis through rustysynth.
//!
//! rustysynth is a pure-Rust port of MeltySynth: SF2 sample playback with the
//! SoundFont modulators and GM/GS channel handling (channel 10 plays bank 128).
//! Reverb and chorus are Reprise's, run once on the summed sends
//! (see [`super::effects`]); instrument-level effect sends in the SoundFont are not
//! applied, only the channels' CC91/CC93.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use super::{BusSlices, PartSynth, RenderError};
use crate::music::midi_file::ChannelMessage;

/// Output scale at 0 dB gain (rustysynth's own master volume, 0.5, is inside the
/// synthesizers). Chosen so that General MIDI files come out at FluidSynth's level at
/// its default gain of 0.2: on the benchmark songs with FluidR3_GM and TimGM6mb the RMS
/// differences were -0.2 to +6.7 dB at 1.0, about 3 dB louder on average.
pub const LEVEL: f32 = 0.7;

/// Voices per part (FluidSynth's default polyphony; rustysynth's maximum).
const POLYPHONY: usize = 256;

/// Loads an SF2 file.
pub fn load_soundfont(path: &Path) -> Result<Arc<SoundFont>, RenderError> {
    let file = std::fs::File::open(path).map_err(|source| RenderError::SoundFontIo {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    // rustysynth checks the file's structure and returns errors; the unwind guard
    // turns any panic it might still raise on a damaged file into an error as well.
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SoundFont::new(&mut reader)));
    let invalid = |detail: String| RenderError::InvalidSoundFont {
        path: path.to_owned(),
        detail,
    };
    match loaded {
        Ok(Ok(font)) if font.get_presets().is_empty() => Err(invalid("it has no presets".into())),
        Ok(Ok(font)) => Ok(Arc::new(font)),
        Ok(Err(rustysynth::SoundFontError::IoError(e)))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Err(invalid("the file ends early (truncated?)".into()))
        }
        Ok(Err(e)) => Err(invalid(e.to_string())),
        Err(_) => Err(invalid("the synthesizer could not parse it".into())),
    }
}

/// Reverb send before any CC91 (rustysynth's and GS's default, 40 of 127).
const DEFAULT_REVERB_SEND: u8 = 40;

/// One channel's synthesizer and its effect sends.
struct ChannelSynth {
    channel: u8,
    synth: Synthesizer,
    reverb_send: f32,
    chorus_send: f32,
}

/// One part's channels, each on its own rustysynth synthesizer without effects, so
/// that each channel's dry sound can feed the shared reverb and chorus at its send
/// level (CC91, CC93), as rustysynth's own effects would.
pub(crate) struct SoundFontSynth {
    font: Arc<SoundFont>,
    sample_rate: u32,
    effects: bool,
    channels: Vec<ChannelSynth>,
    scratch_left: Vec<f32>,
    scratch_right: Vec<f32>,
}

impl SoundFontSynth {
    pub(crate) fn new(
        font: &Arc<SoundFont>,
        sample_rate: u32,
        effects: bool,
    ) -> Result<Self, RenderError> {
        let mut synth = Self {
            font: Arc::clone(font),
            sample_rate,
            effects,
            channels: Vec::new(),
            scratch_left: Vec::new(),
            scratch_right: Vec::new(),
        };
        // Build one now so that bad settings fail before rendering starts.
        synth.new_channel(0)?;
        synth.channels.clear();
        Ok(synth)
    }

    fn new_channel(&mut self, channel: u8) -> Result<usize, RenderError> {
        let mut settings = SynthesizerSettings::new(self.sample_rate as i32);
        settings.maximum_polyphony = POLYPHONY;
        settings.enable_reverb_and_chorus = false;
        let synth = Synthesizer::new(&self.font, &settings)
            .map_err(|e| RenderError::Synthesizer(e.to_string()))?;
        self.channels.push(ChannelSynth {
            channel,
            synth,
            reverb_send: DEFAULT_REVERB_SEND as f32 / 127.0,
            chorus_send: 0.0,
        });
        Ok(self.channels.len() - 1)
    }
}

impl PartSynth for SoundFontSynth {
    fn event(&mut self, channel: u8, message: ChannelMessage) {
        let index = match self.channels.iter().position(|c| c.channel == channel) {
            Some(i) => i,
            // The settings were checked in `new`, so this cannot fail here.
            None => match self.new_channel(channel) {
                Ok(i) => i,
                Err(_) => return,
            },
        };
        let ch = &mut self.channels[index];
        match message {
            ChannelMessage::Controller {
                controller: 91,
                value,
            } => ch.reverb_send = value as f32 / 127.0,
            ChannelMessage::Controller {
                controller: 93,
                value,
            } => ch.chorus_send = value as f32 / 127.0,
            _ => {}
        }
        let (status, d1, d2) = message.to_raw();
        ch.synth
            .process_midi_message(channel as i32, status as i32, d1 as i32, d2 as i32);
    }

    fn render(&mut self, out: BusSlices<'_>) {
        let n = out.left.len();
        out.left.fill(0.0);
        out.right.fill(0.0);
        out.reverb.fill(0.0);
        out.chorus_left.fill(0.0);
        out.chorus_right.fill(0.0);
        self.scratch_left.resize(n, 0.0);
        self.scratch_right.resize(n, 0.0);
        let (l, r) = (&mut self.scratch_left[..n], &mut self.scratch_right[..n]);
        for ch in &mut self.channels {
            ch.synth.render(l, r);
            for i in 0..n {
                out.left[i] += l[i];
                out.right[i] += r[i];
            }
            if !self.effects {
                continue;
            }
            if ch.reverb_send > 0.0 {
                let send = ch.reverb_send;
                for i in 0..n {
                    out.reverb[i] += send * (l[i] + r[i]);
                }
            }
            if ch.chorus_send > 0.0 {
                let send = ch.chorus_send;
                for i in 0..n {
                    out.chorus_left[i] += send * l[i];
                    out.chorus_right[i] += send * r[i];
                }
            }
        }
    }
}
