//! Load benchmark of `reprise serve` (run through `scripts/bench-serve`).
//!
//! The daemon runs pinned to one core (`taskset -c 0`, one inference thread, one network
//! thread); this process, on the other cores, opens N streams that each send 0.2 s of speech
//! every 0.2 s of wall time (real time, as a microphone would), and measures for every message
//! how long its reply took: the time a partial lags behind real time. N grows until a stream's
//! 99th-percentile lag passes 200 ms; the last N that kept every stream under it is the
//! figure. Memory per stream is the daemon's resident memory with N streams open, less its
//! memory with none, over N. `--soak SECONDS` instead runs streams that come and go (each
//! lives 5–60 s) at `--streams N` for that long and prints, every 10 s, the daemon's RSS, the
//! streams finished so far, those cut short (fewer replies than messages sent) and the replies'
//! 99th-percentile lag in that window.
//!
//!   cargo bench --bench serve_load -- [--model DIR] [--start N] [--step N] [--seconds S]
//!   cargo bench --bench serve_load -- --soak 3600 --streams 50

#[path = "../tests/common/serve.rs"]
mod serve;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const RATE: usize = 16_000;
const CHUNK: usize = RATE / 5;
const LAG_LIMIT: Duration = Duration::from_millis(200);

struct Args {
    model: Option<PathBuf>,
    start: usize,
    step: usize,
    seconds: f64,
    soak: Option<f64>,
    streams: usize,
}

fn args() -> Args {
    let mut a = Args {
        model: None,
        start: 20,
        step: 20,
        seconds: 20.0,
        soak: None,
        streams: 50,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--model" => a.model = Some(next.into()),
            "--start" => a.start = next.parse().expect("--start N"),
            "--step" => a.step = next.parse().expect("--step N"),
            "--seconds" => a.seconds = next.parse().expect("--seconds S"),
            "--soak" => a.soak = Some(next.parse().expect("--soak SECONDS")),
            "--streams" => a.streams = next.parse().expect("--streams N"),
            // cargo bench passes --bench.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// The spoken samples, as 16-bit PCM at 16 kHz, one after the other.
fn speech() -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/speech");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples/speech")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let (samples, _) = reprise::audio::wav::read_wav(&f, Some(RATE as u32)).unwrap();
        out.extend(
            samples
                .iter()
                .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes()),
        );
    }
    out
}

struct Daemon {
    child: Child,
    url: String,
}

impl Daemon {
    fn start(model: &Option<PathBuf>) -> Daemon {
        let exe = env!("CARGO_BIN_EXE_reprise");
        let mut command = if Command::new("taskset").arg("-V").output().is_ok() {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", exe]);
            c
        } else {
            eprintln!("taskset not found: the daemon is not pinned to one core");
            Command::new(exe)
        };
        command.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--max-sessions",
            "10000",
            "--log-level",
            "warn",
        ]);
        if let Some(m) = model {
            command.arg("--model").arg(m);
        }
        let config = std::env::temp_dir().join(format!("reprise-load-{}.toml", std::process::id()));
        std::fs::write(&config, "[engine]\nio_threads = 1\nmax_batch = 256\n").unwrap();
        command.arg("--config").arg(&config);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("reprise serve starts");
        let addr = serve::listening_address(&mut child);
        Daemon {
            child,
            url: format!("ws://{addr}/"),
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One real-time stream for `seconds`, starting at `offset` in the audio; returns the lag of
/// every reply.
async fn stream(url: String, audio: Arc<Vec<u8>>, offset: usize, seconds: f64) -> Vec<Duration> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::text(r#"{"config": {"sample_rate": 16000}}"#))
        .await
        .unwrap();
    let mut lags = Vec::new();
    let start = Instant::now();
    let chunks = (seconds * 5.0) as usize;
    let bytes = 2 * CHUNK;
    for k in 0..chunks {
        // The chunk's audio is complete at this time in real time.
        let due = start + Duration::from_millis(200 * (k as u64 + 1));
        tokio::time::sleep_until(due.into()).await;
        let at = (offset + k * bytes) % (audio.len() - bytes) / 2 * 2;
        if ws
            .send(Message::binary(audio[at..at + bytes].to_vec()))
            .await
            .is_err()
        {
            break;
        }
        match ws.next().await {
            Some(Ok(Message::Text(_))) => lags.push(due.elapsed()),
            _ => break,
        }
    }
    let _ = ws.send(Message::text(r#"{"eof" : 1}"#)).await;
    let _ = ws.next().await;
    lags
}

fn p99(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() * 99 / 100).copied().unwrap_or_default()
}

async fn ramp(a: &Args, audio: Arc<Vec<u8>>) {
    let daemon = Daemon::start(&a.model);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = daemon.rss_kib();
    println!("daemon idle RSS {idle} KiB");
    let mut best = 0;
    let mut n = a.start;
    loop {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (url, audio) = (daemon.url.clone(), Arc::clone(&audio));
                let offset = i * 12_345 * 2;
                tokio::spawn(stream(url, audio, offset, a.seconds))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(a.seconds / 2.0)).await;
        let rss = daemon.rss_kib();
        let mut worst = Duration::ZERO;
        let mut short = 0;
        for t in tasks {
            let mut lags = t.await.unwrap();
            if lags.len() < (a.seconds * 5.0) as usize {
                short += 1;
            }
            worst = worst.max(p99(&mut lags));
        }
        let per_stream = rss.saturating_sub(idle) as f64 / n as f64;
        println!(
            "streams={n} worst_p99_lag_ms={:.1} broken_streams={short} rss_kib={rss} \
             kib_per_stream={per_stream:.0}",
            worst.as_secs_f64() * 1e3
        );
        if worst > LAG_LIMIT || short > 0 {
            break;
        }
        best = n;
        n += a.step;
    }
    println!("max_realtime_streams_one_core={best}");
}

async fn soak(a: &Args, seconds: f64, audio: Arc<Vec<u8>>) {
    let daemon = Daemon::start(&a.model);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut running = tokio::task::JoinSet::new();
    let mut report = Instant::now();
    let mut samples = Vec::new();
    let (mut finished, mut cut_short) = (0u64, 0u64);
    let mut window: Vec<Duration> = Vec::new();
    while Instant::now() < end {
        while running.len() < a.streams {
            let life = 5.0 + (next() % 55) as f64;
            let offset = (next() % 1_000_000) as usize * 2;
            let url = daemon.url.clone();
            let audio = Arc::clone(&audio);
            running.spawn(async move {
                let lags = stream(url, audio, offset, life).await;
                (lags, (life * 5.0) as usize)
            });
        }
        tokio::select! {
            Some(done) = running.join_next() => {
                if let Ok((lags, sent)) = done {
                    finished += 1;
                    cut_short += u64::from(lags.len() < sent);
                    window.extend(lags);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if report.elapsed() >= Duration::from_secs(10) {
            report = Instant::now();
            let rss = daemon.rss_kib();
            samples.push(rss);
            println!(
                "t={:.0}s rss_kib={rss} streams_finished={finished} cut_short={cut_short} lag_p99_ms={:.1}",
                seconds - (end - Instant::now()).as_secs_f64(),
                p99(&mut window).as_secs_f64() * 1e3
            );
            window.clear();
        }
    }
    running.shutdown().await;
    if let (Some(first), Some(last), Some(max)) =
        (samples.first(), samples.last(), samples.iter().max())
    {
        println!(
            "soak_rss_kib first={first} last={last} max={max} streams_finished={finished} cut_short={cut_short}"
        );
    }
}

fn main() {
    let a = args();
    let audio = Arc::new(speech());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match a.soak {
        Some(seconds) => runtime.block_on(soak(&a, seconds, audio)),
        None => runtime.block_on(ramp(&a, audio)),
    }
}
