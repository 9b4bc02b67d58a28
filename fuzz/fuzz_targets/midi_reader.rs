//! The MIDI readers (the renderer's timed events and the continuation's seeds): any bytes give
//! a song or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprise::music::midi_file::parse_midi;
use reprise::music::seed::Seed;

fuzz_target!(|data: &[u8]| {
    if let Ok(song) = parse_midi(data) {
        assert!(song.duration.is_finite() && song.duration >= 0.0);
        assert!(song.events.windows(2).all(|w| w[0].seconds <= w[1].seconds));
    }
    if let Ok(seed) = Seed::parse(data) {
        let _ = seed.padded_end();
        let _ = seed.bar_ticks();
    }
});
