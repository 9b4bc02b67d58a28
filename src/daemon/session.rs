//! One speech session over a WebSocket, speaking the Vosk protocol ([`super::protocol`]).
//!
//! The session task decodes the client's PCM, resamples it to the model's rate, runs the
//! front end, and queues the steps for its inference thread ([`super::engine`]); after each
//! client message it asks for the reply (partial or result) and sends it. It reads the next
//! message only after that reply is sent, so a client that sends faster than the daemon can
//! recognise, or does not read its replies, is slowed down by TCP (back-pressure), while the
//! inference thread never waits for it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use tracing::{debug, info, warn};

use super::engine::{EngineGone, Reply, StreamHandle};
use super::protocol::{
    self, ClientText, ProtocolError, ResultStyle, StreamConfig, decode_pcm16, error_json,
    partial_json, result_json,
};
use super::server::App;
use crate::audio::resample::BlockResampler;
use crate::speech::ctc::HotWord;
use crate::speech::features::FrontEnd;
use crate::speech::recognizer::Transcriber;

/// WebSocket close codes.
mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SERVER_ERROR: u16 = 1011;
}

/// Input samples resampled and analysed at a time; bounds the steps staged between awaits.
const BLOCK: usize = 4096;

/// The audio path of a session, made when its first audio (or end) arrives.
struct Stream {
    handle: StreamHandle,
    resampler: BlockResampler,
    front_end: FrontEnd,
    pcm: Vec<f32>,
    staging: Vec<f32>,
    carry: Option<u8>,
}

impl Stream {
    /// Resamples, analyses and queues `samples`; with `finish`, flushes the resampler's tail.
    async fn feed(&mut self, samples: &[f32], finish: bool) -> Result<(), EngineGone> {
        let mut blocks = samples.chunks(BLOCK).peekable();
        if samples.is_empty() && !finish {
            return Ok(());
        }
        loop {
            let block = blocks.next();
            let last = blocks.peek().is_none();
            self.staging.clear();
            let Stream {
                resampler,
                front_end,
                staging,
                ..
            } = self;
            let mut analyse = |out: &[f32]| {
                front_end.push(out, &mut |step, level| {
                    staging.extend_from_slice(step);
                    staging.push(level);
                })
            };
            if let Some(block) = block {
                resampler.process(block, &mut analyse);
            }
            if finish && last {
                resampler.finish(&mut analyse);
            }
            self.handle.push_steps(&self.staging).await?;
            if last {
                return Ok(());
            }
        }
    }
}

/// Why a session ends.
enum End {
    /// The client closed, went away or sent `eof`; nothing more to send.
    Done,
    /// Tell the client why, then close with this code.
    Error(u16, String),
}

struct Session {
    app: Arc<App>,
    peer: String,
    config: StreamConfig,
    stream: Option<Stream>,
}

impl Session {
    fn style(&self) -> ResultStyle {
        ResultStyle {
            words: self.config.words.unwrap_or(true),
            alternatives: self.config.max_alternatives.unwrap_or(0) > 0,
        }
    }

    /// Builds the audio path: resampler, front end and a slot on an inference thread.
    fn open(&self) -> Result<Stream, End> {
        let engine = self
            .app
            .engine
            .as_ref()
            .ok_or_else(|| End::Error(close::POLICY, "speech is not served here".into()))?;
        let model = engine.config();
        let rate = self
            .config
            .sample_rate
            .unwrap_or(self.app.config.speech.default_sample_rate);
        let mut opts = self.app.recognizer.clone();
        opts.alternatives = self.config.max_alternatives.unwrap_or(0) as usize;
        if let Some(phrases) = &self.config.phrase_list {
            let vocabulary: Vec<char> = model
                .vocabulary
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != model.blank)
                .filter_map(|(_, s)| s.chars().next())
                .collect();
            for word in protocol::phrase_words(phrases) {
                // Words the model cannot spell are left out, as Vosk leaves out words that
                // are not in its vocabulary.
                if word.chars().all(|c| c != ' ' && vocabulary.contains(&c))
                    && !opts.hot_words.iter().any(|h| h.word == word)
                {
                    opts.hot_words.push(HotWord {
                        word,
                        boost: self.app.config.speech.phrase_boost,
                    });
                }
            }
        }
        let bad = |e: String| End::Error(close::INVALID_DATA, e);
        let transcriber =
            Transcriber::new(model, self.app.lm.clone(), &opts).map_err(|e| bad(e.to_string()))?;
        let resampler = BlockResampler::new(rate, model.front_end.sample_rate)
            .map_err(|e| bad(e.to_string()))?;
        let front_end = FrontEnd::new(model.front_end.clone()).map_err(bad)?;
        let handle = engine
            .open(transcriber)
            .map_err(|e| End::Error(close::SERVER_ERROR, e.to_string()))?;
        let step_len = handle.step_len();
        debug!(peer = %self.peer, rate, hot_words = opts.hot_words.len(), "stream opened");
        Ok(Stream {
            handle,
            resampler,
            front_end,
            pcm: Vec::with_capacity(BLOCK),
            staging: Vec::with_capacity(step_len * 16),
            carry: None,
        })
    }

    fn stream(&mut self) -> Result<&mut Stream, End> {
        if self.stream.is_none() {
            self.stream = Some(self.open()?);
        }
        self.stream
            .as_mut()
            .ok_or_else(|| End::Error(close::SERVER_ERROR, "no stream".into()))
    }

    fn render(&mut self, reply: Reply) -> Result<String, End> {
        let metrics = &self.app.metrics;
        match reply {
            Reply::Partial(text) => {
                let json = partial_json(&text);
                if let Some(stream) = self.stream.as_mut() {
                    stream.handle.recycle(text);
                }
                Ok(json)
            }
            Reply::Result(finals) | Reply::Final(finals) => {
                metrics
                    .results_total
                    .add(finals.iter().filter(|f| !f.text.is_empty()).count() as u64);
                Ok(result_json(&finals, self.style()))
            }
            Reply::Space => Ok(partial_json("")),
            Reply::Failed(e) => Err(End::Error(close::SERVER_ERROR, e)),
        }
    }

    /// Handles one client message; returns the reply to send, if any.
    async fn handle(&mut self, message: Message) -> Result<Option<String>, End> {
        let gone = |e: EngineGone| End::Error(close::SERVER_ERROR, e.to_string());
        match message {
            Message::Binary(bytes) => {
                let max = self.app.config.limits.max_message_bytes;
                if bytes.len() > max {
                    self.app.metrics.errors_too_large.inc();
                    return Err(End::Error(
                        close::TOO_BIG,
                        format!(
                            "message of {} bytes is over the limit of {max}",
                            bytes.len()
                        ),
                    ));
                }
                let rate = self
                    .config
                    .sample_rate
                    .unwrap_or(self.app.config.speech.default_sample_rate);
                self.app
                    .metrics
                    .audio_seconds_in
                    .add(bytes.len() as f64 / 2.0 / rate as f64);
                let stream = self.stream()?;
                let mut pcm = std::mem::take(&mut stream.pcm);
                decode_pcm16(&bytes, &mut stream.carry, &mut pcm);
                let fed = stream.feed(&pcm, false).await;
                stream.pcm = pcm;
                fed.map_err(gone)?;
                let reply = stream.handle.reply().await.map_err(gone)?;
                self.render(reply).map(Some)
            }
            Message::Text(text) => {
                let max = self.app.config.limits.max_message_bytes;
                if text.len() > max {
                    self.app.metrics.errors_too_large.inc();
                    return Err(End::Error(
                        close::TOO_BIG,
                        format!("message of {} bytes is over the limit of {max}", text.len()),
                    ));
                }
                let parsed = protocol::parse_text(text.as_str()).map_err(|ProtocolError(e)| {
                    self.app.metrics.errors_protocol.inc();
                    End::Error(close::INVALID_DATA, e)
                })?;
                let eof = parsed == ClientText::Eof;
                match parsed {
                    ClientText::Config(config) => {
                        // As in Vosk's server, whose recognizer is made with the first audio:
                        // a valid config after audio is taken and changes nothing.
                        if self.stream.is_some() {
                            debug!(peer = %self.peer, ?config, "config after audio ignored");
                        } else {
                            debug!(peer = %self.peer, ?config, "config");
                            self.config = config;
                        }
                        Ok(None)
                    }
                    ClientText::Eof | ClientText::Reset => {
                        let stream = self.stream()?;
                        stream.feed(&[], true).await.map_err(gone)?;
                        let reply = stream.handle.finish().await.map_err(gone)?;
                        let text = self.render(reply)?;
                        if eof {
                            Err(End::Error(close::NORMAL, text))
                        } else {
                            Ok(Some(text))
                        }
                    }
                }
            }
            Message::Close(_) => Err(End::Done),
            Message::Ping(_) | Message::Pong(_) => Ok(None),
        }
    }

    /// The final result of the audio so far (on shutdown).
    async fn flush(&mut self) -> Option<String> {
        let stream = self.stream.as_mut()?;
        stream.feed(&[], true).await.ok()?;
        let reply = stream.handle.finish().await.ok()?;
        self.render(reply).ok()
    }
}

async fn send(app: &App, socket: &mut WebSocket, text: String) -> bool {
    let timeout = Duration::from_secs_f64(app.config.limits.send_timeout_seconds);
    match tokio::time::timeout(timeout, socket.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => {
            app.metrics.messages_out.inc();
            true
        }
        Ok(Err(_)) => false,
        Err(_) => {
            app.metrics.dropped_slow_clients.inc();
            false
        }
    }
}

/// Sends a close frame and waits (briefly) for the client's, so the connection ends cleanly.
async fn close_with(app: &App, socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.chars().take(100).collect::<String>()),
    };
    let timeout = Duration::from_secs_f64(app.config.limits.send_timeout_seconds);
    if let Ok(Ok(())) =
        tokio::time::timeout(timeout, socket.send(Message::Close(Some(frame)))).await
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
}

/// Runs a session until the client ends it, an error ends it, or the daemon stops.
pub async fn run(mut socket: WebSocket, app: Arc<App>, peer: String) {
    let mut shutdown = app.shutdown.clone();
    let idle = Duration::from_secs_f64(app.config.limits.idle_seconds);
    let mut session = Session {
        app: Arc::clone(&app),
        peer: peer.clone(),
        config: StreamConfig::default(),
        stream: None,
    };
    info!(%peer, "speech session opened");
    // Only the client's own messages count as activity: pings and pongs do not (a client
    // library that pings every 20 s would otherwise never be idle).
    let mut idle_at = tokio::time::Instant::now() + idle;
    let end = loop {
        if *shutdown.borrow() {
            match session.flush().await {
                Some(text) => {
                    send(&app, &mut socket, text).await;
                }
                None => {
                    send(&app, &mut socket, result_json(&[], session.style())).await;
                }
            }
            close_with(
                &app,
                &mut socket,
                close::GOING_AWAY,
                "the server is stopping",
            )
            .await;
            break End::Done;
        }
        let message = tokio::select! {
            m = tokio::time::timeout_at(idle_at, socket.recv()) => m,
            _ = shutdown.changed() => continue,
        };
        let message = match message {
            Err(_) => {
                app.metrics.errors_idle.inc();
                break End::Error(
                    close::POLICY,
                    format!("no message for {} s", app.config.limits.idle_seconds),
                );
            }
            Ok(None) => break End::Done,
            Ok(Some(Err(e))) => {
                let text = e.to_string();
                if text.contains("Space limit exceeded") || text.contains("too long") {
                    app.metrics.errors_too_large.inc();
                    break End::Error(close::TOO_BIG, text);
                }
                debug!(%peer, error = %text, "connection error");
                break End::Done;
            }
            Ok(Some(Ok(m))) => m,
        };
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            idle_at = tokio::time::Instant::now() + idle;
        }
        app.metrics.messages_in.inc();
        match session.handle(message).await {
            Ok(Some(reply)) => {
                if !send(&app, &mut socket, reply).await {
                    break End::Done;
                }
            }
            Ok(None) => {}
            Err(End::Error(close::NORMAL, final_text)) => {
                // eof: the final result, then a normal close.
                if send(&app, &mut socket, final_text).await {
                    close_with(&app, &mut socket, close::NORMAL, "").await;
                }
                break End::Done;
            }
            Err(end) => break end,
        }
    };
    if let End::Error(code, message) = end {
        warn!(%peer, code, %message, "speech session ended with an error");
        if send(&app, &mut socket, error_json(&message)).await {
            close_with(&app, &mut socket, code, &message).await;
        }
    } else {
        info!(%peer, "speech session closed");
    }
}
