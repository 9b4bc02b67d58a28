//! The WAV reader (header parsing, every sample format, mixing down and resampling to 16 kHz):
//! any file gives blocks or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprise::audio::BlockSource;
use reprise::audio::wav::WavSource;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("reprise-fuzz-{}.wav", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut source) = WavSource::open(&path, Some(16_000), 0.1) {
        let mut total = 0usize;
        while let Ok(Some(block)) = source.next_block() {
            assert!(block.iter().all(|s| s.is_finite()));
            total += block.len();
            if total > 1 << 24 {
                break;
            }
        }
    }
});
