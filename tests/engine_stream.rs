//! Streaming equals chunked equals batched: the same frames give the same bits whether they are
//! stepped one at a time, in chunks of random sizes, or alongside other streams.

#[path = "common/golden.rs"]
mod golden;

use golden::{golden_dir, io_tensor};
use proptest::prelude::*;
use reprise::engine::kernels::{Format, Isa};
use reprise::engine::{EngineError, LstmStack, Model, StackOptions};

fn stack(format: Format, max_batch: usize, max_chunk: usize) -> LstmStack {
    let model = Model::load(golden_dir("lstm-3x48")).unwrap();
    let opts = StackOptions {
        format,
        isa: Isa::detect(),
        max_batch,
        max_chunk,
    };
    LstmStack::from_model(&model, "lstm", opts).unwrap()
}

/// The first stream's input frames, T × 20.
fn sequence() -> Vec<f32> {
    let (shape, input) = io_tensor("lstm-3x48", "input");
    let (steps, streams, n_in) = (shape[0], shape[1], shape[2]);
    (0..steps)
        .flat_map(|t| input[t * streams * n_in..t * streams * n_in + n_in].to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn streaming_equals_chunked_with_random_chunk_sizes(
        chunks in prop::collection::vec(1usize..40, 1..30),
        max_chunk in 1usize..20,
        fmt in 0usize..3,
    ) {
        let format = [Format::F32, Format::Bf16, Format::Int8][fmt];
        let seq = sequence();
        let mut s = stack(format, 1, max_chunk);
        let (n_in, h) = (s.input_size(), s.hidden_size());
        let frames = seq.len() / n_in;
        // One frame at a time.
        let mut st = s.new_state();
        let mut stepped = vec![0.0; frames * h];
        for t in 0..frames {
            s.step_into(std::slice::from_mut(&mut st), &seq[t * n_in..(t + 1) * n_in], &mut stepped[t * h..(t + 1) * h]).unwrap();
        }
        // Chunks of the random sizes, cycling until the sequence is used up.
        let mut st2 = s.new_state();
        let mut chunked = vec![0.0; frames * h];
        let (mut t, mut i) = (0, 0);
        while t < frames {
            let n = chunks[i % chunks.len()].min(frames - t);
            s.forward_chunk_into(&mut st2, &seq[t * n_in..(t + n) * n_in], &mut chunked[t * h..(t + n) * h]).unwrap();
            t += n;
            i += 1;
        }
        prop_assert_eq!(&stepped, &chunked);
        prop_assert_eq!(st, st2);
    }
}

#[test]
fn a_stream_gives_the_same_bits_alone_or_in_a_batch() {
    let seq = sequence();
    for format in [Format::F32, Format::Bf16, Format::Int8] {
        let mut s = stack(format, 5, 8);
        let (n_in, h) = (s.input_size(), s.hidden_size());
        // Five streams: stream k reads the sequence shifted by k frames.
        let steps = 60;
        let mut states: Vec<_> = (0..5).map(|_| s.new_state()).collect();
        let mut batched = vec![vec![0.0; steps * h]; 5];
        let mut x = vec![0.0; 5 * n_in];
        let mut y = vec![0.0; 5 * h];
        for t in 0..steps {
            for k in 0..5 {
                x[k * n_in..(k + 1) * n_in]
                    .copy_from_slice(&seq[(t + k) * n_in..(t + k + 1) * n_in]);
            }
            s.step_into(&mut states, &x, &mut y).unwrap();
            for k in 0..5 {
                batched[k][t * h..(t + 1) * h].copy_from_slice(&y[k * h..(k + 1) * h]);
            }
        }
        for (k, got) in batched.iter().enumerate() {
            let mut st = s.new_state();
            let mut alone = vec![0.0; steps * h];
            s.forward_chunk_into(&mut st, &seq[k * n_in..(k + steps) * n_in], &mut alone)
                .unwrap();
            assert_eq!(got, &alone, "{format:?} stream {k}");
        }
    }
}

#[test]
fn borrowed_states_can_be_batched_too() {
    let mut s = stack(Format::F32, 2, 4);
    let (mut a, mut b) = (s.new_state(), s.new_state());
    let x = vec![0.5; 2 * s.input_size()];
    let mut y = vec![0.0; 2 * s.hidden_size()];
    let mut refs = [&mut a, &mut b];
    s.step_into(&mut refs, &x, &mut y).unwrap();
    assert_eq!(a, b);
    assert!(y.iter().any(|v| *v != 0.0));
}

#[test]
fn wrong_buffers_give_errors_not_panics() {
    let mut s = stack(Format::F32, 2, 4);
    let (n_in, h) = (s.input_size(), s.hidden_size());
    let mut states: Vec<_> = (0..3).map(|_| s.new_state()).collect();
    let err = s
        .step_into(&mut states, &vec![0.0; 3 * n_in], &mut vec![0.0; 3 * h])
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::TooMany {
                max: 2,
                actual: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = s
        .step_into(&mut states[..1], &vec![0.0; n_in + 1], &mut vec![0.0; h])
        .unwrap_err();
    assert!(matches!(err, EngineError::WrongLength { .. }), "{err}");
    let mut st = s.new_state();
    let err = s
        .forward_chunk_into(&mut st, &vec![0.0; 3 * n_in + 2], &mut vec![0.0; 3 * h])
        .unwrap_err();
    assert!(matches!(err, EngineError::WrongLength { .. }), "{err}");
    let other = Model::load(golden_dir("lstm-2x33")).unwrap();
    let small = LstmStack::from_model(&other, "lstm", StackOptions::new(Format::F32, 1)).unwrap();
    let mut foreign = small.new_state();
    let err = s
        .step_into(
            std::slice::from_mut(&mut foreign),
            &vec![0.0; n_in],
            &mut vec![0.0; h],
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::ForeignState { .. }), "{err}");
}
