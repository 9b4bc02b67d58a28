//! Times Reprise's LSTM stack on given inputs and writes its outputs, for side-by-side
//! comparisons with other runtimes (`benches/compare_onnx`).
//!
//!     cargo run --release --example lstm_speed -- MODEL_DIR INPUT.safetensors FORMAT REPS OUT.safetensors
//!
//! INPUT holds `input` (T × B × in). Each repetition runs T steps of all B streams from a fresh
//! state; the line printed is `us_per_step=<median over repetitions>`. OUT receives `output`
//! (T × B × H) of the last repetition.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use reprise::engine::kernels::Format;
use reprise::engine::{LstmStack, Model, StackOptions};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, input, format, reps, out] = &args[..] else {
        bail!("usage: lstm_speed MODEL_DIR INPUT.safetensors f32|bf16|int8 REPS OUT.safetensors");
    };
    let format = Format::parse(format).context("format must be f32, bf16 or int8")?;
    let reps: usize = reps.parse().context("REPS must be a number")?;
    let model = Model::load(model_dir)?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let view = st.tensor("input")?;
    let shape = view.shape().to_vec();
    let x: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (steps, batch, n_in) = (shape[0], shape[1], shape[2]);
    let mut stack = LstmStack::from_model(&model, "lstm", StackOptions::new(format, batch))
        .context("the model has no layer called lstm")?;
    let h = stack.hidden_size();
    let mut y = vec![0.0f32; steps * batch * h];
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let mut states: Vec<_> = (0..batch).map(|_| stack.new_state()).collect();
        let start = Instant::now();
        for t in 0..steps {
            stack.step_into(
                &mut states,
                &x[t * batch * n_in..(t + 1) * batch * n_in],
                &mut y[t * batch * h..(t + 1) * batch * h],
            )?;
        }
        times.push(start.elapsed().as_secs_f64() * 1e6 / steps as f64);
    }
    times.sort_by(f64::total_cmp);
    let bytes: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![steps, batch, h],
        &bytes,
    )?;
    std::fs::write(out, safetensors::serialize([("output", view)], None)?)?;
    println!(
        "us_per_step={:.2} isa={}",
        times[times.len() / 2],
        stack.isa().name()
    );
    Ok(())
}
