//! SoundFont (SF2) synthesis through rustysynth.
//!
//! rustysynth is a pure-Rust port of MeltySynth: SF2 sample playback with the
//! SoundFont modulators, GM/GS channel handling (channel 10 plays bank 128), reverb
//! and chorus.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use super::{PartSynth, RenderError};
use crate::music::midi_file::ChannelMessage;

/// Output scale at 0 dB gain. rustysynth's master volume is 0.5; FluidSynth's default
/// gain of 0.2 plays the same SoundFonts about this much louder (measured on General
/// MIDI files with FluidR3_GM and TimGM6mb: see the README).
pub const LEVEL: f32 = 1.0;

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

/// A rustysynth synthesizer playing one part's channels.
pub(crate) struct SoundFontSynth {
    synth: Synthesizer,
}

impl SoundFontSynth {
    pub(crate) fn new(
        font: &Arc<SoundFont>,
        sample_rate: u32,
        reverb: bool,
    ) -> Result<Self, RenderError> {
        let mut settings = SynthesizerSettings::new(sample_rate as i32);
        settings.maximum_polyphony = POLYPHONY;
        settings.enable_reverb_and_chorus = reverb;
        let synth = Synthesizer::new(font, &settings)
            .map_err(|e| RenderError::Synthesizer(e.to_string()))?;
        Ok(Self { synth })
    }
}

impl PartSynth for SoundFontSynth {
    fn event(&mut self, channel: u8, message: ChannelMessage) {
        let (status, d1, d2) = message.to_raw();
        self.synth
            .process_midi_message(channel as i32, status as i32, d1 as i32, d2 as i32);
    }

    fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.synth.render(left, right);
    }
}
