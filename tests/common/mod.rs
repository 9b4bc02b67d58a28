//! Shared helpers for the device tests. They expect the environment made by
//! `scripts/with-jack`: a private JACK server and an ALSA default device that reads
//! `$TEST_MIC_RAW` and writes `$TEST_SPK_RAW`, paced by that server.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// Device tests share one JACK server and process-wide environment variables.
static DEVICES: Mutex<()> = Mutex::new(());

/// Takes the device lock and checks that the JACK test environment is there.
pub fn devices() -> MutexGuard<'static, ()> {
    assert!(
        std::env::var_os("JACK_DEFAULT_SERVER").is_some()
            && std::env::var_os("XDG_CONFIG_HOME").is_some(),
        "device tests need a JACK server and the ALSA test route: run them through \
         scripts/with-jack (scripts/test does)"
    );
    DEVICES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets an environment variable for the devices this process opens next.
///
/// Callers hold the [`devices`] lock, which every test of a device-test binary takes
/// before it touches the environment, opens a device or starts a process.
pub fn set_env(key: &str, value: &Path) {
    // SAFETY: every test in the binaries that call this holds the `DEVICES` lock while it
    // reads the environment (opening ALSA devices, spawning processes), so no other
    // thread reads or writes the environment during this call.
    unsafe { std::env::set_var(key, value) };
}

/// A deterministic test signal in [-0.8, 0.8]: two tones and a little noise.
pub fn test_signal(rate: u32, len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(747_796_405).wrapping_add(1);
    (0..len)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let t = i as f32 / rate as f32;
            0.45 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.25 * (2.0 * std::f32::consts::PI * 1234.5 * t + 0.3).sin()
                + 0.1 * noise
        })
        .collect()
}

/// One second of [`test_signal`] at 48 kHz lifted above zero, so that where it starts
/// in a received stream that began with silence is the first non-zero sample.
pub fn lifted_signal(seed: u32) -> Vec<f32> {
    test_signal(48_000, 48_000, seed)
        .iter()
        .map(|v| v * 0.5 + 0.25)
        .collect()
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the `reprise` binary with extra environment variables.
pub fn reprise(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reprise"));
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the reprise binary runs")
}

/// Runs `reprise`, expects the clean failure of a user error (exit code 1, an
/// `error:` line, no panic) and returns its stderr.
pub fn reprise_fails(args: &[&str], env: &[(&str, &Path)]) -> String {
    let output = reprise(args, env);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("reprise: error:"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    text
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A second JACK server with the dummy driver, named `name` (for tests that make it vanish),
/// once it accepts clients.
pub fn start_jack_server(name: &str) -> Child {
    let server = Command::new("jackd")
        .args(["-n", name, "-d", "dummy", "-r", "48000", "-p", "256"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("jackd runs");
    let ready = Command::new("jack_wait")
        .args(["-w", "-t", "20"])
        .env("JACK_DEFAULT_SERVER", name)
        .output()
        .unwrap();
    assert!(
        ready.status.success(),
        "the JACK server {name} did not start"
    );
    server
}

/// Stops a server from [`start_jack_server`] with SIGTERM, not SIGKILL: a killed server leaves
/// its slot in JACK's shared-memory registry behind, and the registry holds only a few.
pub fn stop_jack_server(mut server: Child) {
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let _ = server.wait();
}
