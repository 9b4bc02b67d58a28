//! The daemon's music endpoints on arbitrary requests: the first line is the query string (a
//! leading `R` asks `/music/render`, anything else `/music/continue`), the rest the body. The
//! request goes through the real router, so seed parsing, the one MIDI reader, continuation
//! with the bundled model, rendering and the job limits all run. Whatever arrives, the answer
//! is 200, 400 or 503 (a bound reached), never 500 (a failure or a panic inside a job), and the
//! service answers the next request.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

use reprise::daemon::ServeConfig;
use reprise::daemon::metrics::Metrics;
use reprise::daemon::music::MusicService;
use reprise::daemon::server::{App, router};
use reprise::music::model::MusicModel;
use reprise::render::Instruments;
use reprise::speech::RecognizerOptions;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = reprise::models::bundled("music-default");
        let model = MusicModel::load(&dir, None).expect("the bundled music model loads");
        let mut config = ServeConfig::default();
        config.speech.enabled = false;
        // Small enough that a run does many requests a second, large enough to reach the
        // bounds: a long job is stopped by the time limit.
        config.limits.max_bars = 16;
        config.limits.max_render_seconds = 20.0;
        config.limits.music_seconds = 1.0;
        config.limits.max_message_bytes = 1 << 16;
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        std::mem::forget(_stop);
        let app = Arc::new(App::new(
            config,
            None,
            None,
            RecognizerOptions::default(),
            Some(MusicService::new(Some(model), Instruments::BuiltIn)),
            Arc::new(Metrics::default()),
            shutdown,
            None,
            Arc::new(Mutex::new(None)),
            None,
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Fixture { runtime, app }
    })
}

/// Percent-encodes what a URI cannot hold as it is.
fn query(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"=&.-_:~+#%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn post(f: &Fixture, path: &str, body: Vec<u8>) -> StatusCode {
    let request = Request::post(path)
        .body(Body::from(body))
        .expect("a valid request");
    let response = f
        .runtime
        .block_on(router(Arc::clone(&f.app)).oneshot(request))
        .expect("the router answers");
    response.status()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    let (endpoint, head) = match head.first() {
        Some(b'R') => ("/music/render", &head[1..]),
        _ => ("/music/continue", head),
    };
    let path = format!("{endpoint}?{}", query(head));
    if path.parse::<axum::http::Uri>().is_err() {
        return;
    }
    let status = post(f, &path, body.to_vec());
    assert!(
        matches!(status.as_u16(), 200 | 400 | 413 | 503),
        "{path}: status {status}"
    );
    // The service is still there for the next client.
    let status = post(f, "/music/continue?bars=1&seed=1", Vec::new());
    assert_eq!(status, StatusCode::OK);
});
