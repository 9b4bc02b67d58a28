//! `reprise serve`: the daemon.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use reprise::daemon::{self, ServeConfig};

/// Arguments of `reprise serve`; each flag overrides the configuration file's key.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (every key is optional; see the README's Serve section).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (`listen`); default 127.0.0.1:2700.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Speech model folder (`speech.model`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Decode without a language model (`speech.no_lm`).
    #[arg(long)]
    no_lm: bool,
    /// Music model folder (`music.model`).
    #[arg(long)]
    music_model: Option<PathBuf>,
    /// SoundFont for rendering (`music.soundfont`).
    #[arg(long)]
    soundfont: Option<PathBuf>,
    /// Speech sessions open at once (`limits.max_sessions`).
    #[arg(long)]
    max_sessions: Option<usize>,
    /// Inference threads (`engine.threads`; 0: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// A file whose first line is the bearer token clients must send (`auth_token_file`).
    #[arg(long)]
    auth_token_file: Option<PathBuf>,
    /// error, warn, info, debug or trace (`log_level`).
    #[arg(long)]
    log_level: Option<String>,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::load(path)?,
        None => ServeConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.model {
        config.speech.model = Some(v);
    }
    if args.no_lm {
        config.speech.no_lm = true;
    }
    if let Some(v) = args.music_model {
        config.music.model = Some(v);
    }
    if let Some(v) = args.soundfont {
        config.music.soundfont = Some(v);
    }
    if let Some(v) = args.max_sessions {
        config.limits.max_sessions = v;
    }
    if let Some(v) = args.threads {
        config.engine.threads = v;
    }
    if let Some(v) = args.auth_token_file {
        config.auth_token = None;
        config.auth_token_file = Some(v);
    }
    if let Some(v) = args.log_level {
        config.log_level = v;
    }
    daemon::init_logging(&config.log_level);
    daemon::run(config, |addr| {
        // The first line on stdout says where the daemon listens (port 0 picks a free one).
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "reprise serve: listening on {addr}");
        let _ = out.flush();
    })
    .context("reprise serve")
}
