//! `reprise serve` with real clients over loopback: a Rust WebSocket client speaking the Vosk
//! protocol, Vosk's own Python test client (with the `websockets` package), raw HTTP for
//! health, metrics and music. The expected transcript of a file is what `reprise transcribe`
//! gives for it with the same model (a random-weight model written by the test), so what is
//! checked does not depend on what a model has learned.

mod common;
#[path = "common/music.rs"]
mod music;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/speech.rs"]
mod speech;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const RATE: u32 = 16_000;
/// Vosk's test client sends 8000-byte chunks.
const CHUNK_BYTES: usize = 8000;

struct Fixture {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("speech");
        std::fs::create_dir_all(&model).unwrap();
        speech::write_random_model(&model, 24);
        Fixture { dir, model }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A 16-bit mono WAV of babble at `rate`.
    fn wav(&self, name: &str, rate: u32, seconds: f32, seed: u32) -> PathBuf {
        let path = self.path(name);
        speech::write_wav(&path, &speech::babble(rate, seconds, seed), rate, 1);
        path
    }

    /// The texts of the utterances `reprise transcribe` finds in each file, joined by spaces.
    fn transcripts(&self, files: &[&Path]) -> Vec<String> {
        let mut args = vec![
            "transcribe".to_string(),
            "--format".into(),
            "jsonl".into(),
            "--no-lm".into(),
            "--model".into(),
            s(&self.model).into(),
        ];
        args.extend(files.iter().map(|f| s(f).to_string()));
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let out = common::reprise(&args, &[]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let segments = v["segments"].as_array().unwrap();
                segments
                    .iter()
                    .map(|s| s["text"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Starts the daemon with this configuration (the model and a free port added).
    fn serve(&self, toml: &str) -> Server {
        self.serve_with_env(toml, &[])
    }

    /// [`Fixture::serve`] with these environment variables.
    fn serve_with_env(&self, toml: &str, env: &[(&str, &str)]) -> Server {
        let config = self.path("reprise.toml");
        std::fs::write(
            &config,
            format!(
                "{toml}\n[speech]\nmodel = {:?}\nno_lm = true\n",
                s(&self.model)
            ),
        )
        .unwrap();
        Server::start_with_env(&["--config", s(&config), "--listen", "127.0.0.1:0"], env)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reprise"))
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .args(["--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("reprise runs");
        let addr = serve::listening_address(&mut child).parse().unwrap();
        Server { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket upgrade of `/` without a token, as raw HTTP: the status and the body.
fn upgrade(addr: SocketAddr) -> (u16, Vec<u8>) {
    upgrade_path(addr, "/")
}

/// A WebSocket upgrade of `path` without a token, as raw HTTP: the status and the body.
fn upgrade_path(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade, close"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    http(addr, "GET", path, &headers, b"")
}

/// A raw HTTP/1.1 request; returns the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        request.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

fn pcm_bytes(path: &Path) -> (Vec<u8>, u32) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let rate = reader.spec().sample_rate;
    let bytes = reader
        .samples::<i16>()
        .flat_map(|s| s.unwrap().to_le_bytes())
        .collect();
    (bytes, rate)
}

/// What one client saw.
#[derive(Debug, Default)]
struct Transcript {
    partials: Vec<String>,
    results: Vec<Value>,
    /// Replies to audio messages.
    replies: usize,
    close: Option<(CloseCode, String)>,
}

impl Transcript {
    fn text(&self) -> String {
        self.results
            .iter()
            .filter_map(|r| r["text"].as_str())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: Option<&str>) -> Ws {
    let mut request = url.into_client_request().unwrap();
    if let Some(t) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn next_text(ws: &mut Ws, t: &mut Transcript) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(120), ws.next())
            .await
            .expect("a reply in time")
        {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                t.close = frame.map(|f| (f.code, f.reason.to_string()));
                return None;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

fn record(v: Value, t: &mut Transcript) {
    if let Some(p) = v.get("partial") {
        t.partials.push(p.as_str().unwrap().to_string());
    } else {
        assert!(
            v.get("text").is_some() || v.get("alternatives").is_some(),
            "neither partial nor result: {v}"
        );
        t.results.push(v);
    }
}

/// Streams `pcm` exactly as Vosk's test client does: config, binary chunks each answered by
/// one reply, then eof answered by the final result. Stops after `limit` chunks without eof
/// when given.
async fn stream_file(
    url: &str,
    token: Option<&str>,
    pcm: &[u8],
    rate: u32,
    config: Option<Value>,
) -> Transcript {
    stream_on(connect(url, token).await, pcm, rate, config).await
}

/// [`stream_file`] on an open connection.
async fn stream_on(mut ws: Ws, pcm: &[u8], rate: u32, config: Option<Value>) -> Transcript {
    let mut t = Transcript::default();
    let config = config.unwrap_or_else(|| serde_json::json!({"sample_rate": rate, "words": true}));
    ws.send(Message::text(
        serde_json::json!({ "config": config }).to_string(),
    ))
    .await
    .unwrap();
    for chunk in pcm.chunks(CHUNK_BYTES) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        let reply = next_text(&mut ws, &mut t).await.expect("a reply per chunk");
        t.replies += 1;
        record(reply, &mut t);
    }
    ws.send(Message::text(r#"{"eof" : 1}"#)).await.unwrap();
    let last = next_text(&mut ws, &mut t).await.expect("a final result");
    assert!(last.get("partial").is_none(), "{last}");
    record(last, &mut t);
    assert!(next_text(&mut ws, &mut t).await.is_none());
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vosk_client_gets_partials_results_and_the_transcript() {
    let f = Fixture::new();
    let wav = f.wav("a.wav", RATE, 8.0, 3);
    let expected = f.transcripts(&[&wav]).remove(0);
    assert!(!expected.is_empty(), "the random model writes something");
    let server = f.serve("");
    let (pcm, rate) = pcm_bytes(&wav);
    let t = stream_file(&server.url("/"), None, &pcm, rate, None).await;
    assert_eq!(t.replies, pcm.len().div_ceil(CHUNK_BYTES));
    assert!(t.partials.iter().any(|p| !p.is_empty()), "{t:?}");
    assert!(t.results.len() >= 2, "an endpoint inside the stream: {t:?}");
    assert_eq!(t.text(), expected);
    for r in &t.results {
        let text = r["text"].as_str().unwrap();
        if text.is_empty() {
            continue;
        }
        let words = r["result"].as_array().expect("words were asked for");
        let joined: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
        assert_eq!(joined.join(" "), text);
        for w in words {
            let (start, end, conf) = (
                w["start"].as_f64().unwrap(),
                w["end"].as_f64().unwrap(),
                w["conf"].as_f64().unwrap(),
            );
            assert!(0.0 <= start && start <= end && end <= 8.1, "{w}");
            assert!((0.0..=1.0).contains(&conf), "{w}");
        }
    }
    assert_eq!(t.close.map(|c| c.0), Some(CloseCode::Normal));

    // Without "words", results are text only; with max_alternatives, a list of one.
    let t = stream_file(
        &server.url("/speech"),
        None,
        &pcm,
        rate,
        Some(serde_json::json!({"sample_rate": rate, "words": false})),
    )
    .await;
    assert!(t.results.iter().all(|r| r.get("result").is_none()));
    assert_eq!(t.text(), expected);
    let t = stream_file(
        &server.url("/"),
        None,
        &pcm,
        rate,
        Some(serde_json::json!({"sample_rate": rate, "max_alternatives": 3})),
    )
    .await;
    let alternatives: Vec<&str> = t
        .results
        .iter()
        .map(|r| r["alternatives"][0]["text"].as_str().unwrap())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(alternatives.join(" "), expected);
    // Up to three distinct texts from the beam, best first, with shares of probability.
    let mut most = 0;
    for r in &t.results {
        let list = r["alternatives"].as_array().unwrap();
        if list[0]["text"] == "" {
            continue;
        }
        assert!((1..=3).contains(&list.len()), "{r}");
        most = most.max(list.len());
        let conf: Vec<f64> = list
            .iter()
            .map(|a| a["confidence"].as_f64().unwrap())
            .collect();
        assert!(conf.windows(2).all(|w| w[0] >= w[1]), "{r}");
        assert!(
            conf.iter().all(|&c| c > 0.0) && conf.iter().sum::<f64>() <= 1.0 + 1e-5,
            "{r}"
        );
        let texts: Vec<&str> = list.iter().map(|a| a["text"].as_str().unwrap()).collect();
        for (i, a) in texts.iter().enumerate() {
            assert!(!texts[..i].contains(a), "{r}");
        }
        for a in list {
            let words: Vec<&str> = a["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["word"].as_str().unwrap())
                .collect();
            assert_eq!(words.join(" "), a["text"].as_str().unwrap(), "{r}");
        }
    }
    assert!(most > 1, "the beam holds more than one text: {t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sample_rates_are_resampled_like_transcribe_does() {
    let f = Fixture::new();
    let files: Vec<PathBuf> = [8_000, 44_100]
        .iter()
        .enumerate()
        .map(|(i, &rate)| f.wav(&format!("r{rate}.wav"), rate, 6.0, 10 + i as u32))
        .collect();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let expected = f.transcripts(&refs);
    let server = f.serve("");
    for (file, expected) in files.iter().zip(expected) {
        let (pcm, rate) = pcm_bytes(file);
        let t = stream_file(&server.url("/"), None, &pcm, rate, None).await;
        assert_eq!(t.text(), expected, "{}", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_streams_each_get_their_own_transcript() {
    let f = Fixture::new();
    let files: Vec<PathBuf> = (0..20)
        .map(|i| f.wav(&format!("s{i}.wav"), RATE, 4.0 + (i % 5) as f32, 100 + i))
        .collect();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let expected = f.transcripts(&refs);
    // The streams differ, so a mix-up between sessions would show.
    let distinct: std::collections::HashSet<&String> = expected.iter().collect();
    assert!(distinct.len() >= 15, "{expected:?}");
    let server = f.serve("[engine]\nthreads = 1\nmax_batch = 8\n");
    let url = server.url("/");
    let tasks: Vec<_> = files
        .iter()
        .map(|file| {
            let (pcm, rate) = pcm_bytes(file);
            let url = url.clone();
            tokio::spawn(async move { stream_file(&url, None, &pcm, rate, None).await })
        })
        .collect();
    for ((task, expected), file) in tasks.into_iter().zip(&expected).zip(&files) {
        let t = task.await.unwrap();
        assert_eq!(&t.text(), expected, "{}", file.display());
    }
    let (status, body) = http(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(body).unwrap();
    assert!(metrics.contains("reprise_sessions_total 20"), "{metrics}");
    let batches = metric(&metrics, "reprise_engine_batches_total");
    let steps = metric(&metrics, "reprise_engine_steps_total");
    assert!(steps > batches, "sessions were stepped together: {metrics}");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// A client that misbehaves in one way; returns its close code and the error it was sent.
async fn misbehave(url: &str, how: &str, pcm: &[u8]) -> (Option<CloseCode>, Option<String>) {
    let mut ws = connect(url, None).await;
    let mut t = Transcript::default();
    let message = match how {
        "malformed json" => Message::text("{\"config\": {\"sample_rate\": 16000"),
        "unknown message" => Message::text("{\"hello\": 1}"),
        "oversized" => Message::binary(vec![0u8; 300_000]),
        "bad rate" => Message::text("{\"config\": {\"sample_rate\": -1}}"),
        _ => unreachable!(),
    };
    ws.send(Message::binary(pcm[..CHUNK_BYTES].to_vec()))
        .await
        .unwrap();
    // Audio first, so a config is refused for coming late as well as for its content.
    assert!(next_text(&mut ws, &mut t).await.is_some());
    let _ = ws.send(message).await;
    let error = next_text(&mut ws, &mut t)
        .await
        .and_then(|v| v["error"].as_str().map(str::to_string));
    while next_text(&mut ws, &mut t).await.is_some() {}
    (t.close.map(|c| c.0), error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_get_errors_and_the_others_go_on() {
    let f = Fixture::new();
    let wav = f.wav("good.wav", RATE, 10.0, 7);
    let expected = f.transcripts(&[&wav]).remove(0);
    let server = f.serve("[limits]\nmax_message_bytes = 200000\n");
    let url = server.url("/");
    let (pcm, rate) = pcm_bytes(&wav);
    let good: Vec<_> = (0..3)
        .map(|_| {
            let (url, pcm) = (url.clone(), pcm.clone());
            tokio::spawn(async move { stream_file(&url, None, &pcm, rate, None).await })
        })
        .collect();

    for (how, code) in [
        ("malformed json", CloseCode::Invalid),
        ("unknown message", CloseCode::Invalid),
        ("oversized", CloseCode::Size),
        ("bad rate", CloseCode::Invalid),
    ] {
        let (close, error) = misbehave(&url, how, &pcm).await;
        assert_eq!(close, Some(code), "{how}");
        assert!(error.is_some_and(|e| !e.is_empty()), "{how}");
    }

    // Garbage binary is audio as far as the protocol goes (odd lengths included): it gets
    // replies, not a crash.
    let mut state = 12345u32;
    let garbage: Vec<u8> = (0..40_001)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    let t = stream_file(&url, None, &garbage, RATE, None).await;
    assert_eq!(t.replies, garbage.len().div_ceil(CHUNK_BYTES));

    // Abrupt disconnects: mid-stream, and before the first message.
    for chunks in [0, 5] {
        let mut ws = connect(&url, None).await;
        let mut t = Transcript::default();
        for chunk in pcm.chunks(CHUNK_BYTES).take(chunks) {
            ws.send(Message::binary(chunk.to_vec())).await.unwrap();
            next_text(&mut ws, &mut t).await.unwrap();
        }
        drop(ws);
    }
    // A raw TCP connection that sends half a handshake and vanishes.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .unwrap();
    drop(raw);

    for g in good {
        assert_eq!(g.await.unwrap().text(), expected);
    }
    // Every session is closed and the errors were counted.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = String::from_utf8(http(server.addr, "GET", "/metrics", &[], b"").1).unwrap();
        if metric(&metrics, "reprise_sessions_active") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(&metrics, "reprise_sessions_active"),
        0.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("reprise_errors_total{kind=\"protocol\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reprise_errors_total{kind=\"too_large\"} 1"),
        "{metrics}"
    );
    let (status, body) = http(server.addr, "GET", "/health", &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_rates_and_late_configs_as_vosks_server_takes_them() {
    let f = Fixture::new();
    let wav = f.wav("v.wav", 8000, 6.0, 31);
    let expected = f.transcripts(&[&wav]).remove(0);
    let server = f.serve("");
    let url = server.url("/");
    let (pcm, rate) = pcm_bytes(&wav);
    // Vosk's server reads the rate with float(): a string is a rate too.
    let config = serde_json::json!({"sample_rate": rate.to_string()});
    let t = stream_file(&url, None, &pcm, rate, Some(config)).await;
    assert_eq!(t.text(), expected);
    assert_eq!(t.close.map(|c| c.0), Some(CloseCode::Normal));
    // A config after audio is taken and changes nothing (Vosk's recognizer is made with the
    // first audio): the session goes on at its rate.
    let mut ws = connect(&url, None).await;
    let mut t = Transcript::default();
    let chunks: Vec<&[u8]> = pcm.chunks(CHUNK_BYTES).collect();
    ws.send(Message::text(format!(
        "{{\"config\": {{\"sample_rate\": {rate}}}}}"
    )))
    .await
    .unwrap();
    for (i, chunk) in chunks.iter().enumerate() {
        if i == chunks.len() / 2 {
            let late = r#"{"config": {"sample_rate": "16000", "words": false}}"#;
            ws.send(Message::text(late)).await.unwrap();
        }
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
        let reply = next_text(&mut ws, &mut t).await.expect("a reply per chunk");
        assert!(reply.get("error").is_none(), "{reply}");
        record(reply, &mut t);
    }
    ws.send(Message::text(r#"{"eof" : 1}"#)).await.unwrap();
    let last = next_text(&mut ws, &mut t).await.expect("a final result");
    record(last, &mut t);
    assert!(next_text(&mut ws, &mut t).await.is_none());
    assert_eq!(t.text(), expected);
    assert_eq!(t.close.map(|c| c.0), Some(CloseCode::Normal));
}

/// A client that sends as fast as it can and never reads its replies, over a socket with a
/// tiny receive buffer: its replies back up until the daemon gives up on it. Returns how many
/// messages it managed to send.
async fn never_read(addr: SocketAddr) -> usize {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
        .await
        .unwrap();
    ws.send(Message::text(r#"{"config": {"sample_rate": 16000}}"#))
        .await
        .unwrap();
    let mut sent = 0;
    // One sample per message: each is answered with a partial far longer than itself.
    let one_sample = Message::binary(vec![0u8, 1]);
    while let Ok(Ok(())) =
        tokio::time::timeout(Duration::from_secs(5), ws.send(one_sample.clone())).await
    {
        sent += 1;
        if sent == 2_000_000 {
            break;
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_and_stalls_nobody() {
    let f = Fixture::new();
    let wav = f.wav("s.wav", RATE, 6.0, 21);
    let expected = f.transcripts(&[&wav]).remove(0);
    let server = f.serve("[limits]\nsend_timeout_seconds = 1\n");
    let slow = tokio::spawn(never_read(server.addr));
    // While it backs up, a well-behaved client streams a file and gets its transcript.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (pcm, rate) = pcm_bytes(&wav);
    let t = stream_file(&server.url("/"), None, &pcm, rate, None).await;
    assert_eq!(t.text(), expected);
    let sent = slow.await.unwrap();
    eprintln!("the slow client sent {sent} messages before the daemon stopped reading");
    assert!(
        sent < 2_000_000,
        "the daemon kept taking messages it could not answer"
    );
    let (_, body) = http(server.addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(body).unwrap();
    assert_eq!(
        metric(&metrics, "reprise_drops_total{kind=\"slow_client\"}"),
        1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_token_health_and_metrics() {
    let f = Fixture::new();
    let wav = f.wav("t.wav", RATE, 3.0, 4);
    let token = f.path("token");
    std::fs::write(&token, "open-sesame\n").unwrap();
    let server = f.serve(&format!(
        "auth_token_file = {:?}\n[limits]\nmax_sessions = 2\nidle_seconds = 1\n",
        s(&token)
    ));
    // The token: a WebSocket without it is refused; /health needs none, /metrics does.
    let (status, _) = upgrade(server.addr);
    assert_eq!(status, 401);
    assert_eq!(http(server.addr, "GET", "/metrics", &[], b"").0, 401);
    assert_eq!(
        http(
            server.addr,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer wrong")],
            b""
        )
        .0,
        401
    );
    let (status, body) = http(
        server.addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer open-sesame")],
        b"",
    );
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for name in [
        "reprise_sessions_active",
        "reprise_engine_steps_per_second",
        "reprise_engine_real_time_factor",
        "reprise_engine_queued_steps",
        "reprise_drops_total{kind=\"reply\"}",
        "reprise_errors_total{kind=\"auth\"}",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
    let (status, body) = http(server.addr, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok");

    // Two sessions are the limit: a third is refused with 503 while they are open.
    let url = server.url("/");
    let mut a = connect(&url, Some("open-sesame")).await;
    let b = connect(&format!("{url}?token=open-sesame"), None).await;
    let refused = tokio_tungstenite::connect_async({
        let mut r = url.as_str().into_client_request().unwrap();
        r.headers_mut()
            .insert("Authorization", "Bearer open-sesame".parse().unwrap());
        r
    })
    .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("a third session was not refused: {other:?}"),
    }
    drop(b);
    // An idle session is closed after idle_seconds with an error.
    let mut t = Transcript::default();
    let error = next_text(&mut a, &mut t).await.expect("an idle error");
    assert!(
        error["error"].as_str().unwrap().contains("no message"),
        "{error}"
    );
    assert!(next_text(&mut a, &mut t).await.is_none());
    assert_eq!(t.close.map(|c| c.0), Some(CloseCode::Policy));
    // The limit frees up once sessions end (the server notices a closed connection soon,
    // not at once: retry).
    let (pcm, rate) = pcm_bytes(&wav);
    let mut ws = None;
    for _ in 0..100 {
        if let Ok((w, _)) =
            tokio_tungstenite::connect_async(format!("{url}?token=open-sesame")).await
        {
            ws = Some(w);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ws = ws.expect("a session after the others closed");
    let t = stream_on(ws, &pcm, rate, None).await;
    assert_eq!(t.close.map(|c| c.0), Some(CloseCode::Normal));
}

/// Whether the server closes `stream` (end of stream or reset) within `seconds`; false if it
/// is still open then.
fn closed_by_server(stream: &mut TcpStream, seconds: u64) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(seconds)))
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn silent_slow_and_pinging_clients_do_not_hold_the_server() {
    let f = Fixture::new();
    let server = f.serve(
        "[limits]\nidle_seconds = 1\nheader_seconds = 2\nmax_connections = 4\nmax_sessions = 4\n",
    );
    // Four connections that never send a request fill the connection limit; a fifth is
    // closed at once.
    let mut silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = TcpStream::connect(server.addr).unwrap();
    assert!(
        closed_by_server(&mut fifth, 1),
        "a connection over the limit stayed open"
    );
    // The silent ones, and one that sends half a request, are closed at limits.header_seconds.
    for stream in &mut silent {
        assert!(
            closed_by_server(stream, 20),
            "a silent connection stayed open"
        );
    }
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        closed_by_server(&mut slow, 20),
        "a slow request stayed open"
    );
    let m = metrics_text(server.addr);
    assert!(
        metric(&m, "reprise_connections_refused_total") >= 1.0,
        "{m}"
    );
    assert!(metric(&m, "reprise_header_timeouts_total") >= 5.0, "{m}");

    // A client that pings (as Python's websockets does every 20 s) but sends nothing else is
    // closed as idle.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let close = runtime.block_on(async {
        let mut ws = connect(&server.url("/"), None).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut error = None;
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => error = Some(t.to_string()),
                    Some(Ok(Message::Close(frame))) => {
                        break (frame.map(|f| f.code), error);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break (None, error),
                },
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if tokio::time::Instant::now() > deadline {
                        break (None, Some("still open".into()));
                    }
                    ws.send(Message::Ping(Vec::new().into())).await.unwrap();
                }
            }
        }
    });
    assert_eq!(close.0, Some(CloseCode::Policy), "{:?}", close.1);
    assert!(close.1.unwrap_or_default().contains("no message"));
    // The server still answers.
    assert_eq!(http(server.addr, "GET", "/health", &[], b"").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_every_sessions_final_result() {
    let f = Fixture::new();
    let files: Vec<PathBuf> = (0..4)
        .map(|i| f.wav(&format!("f{i}.wav"), RATE, 6.0, 50 + i))
        .collect();
    // Each client sends the first half (whole chunks) and waits; the daemon is stopped; each
    // must get the final result of the audio it sent, which is what transcribe gives for it.
    let halves: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let (pcm, _) = pcm_bytes(file);
            let half = pcm.len() / 2 / CHUNK_BYTES * CHUNK_BYTES;
            let samples: Vec<f32> = pcm[..half]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                .collect();
            let path = f.path(&format!("half{i}.wav"));
            speech::write_wav(&path, &samples, RATE, 1);
            path
        })
        .collect();
    let refs: Vec<&Path> = halves.iter().map(|p| p.as_path()).collect();
    let expected = f.transcripts(&refs);
    let mut server = f.serve("");
    let url = server.url("/");
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::channel(8);
    let tasks: Vec<_> = halves
        .iter()
        .map(|file| {
            let (pcm, _) = pcm_bytes(file);
            let (url, sent) = (url.clone(), sent_tx.clone());
            tokio::spawn(async move {
                let mut ws = connect(&url, None).await;
                let mut t = Transcript::default();
                for chunk in pcm.chunks(CHUNK_BYTES) {
                    ws.send(Message::binary(chunk.to_vec())).await.unwrap();
                    let v = next_text(&mut ws, &mut t).await.unwrap();
                    record(v, &mut t);
                }
                sent.send(()).await.unwrap();
                while let Some(v) = next_text(&mut ws, &mut t).await {
                    record(v, &mut t);
                }
                t
            })
        })
        .collect();
    for _ in 0..tasks.len() {
        sent_rx.recv().await.unwrap();
    }
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    for (task, expected) in tasks.into_iter().zip(expected) {
        let t = task.await.unwrap();
        assert_eq!(t.text(), expected);
        assert_eq!(t.close.map(|c| c.0), Some(CloseCode::Away));
    }
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    for (text, key) in [
        ("[limits]\nmax_sesions = 3\n", "max_sesions"),
        ("[speech]\nbeam = 0\n", "speech.beam"),
        ("listen = 5\n", "listen"),
    ] {
        std::fs::write(&config, text).unwrap();
        let err = common::reprise_fails(&["serve", "--config", s(&config)], &[]);
        assert!(err.contains(key), "{text}: {err}");
    }
    let err = common::reprise_fails(&["serve", "--config", "/nonexistent/reprise.toml"], &[]);
    assert!(err.contains("/nonexistent/reprise.toml"), "{err}");
    let err = common::reprise_fails(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--model",
            "/nonexistent/model",
        ],
        &[],
    );
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn music_continues_and_renders_over_http() {
    let f = Fixture::new();
    let model = f.path("music");
    music::write_random_model(&model, "onset-roll", 36, 60, 4);
    let seed = f.path("seed.mid");
    music::write_seed(
        &seed,
        480,
        &[
            (0, 480, 60, 90, 0),
            (480, 480, 64, 90, 0),
            (960, 480, 67, 90, 0),
            (1440, 480, 72, 90, 0),
        ],
    );
    let server = music_server(&f, &model, "");
    let seed_bytes = std::fs::read(&seed).unwrap();

    let (status, midi) = http(
        server.addr,
        "POST",
        "/music/continue?bars=2&seed=3&temperature=0.9",
        &[],
        &seed_bytes,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&midi));
    let out = f.path("out.mid");
    std::fs::write(&out, &midi).unwrap();
    let (_, notes) = music::read_notes(&out);
    assert!(notes.len() >= 4, "the seed is kept");
    // The same request gives the same file, as `reprise continue` does for the same seed.
    let cli_out = f.path("cli.mid");
    let run = common::reprise(
        &[
            "continue",
            s(&seed),
            "-o",
            s(&cli_out),
            "--bars",
            "2",
            "--seed",
            "3",
            "--temperature",
            "0.9",
            "--model",
            s(&model),
        ],
        &[],
    );
    assert!(run.status.success(), "{}", common::stderr(&run));
    assert_eq!(std::fs::read(&cli_out).unwrap(), midi);

    let (status, wav) = http(
        server.addr,
        "POST",
        "/music/render?rate=48000&tail=0.5",
        &[],
        &midi,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&wav));
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
    assert_eq!(reader.spec().sample_rate, 48_000);
    assert_eq!(reader.spec().channels, 2);
    assert!(reader.len() > 48_000, "{} samples", reader.len());
    let (status, wav) = http(
        server.addr,
        "POST",
        "/music/continue?bars=1&render=true",
        &[],
        &seed_bytes,
    );
    assert_eq!(status, 200);
    assert_eq!(&wav[..4], b"RIFF");

    for (path, body, want) in [
        ("/music/continue", &b"not midi"[..], "not a valid MIDI file"),
        ("/music/render", &b"MThd\0\0"[..], "MIDI"),
        ("/music/continue?bars=0", &seed_bytes[..], "bars"),
        (
            "/music/continue?temperature=-1",
            &seed_bytes[..],
            "temperature",
        ),
        ("/music/continue?scale=H:major", &seed_bytes[..], "scale"),
        ("/music/render?rate=1000", &seed_bytes[..], "rate"),
        ("/music/render?loud=1", &seed_bytes[..], "loud"),
    ] {
        let (status, body) = http(server.addr, "POST", path, &[], body);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(want), "{path}: {text}");
    }
    // Speech is off in this configuration.
    let (status, _) = upgrade(server.addr);
    assert_eq!(status, 404);
}

/// `GET /metrics` as text.
fn metrics_text(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

/// Polls `/metrics` until `name` reaches `value`; false if it has not within `seconds` (a
/// safety bound: the condition is what the caller checks).
fn wait_for_metric(addr: SocketAddr, name: &str, value: f64, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if metric(&metrics_text(addr), name) == value {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A daemon serving music only, with this model and these `[limits]` lines.
fn music_server(f: &Fixture, model: &Path, limits: &str) -> Server {
    let config = f.path("music.toml");
    std::fs::write(
        &config,
        format!(
            "[speech]\nenabled = false\n[music]\nmodel = {:?}\n[limits]\n{limits}\n",
            s(model)
        ),
    )
    .unwrap();
    Server::start(&["--config", s(&config), "--listen", "127.0.0.1:0"])
}

#[test]
fn hostile_music_requests_are_refused_or_stopped_and_the_service_goes_on() {
    let f = Fixture::new();
    // A model slow enough that a long continuation takes many seconds, and a seed in 32/4:
    // 1000 bars of it are 128,000 frames, far more than 2 s of work.
    let model = f.path("slow-music");
    music::write_random_model_sized(&model, "onset-roll", 21, 88, 4, 256, 150);
    let long_bars = music::seed_bytes(480, 32, 2, &[(60, 480)]);
    let server = music_server(&f, &model, "max_bars = 1000\nmusic_seconds = 2");
    // Unbounded seeds are refused with the limit named.
    for ppq in [1, 480] {
        let (status, body) = http(
            server.addr,
            "POST",
            "/music/continue?bars=1",
            &[],
            &music::hostile_seed(ppq),
        );
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("limit") || text.contains("at most"), "{text}");
    }
    // Seeds whose bars were 0 ticks (ppq 1 in 1/8) are continued, and a truncated file is
    // refused as render refuses it.
    let tiny = music::seed_bytes(1, 1, 3, &[(60, 1), (64, 1)]);
    let (status, body) = http(server.addr, "POST", "/music/continue?bars=2", &[], &tiny);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for path in ["/music/continue", "/music/render"] {
        let (status, body) = http(server.addr, "POST", path, &[], &tiny[..tiny.len() - 3]);
        let text = String::from_utf8_lossy(&body);
        assert_eq!(
            (status, text.contains("truncated")),
            (400, true),
            "{path}: {text}"
        );
    }
    // A job over the time limit is stopped and answered 503.
    let (status, body) = http(
        server.addr,
        "POST",
        "/music/continue?bars=1000",
        &[],
        &long_bars,
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("music_seconds"), "{text}");
    let m = metrics_text(server.addr);
    assert_eq!(
        metric(
            &m,
            "reprise_music_jobs_stopped_total{reason=\"time_limit\"}"
        ),
        1.0
    );
    let (status, _) = http(server.addr, "POST", "/music/continue?bars=1", &[], &tiny);
    assert_eq!(status, 200);
    drop(server);

    // A job whose client went away is stopped, and frees the only turn (music_jobs = 1).
    let server = music_server(&f, &model, "max_bars = 1000\nmusic_seconds = 3600");
    let mut client = TcpStream::connect(server.addr).unwrap();
    let request = format!(
        "POST /music/continue?bars=1000 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        long_bars.len()
    );
    client.write_all(request.as_bytes()).unwrap();
    client.write_all(&long_bars).unwrap();
    assert!(
        wait_for_metric(server.addr, "reprise_music_jobs_active", 1.0, 30),
        "the job did not start"
    );
    drop(client);
    assert!(
        wait_for_metric(
            server.addr,
            "reprise_music_jobs_stopped_total{reason=\"client_gone\"}",
            1.0,
            60
        ),
        "the job of a client that went away was not stopped"
    );
    assert_eq!(
        metric(&metrics_text(server.addr), "reprise_music_jobs_active"),
        0.0
    );
    let (status, _) = http(server.addr, "POST", "/music/continue?bars=1", &[], &tiny);
    assert_eq!(status, 200);
}

/// `GET /health` as JSON.
#[cfg(feature = "jack")]
fn health(addr: SocketAddr) -> Value {
    let (_, body) = http(addr, "GET", "/health", &[], b"");
    serde_json::from_slice(&body).unwrap()
}

/// The live microphone dies with its JACK server: `/health` says so, `/live` answers 503.
#[cfg(feature = "jack")]
#[test]
fn health_tells_when_the_live_microphone_has_died() {
    let _lock = common::devices();
    let name = format!("reprise-live-{}", std::process::id());
    let jackd = common::start_jack_server(&name);
    let f = Fixture::new();
    let server = f.serve_with_env(
        "[live.microphone]\nhost = \"jack\"",
        &[("JACK_DEFAULT_SERVER", &name)],
    );
    assert_eq!(health(server.addr)["live"], true);
    common::stop_jack_server(jackd);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while health(server.addr)["live"] == true && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        health(server.addr)["live"],
        false,
        "the dead microphone is still live"
    );
    assert_eq!(upgrade_path(server.addr, "/live").0, 503);
}

#[test]
fn vosks_python_test_client_works_unchanged() {
    // The first Python with the package: $REPRISE_TEST_PYTHON if set, else the one on PATH or
    // Debian's (python3-websockets, which scripts/setup installs). Without one the test fails:
    // it must not pass by not running.
    let candidates: Vec<String> = match std::env::var("REPRISE_TEST_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec!["python3".into(), "/usr/bin/python3".into()],
    };
    let python = candidates
        .iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import websockets"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "no Python among {candidates:?} has the `websockets` package: run scripts/setup \
                 (it installs python3-websockets)"
            )
        });
    let f = Fixture::new();
    let wav = f.wav("py.wav", RATE, 8.0, 21);
    let expected = f.transcripts(&[&wav]).remove(0);
    let server = f.serve("");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vosk_client.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(server.url("/"))
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (pcm, _) = pcm_bytes(&wav);
    // One reply per chunk of 8000 bytes, and the final result.
    assert_eq!(lines.len(), pcm.len().div_ceil(CHUNK_BYTES) + 1);
    assert!(
        lines
            .iter()
            .any(|v| v["partial"].as_str().is_some_and(|p| !p.is_empty()))
    );
    let text: Vec<&str> = lines
        .iter()
        .filter_map(|v| v["text"].as_str())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(text.join(" "), expected);
}
