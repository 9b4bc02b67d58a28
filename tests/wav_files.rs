//! WAV reading in every common encoding, through the same block pipeline as live capture.

use std::path::Path;

use reprise::audio::resample::resample_all;
use reprise::audio::wav::{WavFormat, WavSource, read_wav, write_wav};
use reprise::audio::{AudioError, BlockSource, read_all};

fn signal(len: usize, channel: usize) -> Vec<f32> {
    (0..len)
        .map(|i| 0.7 * ((i as f32 * (0.01 + channel as f32 * 0.013)).sin()))
        .collect()
}

/// Writes `channels` channels of [`signal`] and returns the mono mix the reader should give.
fn write_file(
    path: &Path,
    bits: u16,
    float: bool,
    channels: u16,
    rate: u32,
    len: usize,
) -> Vec<f32> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let data: Vec<Vec<f32>> = (0..channels as usize).map(|c| signal(len, c)).collect();
    let full = (1i64 << (bits - 1)) as f32;
    let mut mix = vec![0.0f32; len];
    for i in 0..len {
        for (c, channel) in data.iter().enumerate() {
            let v = channel[i];
            let stored = if float {
                writer.write_sample(v).unwrap();
                v
            } else {
                let q = (v * full).round() as i32;
                match bits {
                    8 => writer.write_sample(q as i8).unwrap(),
                    16 => writer.write_sample(q as i16).unwrap(),
                    _ => writer.write_sample(q).unwrap(),
                }
                q as f32 / full
            };
            let _ = c;
            mix[i] += stored / channels as f32;
        }
    }
    writer.finalize().unwrap();
    mix
}

#[test]
fn reads_every_common_encoding() {
    let dir = tempfile::tempdir().unwrap();
    for (bits, float) in [
        (8, false),
        (16, false),
        (24, false),
        (32, false),
        (32, true),
    ] {
        for channels in [1u16, 2, 3] {
            for rate in [8_000u32, 22_050, 48_000] {
                let path = dir
                    .path()
                    .join(format!("{bits}-{float}-{channels}-{rate}.wav"));
                let want = write_file(&path, bits, float, channels, rate, 5_000);
                let mut source = WavSource::open(&path, None, 0.01).unwrap();
                assert_eq!(source.sample_rate(), rate);
                assert_eq!(source.info().channels, channels);
                assert_eq!(source.info().bits_per_sample, bits);
                let got = read_all(&mut source).unwrap();
                assert_eq!(got.len(), want.len(), "{path:?}");
                let err = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    err < 1e-6,
                    "{bits}-bit float={float} ch={channels}: max error {err}"
                );
            }
        }
    }
}

#[test]
fn resampled_reading_equals_resampling_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stereo44k.wav");
    let mix = write_file(&path, 16, false, 2, 44_100, 30_000);
    let mut source = WavSource::open(&path, Some(16_000), 0.02).unwrap();
    assert_eq!(source.sample_rate(), 16_000);
    let mut blocks = Vec::new();
    while let Some(b) = source.next_block().unwrap() {
        blocks.push(b.len());
    }
    assert!(blocks[..blocks.len() - 1].iter().all(|&n| n == 320));
    let (got, rate) = read_wav(&path, Some(16_000)).unwrap();
    assert_eq!(rate, 16_000);
    let want = resample_all(&mix, 44_100, 16_000).unwrap();
    assert_eq!(got.len(), want.len());
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 1e-5, "max error {err}");
}

#[test]
fn writes_what_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let x = signal(4_000, 0);
    for (format, tolerance) in [
        (WavFormat::Int16, 1.0 / 32768.0),
        (WavFormat::Int24, 1.0 / 8_388_608.0),
        (WavFormat::Float32, 0.0),
    ] {
        let path = dir.path().join(format!("{format:?}.wav"));
        write_wav(&path, &x, 16_000, format).unwrap();
        let (y, rate) = read_wav(&path, None).unwrap();
        assert_eq!(rate, 16_000);
        assert_eq!(y.len(), x.len());
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err <= tolerance, "{format:?}: max error {err}");
    }
}

#[test]
fn truncated_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.wav");
    write_file(&path, 16, false, 1, 16_000, 10_000);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5_001]).unwrap();
    let mut source = WavSource::open(&path, None, 0.01).unwrap();
    let err = read_all(&mut source).unwrap_err();
    assert!(
        matches!(err, AudioError::TruncatedWav { expected: 10_000, got, .. } if got < 10_000),
        "{err:?}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn non_wav_and_damaged_headers_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 4] = [
        (
            "text.wav",
            b"this is not audio at all, just some text that is long enough",
        ),
        ("empty.wav", b""),
        ("header-only.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
        ("midi.wav", b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60"),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = WavSource::open(&path, None, 0.01).err().expect(name);
        assert!(matches!(err, AudioError::NotWav { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let missing = dir.path().join("missing.wav");
    let err = WavSource::open(&missing, None, 0.01).err().unwrap();
    assert!(matches!(err, AudioError::Io { .. }), "{err:?}");
}
