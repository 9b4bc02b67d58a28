//! Partial-result latency of live transcription over a real, paced capture device.
//!
//! Run with `scripts/bench-speech-latency`, which starts a private JACK dummy server and
//! routes ALSA's default capture device to a raw file paced by JACK (see `scripts/with-jack`).
//! This program writes that file (`$TEST_MIC_RAW`): the spoken samples of `samples/speech/`
//! one after another, each followed by silence, several rounds. It then captures it through
//! cpal exactly as `reprise listen` does and feeds the recognizer block by block.
//!
//! Latency of an utterance = wall time at which the recognizer first reports a result (partial
//! or final) that holds the utterance's complete last word, minus the wall time at which the
//! end of the speech (the last sample above -40 dBFS) reached Reprise. The device clock is
//! mapped to wall time by the earliest block arrival (arrival minus stream position, minimum
//! over all blocks), so the fixed buffering of the device is excluded and everything after it
//! (block hand-off, front end, model, decoder, the model's frame stacking) is included.
//!
//! Prints the latency median, p95 and max, the finals' word error rate against the
//! transcripts, the real-time factor of the speech thread and the capture counters.
//!
//!   scripts/bench-speech-latency [-- --model DIR] [--rounds N] [--no-lm]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reprise::audio::device::ConfigRequest;
use reprise::audio::{BlockSource, Capture, CaptureConfig, HostChoice};
use reprise::speech::lm::NgramLm;
use reprise::speech::score::word_errors;
use reprise::speech::{AcousticModel, Event, Recognizer, RecognizerOptions};

const RATE: u32 = 16_000;
const GAP_SECONDS: f64 = 1.5;

struct Utt {
    /// Stream time of the end of speech.
    speech_end: f64,
    /// Stream time the utterance's audio starts.
    start: f64,
    text: String,
}

fn read_mono(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.sample_rate, RATE, "{} must be 16 kHz", path.display());
    assert_eq!(spec.channels, 1, "{} must be mono", path.display());
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

/// Index just past the last 10 ms window whose RMS is above -40 dBFS.
fn speech_end(a: &[i16]) -> usize {
    let win = (RATE / 100) as usize;
    let thr = 32768.0 * 0.01;
    let mut end = 0;
    for (i, w) in a.chunks(win).enumerate() {
        let rms = (w.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        if rms > thr {
            end = i * win + w.len();
        }
    }
    end
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k]
}

fn main() {
    let mut model_dir = reprise::models::bundled("speech-en");
    let mut rounds = 4usize;
    let mut use_lm = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model_dir = PathBuf::from(args.next().expect("--model DIR")),
            "--rounds" => rounds = args.next().expect("--rounds N").parse().expect("a number"),
            "--no-lm" => use_lm = false,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let raw_path = std::env::var_os("TEST_MIC_RAW")
        .map(PathBuf::from)
        .expect("TEST_MIC_RAW is not set: run scripts/bench-speech-latency");

    // The input: every sample, `rounds` times, with silence between.
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/speech");
    let list = std::fs::read_to_string(samples.join("transcripts.tsv")).expect("transcripts");
    let mut pcm: Vec<i16> = vec![0; RATE as usize];
    let mut utts = Vec::new();
    for _ in 0..rounds {
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let (file, text) = line.split_once('\t').expect("file<TAB>text");
            let a = read_mono(&samples.join(file));
            let start = pcm.len();
            utts.push(Utt {
                speech_end: (start + speech_end(&a)) as f64 / RATE as f64,
                start: start as f64 / RATE as f64,
                text: text.to_string(),
            });
            pcm.extend_from_slice(&a);
            pcm.extend(std::iter::repeat_n(0, (GAP_SECONDS * RATE as f64) as usize));
        }
    }
    let total = pcm.len() as f64 / RATE as f64;
    // Past its end the file plugin repeats stale data: leave room.
    pcm.extend(std::iter::repeat_n(0, 10 * RATE as usize));
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw_path, bytes).expect("writing the capture file");

    let model = AcousticModel::load(&model_dir, None).expect("loading the speech model");
    let lm = if use_lm {
        ["lm.arpa", "lm.arpa.gz"]
            .iter()
            .map(|n| model_dir.join(n))
            .find(|p| p.is_file())
            .map(|p| Arc::new(NgramLm::load(&p).expect("loading the language model")))
    } else {
        None
    };
    let lm_used = lm.is_some();
    let mut rec = Recognizer::new(model, lm, &RecognizerOptions::default()).expect("recognizer");

    let config = CaptureConfig {
        host: HostChoice::Default,
        rate: Some(RATE),
        device: ConfigRequest {
            rate: Some(RATE),
            channels: Some(1),
            format: Some(cpal::SampleFormat::I16),
        },
        ..Default::default()
    };
    let mut capture = Capture::start(&config).expect("opening the capture device");
    // (wall, is_final, text, final start, final end)
    let mut events: Vec<(Instant, bool, String, f64, f64)> = Vec::new();
    let mut offset: Option<f64> = None; // min(arrival - stream position), seconds since `t_ref`
    let t_ref = Instant::now();
    let mut busy = 0.0f64;
    let mut consumed = 0usize;
    while (consumed as f64) < (total * RATE as f64) {
        let block = match capture.next_block().expect("capture") {
            Some(b) => b,
            None => break,
        };
        let arrival = t_ref.elapsed().as_secs_f64();
        consumed += block.len();
        let pos = consumed as f64 / RATE as f64;
        offset = Some(offset.map_or(arrival - pos, |o: f64| o.min(arrival - pos)));
        let t = Instant::now();
        rec.accept(block, &mut |e| match e {
            Event::Partial(text) => events.push((Instant::now(), false, text.to_owned(), 0.0, 0.0)),
            Event::Final(u) => {
                events.push((Instant::now(), true, u.text().to_owned(), u.start, u.end))
            }
        })
        .expect("recognizer");
        busy += t.elapsed().as_secs_f64();
    }
    rec.flush(&mut |e| {
        if let Event::Final(u) = e {
            events.push((Instant::now(), true, u.text().to_owned(), u.start, u.end))
        }
    });
    let stats = capture.stats();
    let (overruns, dropped, xruns) = (
        stats
            .overrun_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        stats
            .dropped_blocks
            .load(std::sync::atomic::Ordering::Relaxed),
        stats.xruns.load(std::sync::atomic::Ordering::Relaxed),
    );
    capture.stop();
    let offset = offset.expect("no audio arrived");

    // Match each utterance with the final that covers its speech end.
    let finals: Vec<&(Instant, bool, String, f64, f64)> = events.iter().filter(|e| e.1).collect();
    let mut latencies = Vec::new();
    let (mut errors, mut ref_words) = (0usize, 0usize);
    let mut missed = 0usize;
    for (k, u) in utts.iter().enumerate() {
        let next_start = utts.get(k + 1).map_or(f64::INFINITY, |n| n.start);
        let hyp: Vec<&&(Instant, bool, String, f64, f64)> = finals
            .iter()
            .filter(|f| f.3 < u.speech_end && f.4 > u.start && f.3 < next_start)
            .collect();
        let hyp_text: String = hyp
            .iter()
            .map(|f| f.2.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let (e, n) = word_errors(&u.text, &hyp_text);
        errors += e;
        ref_words += n;
        let Some(last_final) = hyp.last() else {
            missed += 1;
            continue;
        };
        let want = words(&last_final.2);
        let wall = |t: f64| t_ref + Duration::from_secs_f64((offset + t).max(0.0));
        let (start_wall, end_wall) = (wall(u.start), wall(u.speech_end));
        // The first result of this utterance with as many words as its final and the same
        // last word (the final itself at the latest).
        let first = events.iter().find(|e| {
            let w = words(&e.2);
            (e.1 && std::ptr::eq(e, *last_final))
                || (!e.1 && e.0 >= start_wall && w.len() == want.len() && w.last() == want.last())
        });
        if let Some(e) = first {
            let lat = if e.0 >= end_wall {
                (e.0 - end_wall).as_secs_f64()
            } else {
                -(end_wall - e.0).as_secs_f64()
            };
            latencies.push(lat * 1000.0);
        }
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "model {} ({}), {} utterances over {:.0} s of paced capture",
        model_dir.display(),
        if lm_used {
            "with LM"
        } else {
            "greedy/beam, no LM"
        },
        utts.len(),
        total
    );
    println!(
        "partial latency after end of speech (ms): median {:.0}  p95 {:.0}  max {:.0}  (n={}, missed {})",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        missed
    );
    println!(
        "finals WER {:.1}% ({errors} errors / {ref_words} words); speech thread RTF {:.4}; overrun frames {overruns}, dropped blocks {dropped}, xruns {xruns}",
        100.0 * errors as f64 / ref_words.max(1) as f64,
        busy / total
    );
}
