//! The HTTP and WebSocket server: one port for speech sessions (`GET /` and `GET /speech`,
//! upgraded to WebSocket), the live microphone (`GET /live`), music (`POST /music/continue`,
//! `POST /music/render`), `GET /health` and `GET /metrics`.
//!
//! axum on tokio: one event loop serves every connection, WebSocket upgrades included, and
//! sessions are cheap tasks; the CPU-heavy work runs elsewhere (speech steps on the inference
//! threads, music on the blocking pool).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{Semaphore, broadcast, watch};
use tracing::{debug, error, info, warn};

use super::config::ServeConfig;
use super::engine::SpeechEngine;
use super::metrics::Metrics;
use super::music::{
    ContinueQuery, JobControl, MusicRequestError, MusicService, RenderQuery, StopReason,
};
use super::session;
use crate::music::jam::Jam;
use crate::speech::RecognizerOptions;
use crate::speech::lm::NgramLm;

/// What every request handler shares.
pub struct App {
    /// The configuration, command-line flags applied.
    pub config: ServeConfig,
    /// The inference threads (None when speech is off).
    pub engine: Option<SpeechEngine>,
    /// The language model, shared by all sessions.
    pub lm: Option<Arc<NgramLm>>,
    /// Decoder options of every session (a session adds its phrase list's hot words).
    pub recognizer: RecognizerOptions,
    /// Continuation and rendering (None when music is off).
    pub music: Option<MusicService>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Becomes true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// Results of the live microphone, as protocol messages. The microphone's thread holds
    /// the channel's only sender, so this fails to upgrade once the thread has ended.
    pub live: Option<broadcast::WeakSender<Arc<str>>>,
    /// The live jam, while it runs (its status is read for `/health`; the lock is never
    /// taken on the jam's own threads).
    pub jam: Arc<Mutex<Option<Jam>>>,
    token: Option<String>,
    sessions: Arc<Semaphore>,
    music_jobs: Arc<Semaphore>,
}

impl App {
    /// Shared state for the handlers.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ServeConfig,
        engine: Option<SpeechEngine>,
        lm: Option<Arc<NgramLm>>,
        recognizer: RecognizerOptions,
        music: Option<MusicService>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
        live: Option<broadcast::WeakSender<Arc<str>>>,
        jam: Arc<Mutex<Option<Jam>>>,
        token: Option<String>,
    ) -> App {
        App {
            sessions: Arc::new(Semaphore::new(config.limits.max_sessions)),
            music_jobs: Arc::new(Semaphore::new(config.limits.music_jobs)),
            config,
            engine,
            lm,
            recognizer,
            music,
            metrics,
            shutdown,
            live,
            jam,
            token,
        }
    }

    /// Whether a request carries the bearer token (always true without one configured).
    fn authorized(&self, headers: &HeaderMap, query: &TokenQuery) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .or(query.token.as_deref());
        let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !ok {
            self.metrics.errors_auth.inc();
        }
        ok
    }
}

/// Compares without stopping at the first difference, so timing does not tell how much of a
/// guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `?token=…`, for clients (browsers) that cannot set headers on a WebSocket.
#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// 404 with `{"error": message}`: a service this daemon was not configured to run.
fn not_served(message: &str) -> Response {
    (StatusCode::NOT_FOUND, json_error(message)).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        json_error("a valid bearer token is required"),
    )
        .into_response()
}

fn json_error(message: &str) -> String {
    super::protocol::error_json(message)
}

/// The router with every endpoint.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = app.config.limits.max_message_bytes;
    Router::new()
        .route("/", get(speech))
        .route("/speech", get(speech))
        .route("/live", get(live))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/music/continue", post(music_continue))
        .route("/music/render", post(music_render))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(app)
}

async fn speech(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !app.authorized(&headers, &query) {
        return unauthorized();
    }
    if app.engine.is_none() {
        return not_served("speech is not served here");
    }
    if *app.shutdown.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json_error("the server is stopping"),
        )
            .into_response();
    }
    let Ok(permit) = Arc::clone(&app.sessions).try_acquire_owned() else {
        app.metrics.sessions_refused.inc();
        warn!(%peer, "session refused: limits.max_sessions reached");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            json_error("too many sessions; try again later"),
        )
            .into_response();
    };
    // Messages up to twice the limit are read whole, so the session can answer one over the
    // limit with an error and a clean close; larger ones are cut off by the WebSocket layer.
    let max = app.config.limits.max_message_bytes.saturating_mul(2);
    app.metrics.sessions_active.inc();
    app.metrics.sessions_total.inc();
    // A 16 KiB read buffer instead of the default 128 KiB: most of a waiting session's
    // memory otherwise.
    ws.read_buffer_size(16 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade({
            let app = Arc::clone(&app);
            move |_| app.metrics.sessions_active.dec()
        })
        .on_upgrade(move |socket| async move {
            session::run(socket, Arc::clone(&app), peer.to_string()).await;
            app.metrics.sessions_active.dec();
            drop(permit);
        })
}

/// Subscribers receive every partial and result of the live microphone.
async fn live(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !app.authorized(&headers, &query) {
        return unauthorized();
    }
    let Some(live) = &app.live else {
        return not_served("no live microphone is configured ([live.microphone])");
    };
    let Some(mut results) = live.upgrade().map(|sender| sender.subscribe()) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json_error("the live microphone has stopped (see the daemon's log)"),
        )
            .into_response();
    };
    ws.on_upgrade(move |mut socket| async move {
        app.metrics.live_subscribers.inc();
        info!(%peer, "live subscriber joined");
        let mut shutdown = app.shutdown.clone();
        loop {
            tokio::select! {
                r = results.recv() => match r {
                    Ok(text) => {
                        if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => app.metrics.dropped_live.add(n),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                m = socket.recv() => match m {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = shutdown.changed() => break,
            }
        }
        app.metrics.live_subscribers.dec();
    })
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let stopping = *app.shutdown.borrow();
    let body = serde_json::json!({
        "status": if stopping { "stopping" } else { "ok" },
        "sessions": app.metrics.sessions_active.get(),
        "max_sessions": app.config.limits.max_sessions,
        "speech": app.engine.is_some(),
        "music": app.music.is_some(),
        "live": app.live.as_ref().is_some_and(|l| l.strong_count() > 0),
        "jam": jam_status(&app.jam),
    });
    let code = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The live jam's counters, or null without one.
fn jam_status(jam: &Mutex<Option<Jam>>) -> serde_json::Value {
    let guard = jam.lock().unwrap_or_else(|e| e.into_inner());
    let Some(jam) = guard.as_ref() else {
        return serde_json::Value::Null;
    };
    let s = jam.status();
    serde_json::json!({
        "running": !jam.is_finished(),
        "state": format!("{:?}", s.state).to_lowercase(),
        "bpm": s.bpm,
        "notes_in": s.notes_in,
        "notes_out": s.notes_out,
        "responses": s.responses,
        "late": s.late,
        "dropped": s.dropped,
        "input": jam.input_name(),
        "output": jam.output_name(),
    })
}

async fn metrics(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    if !app.authorized(&headers, &query) {
        return unauthorized();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Cancels a music job when dropped: hyper drops a request's handler when its client closes
/// the connection, and the job then stops at its next check.
struct CancelOnDrop(Arc<JobControl>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Counts a running music job for as long as it lives (a panicking job included).
struct ActiveJob(Arc<Metrics>);

impl ActiveJob {
    fn new(metrics: &Arc<Metrics>) -> ActiveJob {
        metrics.music_jobs_active.inc();
        ActiveJob(Arc::clone(metrics))
    }
}

impl Drop for ActiveJob {
    fn drop(&mut self) {
        self.0.music_jobs_active.dec();
    }
}

/// Runs a music job on the blocking pool, one of at most `limits.music_jobs`, under a
/// [`JobControl`]: the job stops once its client is gone or after `limits.music_seconds`.
async fn music_job(
    app: Arc<App>,
    headers: HeaderMap,
    content_type: &'static str,
    job: impl FnOnce(&App, &MusicService, &JobControl) -> Result<Vec<u8>, MusicRequestError>
    + Send
    + 'static,
) -> Response {
    if !app.authorized(&headers, &TokenQuery::default()) {
        return unauthorized();
    }
    if app.music.is_none() {
        return not_served("music is not served here");
    }
    let Ok(permit) = Arc::clone(&app.music_jobs).acquire_owned().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json_error("the server is stopping"),
        )
            .into_response();
    };
    let control = Arc::new(JobControl::new(Duration::from_secs_f64(
        app.config.limits.music_seconds,
    )));
    let _cancel = CancelOnDrop(Arc::clone(&control));
    let worker = Arc::clone(&app);
    let result = tokio::task::spawn_blocking(move || {
        // The turn is held until the job has really ended, not only its request.
        let _permit = permit;
        let _active = ActiveJob::new(&worker.metrics);
        let out = match &worker.music {
            Some(music) => job(&worker, music, &control),
            None => Err(MusicRequestError::Bad("music is not served here".into())),
        };
        if let Err(MusicRequestError::Stopped(_)) = &out {
            match control.stop_reason() {
                Some(StopReason::ClientGone) => worker.metrics.music_stopped_client_gone.inc(),
                _ => worker.metrics.music_stopped_time_limit.inc(),
            }
        }
        out
    })
    .await;
    match result {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Ok(Err(MusicRequestError::Bad(m))) => {
            app.metrics.errors_music.inc();
            (StatusCode::BAD_REQUEST, json_error(&m)).into_response()
        }
        Ok(Err(MusicRequestError::Stopped(m))) => {
            app.metrics.errors_music.inc();
            warn!(error = %m, "music job stopped");
            (StatusCode::SERVICE_UNAVAILABLE, json_error(&m)).into_response()
        }
        Ok(Err(MusicRequestError::Failed(m))) => {
            app.metrics.errors_music.inc();
            error!(error = %m, "music request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, json_error(&m)).into_response()
        }
        Err(e) => {
            app.metrics.errors_music.inc();
            error!(error = %e, "music job stopped");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json_error("the music job stopped"),
            )
                .into_response()
        }
    }
}

async fn music_continue(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<ContinueQuery>,
    body: Bytes,
) -> Response {
    let wav = q.render.unwrap_or(false);
    let content_type = if wav { "audio/wav" } else { "audio/midi" };
    music_job(app, headers, content_type, move |app, music, control| {
        let out = music.continue_midi(&body, &q, &app.config.limits, control);
        if out.is_ok() {
            app.metrics.music_continuations.inc();
        }
        out
    })
    .await
}

async fn music_render(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<RenderQuery>,
    body: Bytes,
) -> Response {
    music_job(app, headers, "audio/wav", move |app, music, control| {
        let out = music.render_wav(&body, &q, &app.config.limits, control);
        if out.is_ok() {
            app.metrics.music_renders.inc();
        }
        out
    })
    .await
}

/// Serves `router` on `listener` until `shutdown` turns true: at most
/// `limits.connections()` connections at once (one over is closed at once), each closed if a
/// request's headers have not all arrived within `limits.header_seconds` of its start (or of
/// the end of its previous request). A connection upgraded to a WebSocket leaves this count;
/// sessions have their own limit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let limits = &app.config.limits;
    let connections = Arc::new(Semaphore::new(limits.connections()));
    let header_timeout = Duration::from_secs_f64(limits.header_seconds);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: go on.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            app.metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let router = router.clone();
        let app = Arc::clone(&app);
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            app.metrics.connections_active.inc();
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result
                && e.is_timeout()
            {
                app.metrics.header_timeouts.inc();
                debug!(%peer, "connection closed: its request headers did not arrive in time");
            }
            app.metrics.connections_active.dec();
            drop(permit);
        });
    }
}

/// Updates the rate gauges (steps per second, real-time factor) every `period`.
pub async fn measure(metrics: Arc<Metrics>, period: Duration, mut stop: watch::Receiver<bool>) {
    let mut last = (
        Instant::now(),
        metrics.steps_total.get(),
        metrics.engine_busy_ns.get(),
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let now = (
            Instant::now(),
            metrics.steps_total.get(),
            metrics.engine_busy_ns.get(),
        );
        let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-9);
        let steps = now.1.saturating_sub(last.1) as f64;
        let busy = now.2.saturating_sub(last.2) as f64 * 1e-9;
        metrics.steps_per_second.set(steps / secs);
        let audio = steps * metrics.step_seconds.get();
        metrics
            .real_time_factor
            .set(if audio > 0.0 { busy / audio } else { 0.0 });
        last = now;
    }
}
