//! `reprise listen` and `reprise transcribe`: live and file transcription.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use reprise::audio::device::HostChoice;
use reprise::audio::{BlockSource, Capture, CaptureConfig, open_file};
use reprise::engine::Format;
use reprise::speech::ctc::HotWord;
use reprise::speech::live::transcribe_live;
use reprise::speech::lm::NgramLm;
use reprise::speech::output::{self, Segment, Transcript};
use reprise::speech::{AcousticModel, Event, Recognizer, RecognizerOptions};

/// Options shared by `listen` and `transcribe`.
#[derive(clap::Args)]
pub struct RecognizerArgs {
    /// Model folder; the bundled `models/speech-en` if absent.
    #[arg(long)]
    model: Option<PathBuf>,
    /// A word to favour, with an optional boost in nats (default 5): `--hotword reprise:8`.
    /// Repeatable.
    #[arg(long = "hotword", value_name = "WORD:BOOST")]
    hot_words: Vec<HotWord>,
    /// Decode without the language model.
    #[arg(long)]
    no_lm: bool,
    /// ARPA language model (`.arpa` or `.arpa.gz`); the model folder's `lm.arpa[.gz]` (or its only
    /// ARPA file) if absent.
    #[arg(long, conflicts_with = "no_lm")]
    lm: Option<PathBuf>,
    /// Beam width; 1 decodes greedily (best path: no language model, no hot words).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    beam: u16,
    /// Weight of the language model.
    #[arg(long, default_value_t = 0.5)]
    lm_weight: f32,
    /// Score added per word (raise it when words run together, lower it when they split).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    word_bonus: f32,
    /// Weight format to run the model in (f32, bf16, int8); the model's own if absent.
    #[arg(long)]
    weights: Option<Format>,
    /// Seconds of silence that end an utterance.
    #[arg(long, default_value_t = 0.8)]
    endpoint_silence: f32,
    /// Longest utterance in seconds.
    #[arg(long, default_value_t = 20.0)]
    max_utterance: f32,
    /// With `--format jsonl`, give each utterance its N best distinct texts (with the share of
    /// probability of each) as `alternatives`.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=100))]
    alternatives: u16,
}

fn find_lm(dir: &Path) -> Option<PathBuf> {
    for name in ["lm.arpa", "lm.arpa.gz"] {
        let preferred = dir.join(name);
        if preferred.is_file() {
            return Some(preferred);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".arpa") || n.ends_with(".arpa.gz"))
        })
        .collect();
    found.sort();
    (found.len() == 1).then(|| found.remove(0))
}

impl RecognizerArgs {
    /// Loads the model and language model and builds a recognizer.
    fn recognizer(&self) -> anyhow::Result<Recognizer> {
        let dir = match &self.model {
            Some(dir) => dir.clone(),
            None => reprise::models::find("speech-en")?,
        };
        if !dir.join("config.json").exists() {
            bail!(
                "no speech model in {}: export one with `models/training/speech/export.py` \
                 (see models/training/README.md), or pass --model DIR",
                dir.display()
            );
        }
        let model = AcousticModel::load(&dir, self.weights)
            .with_context(|| format!("loading the speech model {}", dir.display()))?;
        let lm = if self.no_lm {
            None
        } else {
            match self.lm.clone().or_else(|| find_lm(&dir)) {
                Some(path) => Some(Arc::new(NgramLm::load(&path).with_context(|| {
                    format!("loading the language model {}", path.display())
                })?)),
                None => None,
            }
        };
        let mut opts = RecognizerOptions {
            hot_words: self.hot_words.clone(),
            ..Default::default()
        };
        opts.decoder.beam = self.beam as usize;
        opts.decoder.lm_weight = self.lm_weight;
        opts.decoder.word_bonus = self.word_bonus;
        opts.endpoint.trailing_silence = self.endpoint_silence;
        opts.endpoint.max_utterance = self.max_utterance;
        opts.alternatives = self.alternatives as usize;
        Ok(Recognizer::new(model, lm, &opts)?)
    }
}

/// Arguments of `reprise transcribe`.
#[derive(clap::Args)]
pub struct TranscribeArgs {
    /// Audio files: WAV (any rate and channel count), FLAC, MP3 or Ogg Vorbis.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: output::Format,
    /// Write here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print the audio length, processing time and real-time factor of each file on stderr.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    recognizer: RecognizerArgs,
}

fn transcribe_file(
    rec: &mut Recognizer,
    path: &Path,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Transcript> {
    rec.reset();
    let mut source = open_file(path, Some(rec.sample_rate()), 0.1)?;
    let mut segments = Vec::new();
    let mut sink = |e: Event<'_>| {
        if let Event::Final(u) = e {
            segments.push(Segment::from(u));
        }
    };
    let mut blocks = 0u32;
    while let Some(block) = source.next_block()? {
        rec.accept(block, &mut sink)?;
        blocks += 1;
        if let Some(bar) = bar
            && blocks.is_multiple_of(20)
        {
            bar.set_position((source.progress() * 1000.0) as u64);
        }
    }
    rec.flush(&mut sink);
    Ok(Transcript {
        file: path.display().to_string(),
        segments,
    })
}

pub fn transcribe(args: TranscribeArgs) -> anyhow::Result<()> {
    if matches!(args.format, output::Format::Srt | output::Format::Vtt) && args.files.len() > 1 {
        bail!("--format srt and vtt take one file (subtitle times restart with each file)");
    }
    let loading = Instant::now();
    let mut rec = args.recognizer.recognizer()?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let terminal = std::io::stderr().is_terminal();
    let several = args.files.len() > 1;
    let mut failed = 0;
    for path in &args.files {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(1000);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:40}] {percent:>3}% {elapsed}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(path.display().to_string());
            bar
        });
        let start = Instant::now();
        let result = transcribe_file(&mut rec, path, bar.as_ref());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(t) => {
                let secs = start.elapsed().as_secs_f64();
                if args.stats {
                    let audio = rec.seconds();
                    eprintln!(
                        "{}: {audio:.2} s of audio in {secs:.3} s (+{load_seconds:.3} s loading): \
                         real-time factor {:.4}",
                        path.display(),
                        (secs + load_seconds) / audio.max(1e-9)
                    );
                }
                let text = t.render(args.format);
                if several && args.format == output::Format::Text {
                    write!(out, "{}: {text}", t.file)?;
                } else {
                    out.write_all(text.as_bytes())?;
                }
                out.flush()?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("reprise: error: {}: {e:#}", path.display());
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} file(s) could not be transcribed",
            args.files.len()
        );
    }
    Ok(())
}

/// Arguments of `reprise listen`.
#[derive(clap::Args)]
pub struct ListenArgs {
    /// Input device name (exact, or a unique part of it); the default input if absent.
    #[arg(long)]
    device: Option<String>,
    /// Output format: text (partials in place on a terminal, finals one per line) or jsonl
    /// (one object per partial and final).
    #[arg(long, value_parser = ["text", "jsonl"], default_value = "text")]
    format: String,
    /// Stop after this many seconds (runs until interrupted otherwise).
    #[arg(long)]
    seconds: Option<f64>,
    #[command(flatten)]
    device_config: super::audio::DeviceConfigArgs,
    #[command(flatten)]
    recognizer: RecognizerArgs,
}

/// What the speech thread sends to the output thread.
enum Message {
    Partial(String, f64),
    Final(Segment),
    Failed(anyhow::Error),
}

pub fn listen(host: HostChoice, args: ListenArgs) -> anyhow::Result<()> {
    let mut rec = args.recognizer.recognizer()?;
    let config = CaptureConfig {
        host,
        device_name: args.device.clone(),
        rate: Some(rec.sample_rate()),
        device: args.device_config.request(),
        ..Default::default()
    };
    // Ctrl-C and SIGTERM raise a flag; the speech thread sees it after the current block,
    // flushes the utterance in progress (its final is printed) and stops.
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, quit.clone()).context("installing signal handlers")?;
    }
    let mut capture = Capture::start(&config).context("opening the microphone")?;
    eprintln!(
        "listening on {} ({}); finals are printed as utterances end, Ctrl-C stops",
        capture.device_name(),
        capture.device_config()
    );
    let (tx, rx) = crossbeam_channel::bounded::<Message>(256);
    let limit = args.seconds;
    let speech = std::thread::Builder::new()
        .name("reprise-speech".into())
        .spawn(move || {
            let _ftz = reprise::rt::ScopedFtz::enable();
            let send = |e: Event<'_>, now: f64| {
                let m = match e {
                    Event::Partial(t) => Message::Partial(t.to_owned(), now),
                    Event::Final(u) => Message::Final(Segment::from(u)),
                };
                tx.send(m).is_ok()
            };
            let result = transcribe_live(&mut capture, &mut rec, &quit, limit, &mut |e, now| {
                send(e, now)
            });
            capture.stop();
            if let Err(e) = result {
                let _ = tx.send(Message::Failed(e.into()));
            }
        })
        .context("starting the speech thread")?;
    let jsonl = args.format == "jsonl";
    let terminal = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let mut shown = false;
    let mut failure = None;
    while let Ok(m) = rx.recv_timeout(Duration::from_secs(3600)) {
        match m {
            Message::Partial(text, at) => {
                if jsonl {
                    let line = serde_json::json!({"type": "partial", "time": at, "text": text});
                    writeln!(stdout, "{line}")?;
                } else if terminal {
                    write!(stdout, "\r\x1b[2K{text}")?;
                    shown = true;
                }
            }
            Message::Final(seg) => {
                if jsonl {
                    let line = serde_json::json!({
                        "type": "final", "start": seg.start, "end": seg.end,
                        "text": seg.text, "words": seg.words,
                    });
                    writeln!(stdout, "{line}")?;
                } else {
                    if shown {
                        write!(stdout, "\r\x1b[2K")?;
                        shown = false;
                    }
                    writeln!(stdout, "{}", seg.text)?;
                }
            }
            Message::Failed(e) => failure = Some(e),
        }
        stdout.flush()?;
    }
    if shown {
        writeln!(stdout)?;
    }
    let _ = speech.join();
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
