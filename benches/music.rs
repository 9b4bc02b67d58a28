//! Generation time per frame of the music model: one LSTM step plus sampling every NADE
//! variable, at the sizes of the benchmark models (88 keys, 2×256, NADE 150) and of an
//! onset-roll continuation model (60 keys × 2 variables). Weights are random.
//!
//!     cargo bench --bench music

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use reprise::engine::Format;
use reprise::music::model::NadeModel;
use reprise::music::sample::{Constraints, Generator, Sampling};

#[path = "../tests/common/music.rs"]
mod music;

fn bench_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("music/generate_frame");
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for (name, encoding, low, keys) in [
        ("roll88_2x256_nade150", "roll", 21, 88),
        ("onset60_2x256_nade150", "onset-roll", 36, 60),
    ] {
        let dir = tempfile::tempdir().unwrap();
        music::write_random_model_sized(dir.path(), encoding, low, keys, 4, 256, 150);
        for format in [Format::F32, Format::Bf16, Format::Int8] {
            let mut model = NadeModel::load(dir.path(), Some(format)).unwrap();
            let mut generator = Generator::new(&mut model, 1);
            let constraints = Constraints {
                sampling: Sampling::default(),
                scale: None,
                max_voices: None,
            };
            group.bench_function(BenchmarkId::new(name, format.name()), |b| {
                b.iter(|| {
                    generator.next_frame(&constraints).unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_generation);
criterion_main!(benches);
