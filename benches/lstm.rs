//! One LSTM step at batch 1, 8 and 32 and a 32-frame chunk, for the shapes Reprise's models use,
//! in every weight format, on this CPU's best kernels. Weights are random: speed does not depend
//! on their values.
//!
//!     cargo bench --bench lstm [-- FILTER]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reprise::engine::kernels::{Format, Isa, Matrix};
use reprise::engine::layers::Linear;
use reprise::engine::lstm::LayerWeights;
use reprise::engine::{LstmStack, StackOptions};

struct Shape {
    name: &'static str,
    input: usize,
    hidden: usize,
    layers: usize,
    head: Option<usize>,
}

const SHAPES: [Shape; 4] = [
    Shape {
        name: "3x256_in80",
        input: 80,
        hidden: 256,
        layers: 3,
        head: None,
    },
    Shape {
        name: "4x512_in80",
        input: 80,
        hidden: 512,
        layers: 4,
        head: None,
    },
    Shape {
        name: "melody_2x256_to130",
        input: 130,
        hidden: 256,
        layers: 2,
        head: Some(130),
    },
    Shape {
        name: "3x512_to400",
        input: 400,
        hidden: 512,
        layers: 3,
        head: Some(400),
    },
];

fn random(n: usize, seed: &mut u64, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A stack and optional output layer with random weights.
fn build(shape: &Shape, format: Format, max_batch: usize) -> (LstmStack, Option<Linear>) {
    let mut seed = 0x5EED;
    let h = shape.hidden;
    let scale = 1.0 / (h as f32).sqrt();
    let owned: Vec<[Vec<f32>; 4]> = (0..shape.layers)
        .map(|k| {
            let inp = if k == 0 { shape.input } else { h };
            [
                random(4 * h * inp, &mut seed, scale),
                random(4 * h * h, &mut seed, scale),
                random(4 * h, &mut seed, scale),
                random(4 * h, &mut seed, scale),
            ]
        })
        .collect();
    let weights: Vec<LayerWeights<'_>> = owned
        .iter()
        .map(|[a, b, c, d]| LayerWeights {
            w_ih: a,
            w_hh: b,
            b_ih: c,
            b_hh: d,
        })
        .collect();
    let opts = StackOptions {
        format,
        isa: Isa::detect(),
        max_batch,
        max_chunk: 32,
    };
    let stack = LstmStack::new(shape.input, h, &weights, opts);
    let head = shape.head.map(|out| {
        let w = random(out * h, &mut seed, scale);
        let b = random(out, &mut seed, scale);
        Linear::new(&w, &b, h, format, Isa::detect(), max_batch.max(32))
    });
    (stack, head)
}

fn bench_lstm(c: &mut Criterion) {
    for shape in &SHAPES {
        let mut group = c.benchmark_group(format!("lstm/{}", shape.name));
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        group.sample_size(20);
        for format in [Format::F32, Format::Bf16, Format::Int8] {
            for batch in [1usize, 8, 32] {
                let (mut stack, mut head) = build(shape, format, batch);
                let mut states: Vec<_> = (0..batch).map(|_| stack.new_state()).collect();
                let mut seed = 7;
                let x = random(batch * shape.input, &mut seed, 1.0);
                let mut y = vec![0.0; batch * shape.hidden];
                let mut logits = vec![0.0; batch * shape.head.unwrap_or(0)];
                group.throughput(Throughput::Elements(batch as u64));
                group.bench_function(
                    BenchmarkId::new(format!("step_b{batch}"), format.name()),
                    |b| {
                        b.iter(|| {
                            stack.step_into(&mut states, black_box(&x), &mut y).unwrap();
                            if let Some(head) = head.as_mut() {
                                head.forward_into(&y, &mut logits).unwrap();
                            }
                        })
                    },
                );
            }
            let (mut stack, mut head) = build(shape, format, 1);
            let mut state = stack.new_state();
            let mut seed = 9;
            let x = random(32 * shape.input, &mut seed, 1.0);
            let mut y = vec![0.0; 32 * shape.hidden];
            let mut logits = vec![0.0; 32 * shape.head.unwrap_or(0)];
            group.throughput(Throughput::Elements(32));
            group.bench_function(BenchmarkId::new("chunk32", format.name()), |b| {
                b.iter(|| {
                    stack
                        .forward_chunk_into(&mut state, black_box(&x), &mut y)
                        .unwrap();
                    if let Some(head) = head.as_mut() {
                        head.forward_into(&y, &mut logits).unwrap();
                    }
                })
            });
        }
        group.finish();
    }
}

/// The raw matrix product on a cache-resident 1024×256 matrix; throughput is in
/// multiply-accumulates per second.
fn bench_matmul(c: &mut Criterion) {
    let (rows, cols) = (1024usize, 256usize);
    let mut seed = 11;
    let w = random(rows * cols, &mut seed, 0.5);
    let mut group = c.benchmark_group("kernels/matmul_1024x256");
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    for format in [Format::F32, Format::Bf16, Format::Int8] {
        for n in [1usize, 8] {
            let mut m = Matrix::new(&w, rows, cols, format, Isa::detect(), n);
            let x = random(n * cols, &mut seed, 1.0);
            let mut y = vec![0.0; n * rows];
            group.throughput(Throughput::Elements((rows * cols * n) as u64));
            group.bench_function(BenchmarkId::new(format!("n{n}"), format.name()), |b| {
                b.iter(|| m.matmul(black_box(&x), &mut y))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_lstm, bench_matmul);
criterion_main!(benches);
