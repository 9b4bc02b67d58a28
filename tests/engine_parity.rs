//! The engine against PyTorch: golden outputs of torch.nn.LSTM stacks, stepped one frame at a
//! time for all streams at once, in every weight format on every kernel level of this CPU.

#[path = "common/golden.rs"]
mod golden;

use golden::{CASES, golden_dir, io_tensor};
use reprise::engine::kernels::{Format, Isa};
use reprise::engine::{LstmStack, Model, StackOptions};

/// Documented error bounds of the reduced formats (see `src/engine/lstm.rs`).
const BOUND_F32: f32 = 1e-5;
const BOUND_BF16: f32 = 0.03;
const BOUND_INT8: f32 = 0.06;

fn max_error(case: &str, format: Format, isa: Isa) -> f32 {
    let model = Model::load(golden_dir(case)).expect("golden model loads");
    let (shape, input) = io_tensor(case, "input");
    let (_, want) = io_tensor(case, "output");
    let (steps, streams, n_in) = (shape[0], shape[1], shape[2]);
    let opts = StackOptions {
        format,
        isa,
        max_batch: streams,
        max_chunk: 16,
    };
    let mut stack = LstmStack::from_model(&model, "lstm", opts).expect("lstm layer");
    let h = stack.hidden_size();
    let mut states: Vec<_> = (0..streams).map(|_| stack.new_state()).collect();
    let mut out = vec![0.0; streams * h];
    let mut worst = 0.0f32;
    for t in 0..steps {
        let x = &input[t * streams * n_in..(t + 1) * streams * n_in];
        stack.step_into(&mut states, x, &mut out).expect("step");
        for (a, b) in out
            .iter()
            .zip(&want[t * streams * h..(t + 1) * streams * h])
        {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

#[test]
fn f32_matches_pytorch_within_1e5_over_200_steps() {
    for case in CASES {
        for isa in Isa::available() {
            let err = max_error(case, Format::F32, isa);
            assert!(
                err <= BOUND_F32,
                "{case} {}: max abs error {err:e}",
                isa.name()
            );
        }
    }
}

#[test]
fn bf16_and_int8_stay_within_their_documented_bounds() {
    for case in CASES {
        for isa in Isa::available() {
            for (format, bound) in [(Format::Bf16, BOUND_BF16), (Format::Int8, BOUND_INT8)] {
                let err = max_error(case, format, isa);
                eprintln!("{case} {:?} {}: max abs error {err:.4}", format, isa.name());
                assert!(
                    err <= bound,
                    "{case} {format:?} {}: max abs error {err}",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn whole_sequence_matches_pytorch_for_each_stream() {
    for case in CASES {
        let model = Model::load(golden_dir(case)).unwrap();
        let (shape, input) = io_tensor(case, "input");
        let (_, want) = io_tensor(case, "output");
        let (steps, streams, n_in) = (shape[0], shape[1], shape[2]);
        let mut stack =
            LstmStack::from_model(&model, "lstm", StackOptions::new(Format::F32, 1)).unwrap();
        let h = stack.hidden_size();
        for s in 0..streams {
            let seq: Vec<f32> = (0..steps)
                .flat_map(|t| {
                    input[(t * streams + s) * n_in..(t * streams + s + 1) * n_in].to_vec()
                })
                .collect();
            let mut state = stack.new_state();
            let mut out = vec![0.0; steps * h];
            stack
                .forward_chunk_into(&mut state, &seq, &mut out)
                .unwrap();
            for t in 0..steps {
                for j in 0..h {
                    let err = (out[t * h + j] - want[(t * streams + s) * h + j]).abs();
                    assert!(err <= BOUND_F32, "{case} stream {s} t {t}: {err:e}");
                }
            }
        }
    }
}
