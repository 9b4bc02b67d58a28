//! The one MIDI reader and the seeds built from it: any bytes give a song or a typed error,
//! never a panic, and a seed that reads is within its bounds and quantises without blowing up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprise::music::midi_file::parse_midi;
use reprise::music::seed::{MAX_SEED_BARS, Seed};

fuzz_target!(|data: &[u8]| {
    if let Ok(song) = parse_midi(data) {
        assert!(song.duration.is_finite() && song.duration >= 0.0);
        assert!(song.events.windows(2).all(|w| w[0].seconds <= w[1].seconds));
        assert!(song.events.windows(2).all(|w| w[0].tick <= w[1].tick));
        assert!(song.tempos.windows(2).all(|w| w[0].tick < w[1].tick));
    }
    if let Ok(seed) = Seed::parse(data) {
        let bar = seed.bar_ticks();
        let end = seed.padded_end();
        assert!(bar > 0 && end % bar == 0 && end / bar <= MAX_SEED_BARS);
        for steps_per_quarter in [1, 2, 4] {
            let frames = (end / seed.step_ticks(steps_per_quarter)) as usize;
            assert_eq!(seed.frames(steps_per_quarter, frames).len(), frames);
        }
    }
});
