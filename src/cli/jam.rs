//! `reprise jam`: call and response with a DAW.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use reprise::music::jam::{CcMap, Jam, JamOptions, StatusSnapshot};
use reprise::music::live::PortSpec;

use super::music::GenerationArgs;

/// Arguments of `reprise jam`.
#[derive(clap::Args)]
pub struct JamArgs {
    /// Input port to listen to (the DAW's MIDI output): exact name or a unique part of it.
    #[arg(long = "in", value_name = "PORT")]
    input: Option<String>,
    /// Output port to answer on (the DAW's MIDI input).
    #[arg(long = "out", value_name = "PORT")]
    output: Option<String>,
    /// Create ports "reprise in" and "reprise out" for the DAW to connect to (the default
    /// for a direction given no port).
    #[arg(long = "virtual")]
    virtual_ports: bool,
    /// Tempo when the DAW sends no MIDI clock (the grid starts when jam starts).
    #[arg(long, default_value_t = 120.0)]
    bpm: f64,
    /// Response length in bars.
    #[arg(long, default_value_t = 2)]
    bars: u32,
    /// Quarter notes per bar.
    #[arg(long, default_value_t = 4)]
    beats_per_bar: u8,
    /// Bars of silence (no note held) that end a call.
    #[arg(long, default_value_t = 1)]
    call_end_bars: u32,
    #[command(flatten)]
    generation: GenerationArgs,
    /// Output MIDI channel, 1..=16.
    #[arg(long, default_value_t = 1)]
    channel: u8,
    /// Shift every output time by this many milliseconds (negative: earlier, to make up for
    /// output latency).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    offset_ms: f64,
    /// Repeat the last response until a new call.
    #[arg(long = "loop")]
    looping: bool,
    /// Listen for the next call while answering (otherwise input during a response is
    /// ignored, or with --loop ends the loop and starts a new call).
    #[arg(long)]
    overlap: bool,
    /// No response note-ons while you hold notes; sounding response notes are stopped.
    #[arg(long)]
    mute_while_playing: bool,
    /// Control change that ends the call now (value ≥ 64).
    #[arg(long, default_value_t = 20)]
    cc_end_call: u8,
    /// Control change for the temperature (0.2 at 0 to 2.0 at 127).
    #[arg(long, default_value_t = 21)]
    cc_temperature: u8,
    /// Control change for the response length (1 bar at 0 to 8 bars at 127).
    #[arg(long, default_value_t = 22)]
    cc_bars: u8,
    /// Control change that draws a new random seed (value ≥ 64).
    #[arg(long, default_value_t = 23)]
    cc_variation: u8,
    /// Control change that stops every note (value ≥ 64).
    #[arg(long, default_value_t = 24)]
    cc_panic: u8,
}

pub fn jam_command(args: JamArgs) -> anyhow::Result<()> {
    if !(1..=16).contains(&args.channel) {
        anyhow::bail!("--channel must be 1..=16 (got {})", args.channel);
    }
    let opts = JamOptions {
        input: PortSpec::named_or_virtual(args.input.as_deref(), "reprise in"),
        output: PortSpec::named_or_virtual(args.output.as_deref(), "reprise out"),
        bpm: args.bpm,
        bars: args.bars,
        beats_per_bar: args.beats_per_bar,
        call_end_bars: args.call_end_bars,
        sampling: args.generation.sampling(),
        scale: args.generation.scale,
        max_voices: args.generation.max_voices.max(),
        fit_voices: args.generation.max_voices.fit(),
        channel: args.channel - 1,
        offset_ms: args.offset_ms,
        looping: args.looping,
        overlap: args.overlap,
        mute_while_playing: args.mute_while_playing,
        cc: CcMap {
            end_call: Some(args.cc_end_call),
            temperature: Some(args.cc_temperature),
            bars: Some(args.cc_bars),
            variation: Some(args.cc_variation),
            panic: Some(args.cc_panic),
        },
        seed: args.generation.seed,
    };
    opts.validate()?;
    let model = args.generation.load_model()?;
    // Ctrl-C and SIGTERM only raise a flag (signal-hook's flag handlers are async-signal
    // safe); this thread sees it and stops the jam, which sends every note-off.
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, quit.clone()).context("installing signal handlers")?;
    }
    let jam = Jam::start(model, opts)?;
    eprintln!(
        "reprise jam: listening on {:?}, answering on {:?} (Ctrl-C to stop)",
        jam.input_name(),
        jam.output_name()
    );
    let tty = std::io::stderr().is_terminal();
    while !quit.load(Ordering::Relaxed) && !jam.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\x1b[K", jam.status());
            let _ = err.flush();
        }
    }
    if tty {
        eprintln!();
    }
    let status = jam.stop()?;
    summary(&status);
    Ok(())
}

fn summary(s: &StatusSnapshot) {
    eprintln!(
        "reprise jam: {} notes in, {} notes out, {} responses; call end to response ready: \
         last {:.1} ms, max {:.1} ms; {} late, {} dropped; output {}",
        s.notes_in,
        s.notes_out,
        s.responses,
        s.last_ready_us as f64 / 1e3,
        s.max_ready_us as f64 / 1e3,
        s.late,
        s.dropped,
        if s.realtime {
            "at real-time priority"
        } else {
            "at normal priority (no permission for real-time, or JACK not in real-time mode)"
        },
    );
}
