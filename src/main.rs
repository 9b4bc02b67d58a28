//! The `reprise` command line.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use reprise::audio::device::HostChoice;

// `reprise continue --render` fills in render's arguments (`crate::RenderArgs`).
use cli::render::{RenderArgs, render_file};

#[derive(Parser)]
#[command(
    name = "reprise",
    version,
    about = "Listens and plays along in real time"
)]
struct Cli {
    /// Audio host: default, alsa or jack (jack needs a build with --features jack).
    #[arg(long, global = true, default_value = "default")]
    host: HostChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List audio devices with their default configurations, and MIDI ports.
    Devices,
    /// Record from an input device into a mono WAV file.
    Record(cli::audio::RecordArgs),
    /// Play a WAV file on an output device (mixed down to mono, copied to every channel).
    Play(cli::audio::PlayArgs),
    /// Transcribe the microphone live: partial results in place, finals as utterances end.
    Listen(cli::speech::ListenArgs),
    /// Transcribe audio files (WAV, FLAC, MP3, Ogg Vorbis) to text, JSON lines, SRT or WebVTT.
    Transcribe(cli::speech::TranscribeArgs),
    /// Continue a seed MIDI file with the music model and write the result as MIDI.
    Continue(cli::music::ContinueArgs),
    /// Music model tools (evaluation).
    Music {
        #[command(subcommand)]
        command: cli::music::MusicCommand,
    },
    /// Call and response with a DAW over MIDI ports: listen to a phrase, answer in time.
    Jam(cli::jam::JamArgs),
    /// Render a MIDI file to a stereo WAV file, with a SoundFont or the built-in synthesizer.
    Render(RenderArgs),
    /// Run the daemon: speech sessions over WebSocket (Vosk protocol), music over HTTP,
    /// health and metrics, until SIGTERM or SIGINT.
    Serve(cli::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => cli::audio::devices(cli.host),
        Command::Record(args) => cli::audio::record(cli.host, args),
        Command::Play(args) => cli::audio::play(cli.host, args),
        Command::Listen(args) => cli::speech::listen(cli.host, args),
        Command::Transcribe(args) => cli::speech::transcribe(args),
        Command::Continue(args) => cli::music::continue_command(args),
        Command::Music { command } => cli::music::run(command),
        Command::Render(args) => render_file(&args),
        Command::Jam(args) => cli::jam::jam_command(args),
        Command::Serve(args) => cli::serve::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reprise: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
