//! Counters of the daemon, written by every thread with relaxed atomics and read by
//! `GET /metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter or gauge.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one away (gauges).
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sets the value (gauges).
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A floating-point gauge.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `v`.
    pub fn add(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some((f64::from_bits(old) + v).to_bits())
            });
    }

    /// The value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Speech sessions open now.
    pub sessions_active: Counter,
    /// Speech sessions opened since start.
    pub sessions_total: Counter,
    /// Connections refused because `limits.max_sessions` were open.
    pub sessions_refused: Counter,
    /// Subscribers of the live microphone now.
    pub live_subscribers: Counter,
    /// Model steps (one per stream and 30 ms of audio or so) taken by the inference threads.
    pub steps_total: Counter,
    /// Batches the inference threads ran.
    pub batches_total: Counter,
    /// Nanoseconds the inference threads spent stepping.
    pub engine_busy_ns: Counter,
    /// Seconds of audio per model step.
    pub step_seconds: Gauge,
    /// The speech model's sample rate.
    pub model_rate: Gauge,
    /// Steps queued for the inference threads now.
    pub queued_steps: Counter,
    /// Steps per second over the last measuring window.
    pub steps_per_second: Gauge,
    /// Inference time over audio time over the last measuring window.
    pub real_time_factor: Gauge,
    /// Audio seconds received from clients (at their own rate).
    pub audio_seconds_in: Gauge,
    /// Client messages received.
    pub messages_in: Counter,
    /// Replies sent.
    pub messages_out: Counter,
    /// Results (ends of utterances) sent.
    pub results_total: Counter,
    /// Replies the inference threads could not hand to a session (should stay 0).
    pub dropped_replies: Counter,
    /// Sessions dropped because the client did not take its replies in time.
    pub dropped_slow_clients: Counter,
    /// Live results a subscriber missed because it lagged behind.
    pub dropped_live: Counter,
    /// Malformed or refused client messages.
    pub errors_protocol: Counter,
    /// Messages over `limits.max_message_bytes`.
    pub errors_too_large: Counter,
    /// Sessions closed for idleness.
    pub errors_idle: Counter,
    /// Requests without a valid bearer token.
    pub errors_auth: Counter,
    /// Failed music requests.
    pub errors_music: Counter,
    /// Inference failures.
    pub errors_engine: Counter,
    /// Music continuations served.
    pub music_continuations: Counter,
    /// Renders served.
    pub music_renders: Counter,
    /// Music jobs running now.
    pub music_jobs_active: Counter,
    /// Music jobs stopped because their client went away.
    pub music_stopped_client_gone: Counter,
    /// Music jobs stopped at `limits.music_seconds`.
    pub music_stopped_time_limit: Counter,
    /// TCP connections open now.
    pub connections_active: Counter,
    /// Connections refused at `limits.max_connections`.
    pub connections_refused: Counter,
    /// Connections closed because their request headers did not arrive in time.
    pub header_timeouts: Counter,
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP reprise_{name} {help}");
            let _ = writeln!(out, "# TYPE reprise_{name} {kind}");
            let _ = writeln!(out, "reprise_{name} {value}");
        };
        let c = |x: &Counter| x.get() as f64;
        metric(
            "sessions_active",
            "gauge",
            "Speech sessions open now.",
            c(&self.sessions_active),
        );
        metric(
            "sessions_total",
            "counter",
            "Speech sessions opened.",
            c(&self.sessions_total),
        );
        metric(
            "sessions_refused_total",
            "counter",
            "Connections refused at the session limit.",
            c(&self.sessions_refused),
        );
        metric(
            "live_subscribers",
            "gauge",
            "Clients subscribed to the live microphone.",
            c(&self.live_subscribers),
        );
        metric(
            "engine_steps_total",
            "counter",
            "Model steps taken (one per stream per step of audio).",
            c(&self.steps_total),
        );
        metric(
            "engine_batches_total",
            "counter",
            "Batches stepped by the inference threads.",
            c(&self.batches_total),
        );
        metric(
            "engine_busy_seconds_total",
            "counter",
            "Time the inference threads spent stepping.",
            c(&self.engine_busy_ns) * 1e-9,
        );
        metric(
            "engine_audio_seconds_total",
            "counter",
            "Audio time the inference threads processed.",
            c(&self.steps_total) * self.step_seconds.get(),
        );
        metric(
            "engine_steps_per_second",
            "gauge",
            "Model steps per second over the last window.",
            self.steps_per_second.get(),
        );
        metric(
            "engine_frames_per_second",
            "gauge",
            "Audio frames (samples at the model's rate) per second over the last window.",
            self.steps_per_second.get() * self.step_seconds.get() * self.model_rate.get(),
        );
        metric(
            "engine_real_time_factor",
            "gauge",
            "Inference time over audio time over the last window (below 1 keeps up).",
            self.real_time_factor.get(),
        );
        metric(
            "engine_queued_steps",
            "gauge",
            "Steps waiting for the inference threads.",
            c(&self.queued_steps),
        );
        metric(
            "messages_received_total",
            "counter",
            "Client messages received.",
            c(&self.messages_in),
        );
        metric(
            "audio_seconds_received_total",
            "counter",
            "Seconds of client audio received.",
            self.audio_seconds_in.get(),
        );
        metric(
            "messages_sent_total",
            "counter",
            "Replies sent to clients.",
            c(&self.messages_out),
        );
        metric(
            "results_total",
            "counter",
            "Final results (ends of utterances) sent.",
            c(&self.results_total),
        );
        metric(
            "music_continuations_total",
            "counter",
            "Music continuations served.",
            c(&self.music_continuations),
        );
        metric(
            "music_renders_total",
            "counter",
            "Renders served.",
            c(&self.music_renders),
        );
        metric(
            "music_jobs_active",
            "gauge",
            "Music jobs (continue, render) running now.",
            c(&self.music_jobs_active),
        );
        metric(
            "connections_active",
            "gauge",
            "TCP connections open now.",
            c(&self.connections_active),
        );
        metric(
            "connections_refused_total",
            "counter",
            "Connections closed at once at limits.max_connections.",
            c(&self.connections_refused),
        );
        metric(
            "header_timeouts_total",
            "counter",
            "Connections closed because a request's headers did not arrive within \
             limits.header_seconds.",
            c(&self.header_timeouts),
        );
        out.push_str(
            "# HELP reprise_music_jobs_stopped_total Music jobs stopped before the end.\n",
        );
        out.push_str("# TYPE reprise_music_jobs_stopped_total counter\n");
        for (why, v) in [
            ("client_gone", &self.music_stopped_client_gone),
            ("time_limit", &self.music_stopped_time_limit),
        ] {
            let _ = writeln!(
                out,
                "reprise_music_jobs_stopped_total{{reason=\"{why}\"}} {}",
                v.get()
            );
        }
        out.push_str("# HELP reprise_drops_total Replies, sessions and live results dropped.\n");
        out.push_str("# TYPE reprise_drops_total counter\n");
        for (what, v) in [
            ("reply", &self.dropped_replies),
            ("slow_client", &self.dropped_slow_clients),
            ("live", &self.dropped_live),
        ] {
            let _ = writeln!(out, "reprise_drops_total{{kind=\"{what}\"}} {}", v.get());
        }
        out.push_str("# HELP reprise_errors_total Errors by kind.\n");
        out.push_str("# TYPE reprise_errors_total counter\n");
        for (what, v) in [
            ("protocol", &self.errors_protocol),
            ("too_large", &self.errors_too_large),
            ("idle", &self.errors_idle),
            ("auth", &self.errors_auth),
            ("music", &self.errors_music),
            ("engine", &self.errors_engine),
        ] {
            let _ = writeln!(out, "reprise_errors_total{{kind=\"{what}\"}} {}", v.get());
        }
        out
    }
}
