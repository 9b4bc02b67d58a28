//! The long-running service behind `reprise serve`: many speech sessions over WebSocket
//! (Vosk-compatible), music over HTTP, live sources, health and metrics.
//!
//! - [`config`]: the TOML configuration and its checks;
//! - [`protocol`]: the speech protocol's messages (parsing, PCM decoding, replies);
//! - [`engine`]: the inference threads that step every session's model as one batch;
//! - [`session`]: one speech session over a WebSocket;
//! - [`music`]: continuation and rendering requests;
//! - [`server`]: the HTTP/WebSocket endpoints, limits and the bearer token;
//! - [`metrics`]: counters for `GET /metrics`.
//!
//! [`run`] starts everything and returns after SIGTERM or SIGINT, once every open session has
//! been sent the final result of its audio (or `limits.shutdown_seconds` have passed).

pub mod config;
pub mod engine;
pub mod metrics;
pub mod music;
pub mod protocol;
pub mod server;
pub mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

pub use config::{ConfigError, ServeConfig};

use self::engine::{EngineOptions, SpeechEngine};
use self::metrics::Metrics;
use self::music::MusicService;
use self::server::App;
use crate::audio::device::HostChoice;
use crate::audio::{Capture, CaptureConfig};
use crate::music::jam::Jam;
use crate::music::model::MusicModel;
use crate::render::Instruments;
use crate::speech::live::transcribe_live;
use crate::speech::lm::NgramLm;
use crate::speech::{AcousticModel, Event, Recognizer, RecognizerOptions};

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model could not be loaded.
    #[error("{what} {path}: {message}")]
    Model {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    /// No model folder was configured and none of the usual places holds the bundled one.
    #[error(transparent)]
    NoModel(#[from] crate::models::ModelNotFound),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The live microphone could not be opened.
    #[error("live microphone: {0}")]
    Microphone(String),
    /// The live jam could not start.
    #[error("live jam: {0}")]
    Jam(String),
    /// Threads or the runtime could not start, or the server failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the language model is: the given file, else the model folder's `lm.arpa[.gz]`.
pub fn find_lm(dir: &Path) -> Option<PathBuf> {
    ["lm.arpa", "lm.arpa.gz"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn model_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Model {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Everything loaded before the server starts.
struct Loaded {
    engine: Option<SpeechEngine>,
    lm: Option<Arc<NgramLm>>,
    recognizer: RecognizerOptions,
    music: Option<MusicService>,
    microphone_model: Option<AcousticModel>,
    jam_model: Option<MusicModel>,
}

fn load(config: &ServeConfig, metrics: &Arc<Metrics>) -> Result<Loaded, DaemonError> {
    let s = &config.speech;
    let mut recognizer = RecognizerOptions {
        hot_words: config.hot_words()?,
        ..Default::default()
    };
    recognizer.decoder.beam = s.beam;
    recognizer.decoder.lm_weight = s.lm_weight;
    recognizer.decoder.word_bonus = s.word_bonus;
    recognizer.endpoint.trailing_silence = s.endpoint_silence;
    recognizer.endpoint.max_utterance = s.max_utterance;
    let (mut engine, mut lm, mut microphone_model) = (None, None, None);
    if s.enabled {
        let dir = match s.model.clone() {
            Some(dir) => dir,
            None => crate::models::find("speech-en").map_err(DaemonError::NoModel)?,
        };
        let model = AcousticModel::load(&dir, config.speech_format()?)
            .map_err(|e| model_error("speech model", &dir, e))?;
        if !s.no_lm
            && let Some(path) = s.lm.clone().or_else(|| find_lm(&dir))
        {
            lm = Some(Arc::new(
                NgramLm::load(&path).map_err(|e| model_error("language model", &path, e))?,
            ));
        }
        // Checks the options once, so that a bad hot word fails at start-up, not per session.
        Recognizer::new(model.share(1), lm.clone(), &recognizer)
            .map_err(|e| model_error("speech model", &dir, e))?;
        info!(
            model = %dir.display(),
            format = model.format().name(),
            parameters = model.parameter_count(),
            lm = lm.is_some(),
            "speech model loaded"
        );
        if config.live.microphone.is_some() {
            microphone_model = Some(model.share(1));
        }
        let threads = match config.engine.threads {
            0 => cores(),
            n => n,
        };
        engine = Some(SpeechEngine::start(
            model,
            EngineOptions {
                threads,
                max_batch: config.engine.max_batch,
                queue_steps: config.limits.queue_steps,
            },
            Arc::clone(metrics),
        )?);
    }
    let music = if config.music.enabled {
        let dir = match config.music.model.clone() {
            Some(dir) => Some(dir),
            None => match crate::models::find("music-default") {
                Ok(dir) => Some(dir),
                Err(e) => {
                    warn!(error = %e, "no music model: /music/continue is off, /music/render works");
                    None
                }
            },
        };
        let model = match dir {
            Some(dir) => Some(
                MusicModel::load(&dir, config.music_format()?)
                    .map_err(|e| model_error("music model", &dir, e))?,
            ),
            None => None,
        };
        let instruments = match &config.music.soundfont {
            Some(path) => Instruments::SoundFont(
                crate::render::soundfont::load_soundfont(path)
                    .map_err(|e| model_error("SoundFont", path, e))?,
            ),
            None => Instruments::BuiltIn,
        };
        Some(MusicService::new(model, instruments))
    } else {
        None
    };
    let jam_model = match &config.live.jam {
        Some(section) => {
            let dir = match section.model.clone().or_else(|| config.music.model.clone()) {
                Some(dir) => dir,
                None => crate::models::find("music-default").map_err(DaemonError::NoModel)?,
            };
            Some(
                MusicModel::load(&dir, config.music_format()?)
                    .map_err(|e| model_error("jam music model", &dir, e))?,
            )
        }
        None => None,
    };
    Ok(Loaded {
        engine,
        lm,
        recognizer,
        music,
        microphone_model,
        jam_model,
    })
}

/// Transcribes the configured input device on its own thread until `quit`, broadcasting each
/// partial and result as a protocol message.
fn start_microphone(
    section: &config::MicrophoneSection,
    mut rec: Recognizer,
    results: broadcast::Sender<Arc<str>>,
    quit: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    let host = match &section.host {
        Some(h) => h.parse::<HostChoice>().map_err(DaemonError::Microphone)?,
        None => HostChoice::Default,
    };
    let capture_config = CaptureConfig {
        host,
        device_name: section.device.clone(),
        rate: Some(rec.sample_rate()),
        ..Default::default()
    };
    let mut capture =
        Capture::start(&capture_config).map_err(|e| DaemonError::Microphone(e.to_string()))?;
    info!(device = %capture.device_name(), "live microphone open");
    let style = protocol::ResultStyle {
        words: true,
        alternatives: false,
    };
    let thread = std::thread::Builder::new()
        .name("reprise-live-mic".into())
        .spawn(move || {
            let _ftz = crate::rt::ScopedFtz::enable();
            let publish = |e: Event<'_>| {
                let text = match e {
                    Event::Partial(t) => protocol::partial_json(t),
                    Event::Final(u) => {
                        protocol::result_json(&[protocol::FinalResult::from(u)], style)
                    }
                };
                // No subscribers is not an error.
                let _ = results.send(Arc::from(text));
            };
            let result = transcribe_live(&mut capture, &mut rec, &quit, None, &mut |e, _| {
                publish(e);
                true
            });
            capture.stop();
            match result {
                Ok(()) if quit.load(Ordering::Relaxed) => info!("live microphone stopped"),
                Ok(()) => warn!("live microphone stopped: the input ended"),
                Err(e) => warn!(error = %e, "live microphone stopped"),
            }
            // Dropping `results` here closes the channel: subscribers are told, and
            // /health reports the live microphone as down.
        })?;
    Ok(thread)
}

/// Starts the logger at `level` (once per process; later calls do nothing).
pub fn init_logging(level: &str) {
    let level = level
        .parse::<tracing::Level>()
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs the daemon until SIGTERM or SIGINT. `ready` is called with the bound address once the
/// server accepts connections.
pub fn run(config: ServeConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), DaemonError> {
    config.validate()?;
    let token = config.token()?;
    let metrics = Arc::new(Metrics::default());
    let loaded = load(&config, &metrics)?;
    let io_threads = match config.engine.io_threads {
        0 => cores(),
        n => n,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads)
        .thread_name("reprise-io")
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let quit = Arc::new(AtomicBool::new(false));
    let (live, microphone) = match (&config.live.microphone, loaded.microphone_model) {
        (Some(section), Some(model)) => {
            let (tx, _) = broadcast::channel(64);
            let rec = Recognizer::new(model, loaded.lm.clone(), &loaded.recognizer)
                .map_err(|e| DaemonError::Microphone(e.to_string()))?;
            // The thread holds the only sender: the channel closes when it ends.
            let live = tx.downgrade();
            let thread = start_microphone(section, rec, tx, Arc::clone(&quit))?;
            (Some(live), Some(thread))
        }
        _ => (None, None),
    };
    let jam = match (&config.live.jam, loaded.jam_model) {
        (Some(section), Some(model)) => {
            let jam = Jam::start(model, section.options()?)
                .map_err(|e| DaemonError::Jam(e.to_string()))?;
            info!(
                input = jam.input_name(),
                output = jam.output_name(),
                "live jam started"
            );
            Some(jam)
        }
        _ => None,
    };
    let jam = Arc::new(Mutex::new(jam));
    let shutdown_seconds = config.limits.shutdown_seconds;
    let listen = config.listen;
    let app = Arc::new(App::new(
        config,
        loaded.engine,
        loaded.lm,
        loaded.recognizer,
        loaded.music,
        Arc::clone(&metrics),
        stop_rx.clone(),
        live,
        Arc::clone(&jam),
        token,
    ));
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| DaemonError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        info!(%addr, "listening");
        ready(addr);
        tokio::spawn(server::measure(
            Arc::clone(&metrics),
            Duration::from_secs(5),
            stop_rx.clone(),
        ));
        let router = server::router(Arc::clone(&app));
        let server = tokio::spawn(server::serve(
            listener,
            router,
            Arc::clone(&app),
            stop_rx.clone(),
        ));
        wait_for_signal().await?;
        info!("stopping: flushing the final result of every session");
        let _ = stop_tx.send(true);
        quit.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs_f64(shutdown_seconds);
        while metrics.sessions_active.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = metrics.sessions_active.get();
        if left > 0 {
            warn!(sessions = left, "stopping with sessions still open");
        }
        match tokio::time::timeout(Duration::from_secs(2), server).await {
            Ok(Ok(Err(e))) => Err(DaemonError::Io(e)),
            _ => Ok(()),
        }
    });
    if let Some(thread) = microphone {
        let _ = thread.join();
    }
    let jam = jam.lock().ok().and_then(|mut j| j.take());
    if let Some(jam) = jam {
        // Stopping sends every note-off and All Notes Off before the ports close.
        match jam.stop() {
            Ok(s) => info!(
                notes_in = s.notes_in,
                notes_out = s.notes_out,
                responses = s.responses,
                late = s.late,
                "live jam stopped"
            ),
            Err(e) => warn!(error = %e, "live jam stopped with an error"),
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    // The inference threads stop once the last session is gone.
    drop(app);
    info!("stopped");
    result
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = int.recv() => info!("SIGINT"),
    }
    Ok(())
}
