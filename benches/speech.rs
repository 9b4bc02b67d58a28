//! Real-time factor of the speech recognizer per stream on one core: front end, acoustic model
//! (3×512 LSTM, the size of the English model), beam search (width 8) and endpointing on 10 s of
//! speech-like audio. Weights are random; the time per second of audio is the real-time factor.
//!
//!     cargo bench --bench speech

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reprise::engine::Format;
use reprise::speech::{AcousticModel, Recognizer, RecognizerOptions};

#[path = "../tests/common/music.rs"]
mod music;
#[path = "../tests/common/speech.rs"]
mod speech;

fn bench_recognizer(c: &mut Criterion) {
    let mut group = c.benchmark_group("speech/recognize_10s");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(4));
    group.sample_size(10);
    let dir = tempfile::tempdir().unwrap();
    speech::write_random_model_sized(dir.path(), 512, 3);
    let audio = speech::babble(16_000, 10.0, 7);
    group.throughput(Throughput::Elements(audio.len() as u64));
    for format in [Format::F32, Format::Bf16, Format::Int8] {
        let model = AcousticModel::load(dir.path(), Some(format)).unwrap();
        let mut rec = Recognizer::new(model, None, &RecognizerOptions::default()).unwrap();
        group.bench_function(BenchmarkId::new("3x512_beam8", format.name()), |b| {
            b.iter(|| {
                rec.reset();
                let mut finals = 0;
                for block in audio.chunks(1600) {
                    rec.accept(block, &mut |_| finals += 1).unwrap();
                }
                rec.flush(&mut |_| finals += 1);
                finals
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_recognizer);
criterion_main!(benches);
