//! The bodies of the real-time callbacks must not allocate. They run here under an
//! allocator that counts every allocation made inside `assert_no_alloc`.

use std::sync::Arc;
use std::sync::Mutex;

use assert_no_alloc::{AllocDisabler, assert_no_alloc, reset_violation_count, violation_count};

use reprise::audio::capture::{CaptureSink, CaptureStats};
use reprise::audio::playback::{PlaybackSource, PlaybackStats};
use reprise::audio::resample::BlockPipeline;
use reprise::music::jam::scheduler::MidiSend;
use reprise::music::live::{MidiEvent, MidiInSink, MidiInStats};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

// The violation counter is global: run one check at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn allocations_in(f: impl FnOnce()) -> u32 {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    reset_violation_count();
    assert_no_alloc(f);
    let count = violation_count();
    reset_violation_count();
    count
}

#[test]
fn the_check_detects_an_allocation() {
    let count = allocations_in(|| {
        let v: Vec<u64> = Vec::with_capacity(64);
        std::hint::black_box(v);
    });
    assert!(count > 0, "the allocation checker saw nothing");
}

#[test]
fn capture_callback_does_not_allocate() {
    let (producer, mut consumer) = rtrb::RingBuffer::<f32>::new(4096);
    let stats = Arc::new(CaptureStats::default());
    let mut stereo = CaptureSink::new(producer, 2, stats.clone());
    let i16_data: Vec<i16> = (0..1024).map(|i| (i * 31 % 2000) as i16 - 1000).collect();
    let f32_data: Vec<f32> = (0..1024).map(|i| (i as f32 * 0.01).sin()).collect();
    let u16_data: Vec<u16> = (0..1024).map(|i| (i * 61 % 65535) as u16).collect();
    let i32_data: Vec<i32> = (0..1024).map(|i| i * 1_000_000).collect();
    let count = allocations_in(|| {
        for _ in 0..8 {
            stereo.push_interleaved(&i16_data);
            stereo.push_interleaved(&f32_data);
            stereo.push_interleaved(&u16_data);
            stereo.push_interleaved(&i32_data);
        }
    });
    assert_eq!(count, 0, "the capture callback allocated {count} times");
    // The ring filled up and the rest was counted as overrun, not lost silently.
    let frames = stats.frames.load(std::sync::atomic::Ordering::Relaxed);
    let overrun = stats
        .overrun_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(frames, 4096);
    assert_eq!(frames + overrun, 8 * 4 * 512);
    assert_eq!(
        consumer.pop().unwrap(),
        (-1000.0 + 31.0 - 1000.0) / 2.0 / 32768.0
    );
}

#[test]
fn playback_callback_does_not_allocate() {
    let (mut producer, consumer) = rtrb::RingBuffer::<f32>::new(2048);
    let stats = Arc::new(PlaybackStats::default());
    let mut source = PlaybackSource::new(consumer, 2, stats.clone());
    for i in 0..2048 {
        producer.push(i as f32 / 4096.0).unwrap();
    }
    let mut out_f32 = vec![0.0f32; 1024];
    let mut out_i16 = vec![0i16; 1024];
    let count = allocations_in(|| {
        for _ in 0..4 {
            source.fill_interleaved(&mut out_f32);
            source.fill_interleaved(&mut out_i16);
        }
    });
    assert_eq!(count, 0, "the playback callback allocated {count} times");
    assert_eq!(
        stats.frames.load(std::sync::atomic::Ordering::Relaxed),
        2048
    );
}

#[test]
fn midi_input_callback_does_not_allocate() {
    let (producer, mut consumer) = rtrb::RingBuffer::<MidiEvent>::new(256);
    let stats = Arc::new(MidiInStats::default());
    let mut sink = MidiInSink::new(producer, stats.clone());
    let sysex = [0xF0u8, 0x7E, 0x7F, 0x09, 0x01, 0xF7];
    reprise::rt::time::init();
    let count = allocations_in(|| {
        for i in 0..300u64 {
            sink.on_message(i * 1000, &[0x90, (i % 128) as u8, 100]);
            sink.on_message(i * 1000 + 1, &[0xF8]);
        }
        sink.on_message(0, &sysex);
    });
    assert_eq!(count, 0, "the MIDI input callback allocated {count} times");
    let first = consumer.pop().unwrap();
    assert_eq!(first.bytes(), &[0x90, 0, 100]);
    // Stamped on the process clock in the callback.
    assert!(first.received_us > 0 && first.received_us <= reprise::rt::time::now_us());
    assert_eq!(
        stats.received.load(std::sync::atomic::Ordering::Relaxed),
        256
    );
    assert_eq!(
        stats
            .dropped_full
            .load(std::sync::atomic::Ordering::Relaxed),
        344
    );
    assert_eq!(
        stats
            .dropped_long
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn resampling_worker_does_not_allocate_after_start() {
    let mut pipeline = BlockPipeline::new(48_000, 16_000, 160).unwrap();
    let input: Vec<f32> = (0..48_000).map(|i| (i as f32 * 0.05).sin()).collect();
    let mut sum = 0.0f32;
    let count = allocations_in(|| {
        for chunk in input.chunks(733) {
            pipeline.push(chunk, &mut |block| sum += block[0]);
        }
    });
    assert_eq!(count, 0, "resampling allocated {count} times");
    assert!(sum.is_finite());
}

#[path = "common/golden.rs"]
mod golden;

#[test]
fn engine_steps_and_chunks_do_not_allocate() {
    use reprise::engine::kernels::{Format, Isa};
    use reprise::engine::layers::{Linear, Nade, log_softmax_in_place};
    use reprise::engine::{LstmStack, Model, StackOptions};

    let model = Model::load(golden::golden_dir("lstm-3x48")).unwrap();
    for format in [Format::F32, Format::Bf16, Format::Int8] {
        for isa in Isa::available() {
            let opts = StackOptions {
                format,
                isa,
                max_batch: 4,
                max_chunk: 16,
            };
            let mut stack = LstmStack::from_model(&model, "lstm", opts).unwrap();
            let (n_in, h) = (stack.input_size(), stack.hidden_size());
            let mut states: Vec<_> = (0..4).map(|_| stack.new_state()).collect();
            let mut single = stack.new_state();
            let x: Vec<f32> = (0..50 * n_in).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut y = vec![0.0; 50 * h];
            let w: Vec<f32> = (0..10 * h).map(|i| (i as f32 * 0.11).cos() * 0.1).collect();
            let mut head = Linear::new(&w, &[0.1; 10], h, format, isa, 4);
            let mut logits = vec![0.0; 4 * 10];
            let nw: Vec<f32> = (0..12 * 20).map(|i| (i as f32 * 0.7).sin() * 0.3).collect();
            let cw: Vec<f32> = (0..20 * h).map(|i| (i as f32 * 0.3).cos() * 0.1).collect();
            let bw: Vec<f32> = (0..12 * h).map(|i| (i as f32 * 0.2).sin() * 0.1).collect();
            let mut nade = Nade::new(
                &nw,
                &nw,
                (&bw, &[0.0; 12]),
                (&cw, &[0.0; 20]),
                12,
                20,
                h,
                isa,
            );
            let mut frame = [false; 12];
            let mut seed = 1u32;
            let count = allocations_in(|| {
                for t in 0..20 {
                    let xb = &x[t * n_in..(t + 4) * n_in];
                    stack.step_into(&mut states, xb, &mut y[..4 * h]).unwrap();
                    head.forward_into(&y[..4 * h], &mut logits).unwrap();
                    log_softmax_in_place(&mut logits, 10).unwrap();
                    nade.sample_into(
                        &y[..h],
                        Default::default(),
                        |_, _| true,
                        || {
                            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            (seed >> 8) as f32 / (1u32 << 24) as f32
                        },
                        &mut frame,
                    )
                    .unwrap();
                    std::hint::black_box(nade.neg_log_prob(&y[..h], &frame).unwrap());
                }
                stack.forward_chunk_into(&mut single, &x, &mut y).unwrap();
            });
            assert_eq!(count, 0, "{format:?} {}: {count} allocations", isa.name());
        }
    }
}

#[path = "common/music.rs"]
mod music;

#[test]
fn music_generation_does_not_allocate_per_frame() {
    use reprise::music::model::NadeModel;
    use reprise::music::sample::{Constraints, Generator, Sampling, Scale};

    for encoding in ["roll", "onset-roll"] {
        let dir = tempfile::tempdir().unwrap();
        music::write_random_model(dir.path(), encoding, 36, 60, 4);
        let mut model = NadeModel::load(dir.path(), None).unwrap();
        let mut generator = Generator::new(&mut model, 3);
        let seed_frame = [(60u8, true), (64, true), (67, false)];
        let c = Constraints {
            sampling: Sampling {
                temperature: 0.9,
                top_p: 0.95,
            },
            scale: Scale::parse("C:major"),
            max_voices: Some(3),
        };
        let mut sounding = 0usize;
        let count = allocations_in(|| {
            for _ in 0..16 {
                generator.prime(&seed_frame).unwrap();
            }
            for _ in 0..64 {
                let frame = generator.next_frame(&c).unwrap();
                sounding += frame.iter().filter(|v| **v).count();
            }
        });
        assert_eq!(count, 0, "{encoding}: {count} allocations while generating");
        assert!(sounding > 0, "{encoding}: nothing was generated");
    }
}

#[test]
fn event_model_generation_does_not_allocate_per_token() {
    use reprise::music::events::{Drawn, EventConstraints, EventGenerator, EventModel};
    use reprise::music::sample::{Sampling, Scale};

    let dir = tempfile::tempdir().unwrap();
    music::write_random_events_model(dir.path(), 21, 88, 32);
    let mut model = EventModel::load(dir.path(), None).unwrap();
    let mut generator = EventGenerator::new(&model, 16, 3);
    // start, C4 for a quarter note, a quarter's shift
    let seed = [0, 1 + 16 + 39, 1 + 16 + 88 + 3, 4];
    generator.prime(&mut model, &seed).unwrap();
    let c = EventConstraints {
        sampling: Sampling {
            temperature: 0.9,
            top_p: 0.95,
        },
        scale: Scale::parse("C:major"),
        max_voices: Some(3),
    };
    let mut notes = 0usize;
    let count = allocations_in(|| {
        for _ in 0..256 {
            if let Drawn::Note { .. } = generator.next(&mut model, &c).unwrap() {
                notes += 1;
            }
        }
    });
    assert_eq!(count, 0, "{count} allocations while generating");
    assert!(notes > 0, "nothing was generated");
}

/// Records what the scheduler sends into a buffer allocated before the loop runs.
struct Recorder {
    sent: Vec<([u8; 3], usize, u64, u64)>,
}

impl MidiSend for Recorder {
    fn send(&mut self, message: &[u8], due_us: u64) -> bool {
        if self.sent.len() == self.sent.capacity() {
            return false;
        }
        let mut bytes = [0; 3];
        bytes[..message.len()].copy_from_slice(message);
        self.sent
            .push((bytes, message.len(), due_us, reprise::rt::time::now_us()));
        true
    }
}

#[test]
fn jam_scheduler_loop_does_not_allocate() {
    use reprise::music::jam::scheduler::{Scheduled, Scheduler, SchedulerShared};
    use reprise::rt::time::now_us;
    use std::sync::atomic::Ordering;

    let (mut producer, consumer) = rtrb::RingBuffer::<Scheduled>::new(512);
    let shared = Arc::new(SchedulerShared::default());
    let recorder = Recorder {
        sent: Vec::with_capacity(4096),
    };
    let mut scheduler = Scheduler::new(consumer, recorder, shared.clone(), 0);
    // 200 notes 100 µs apart, some chords, then a cancel, a muted stretch and the exit.
    let t0 = now_us() + 2_000;
    for i in 0..200u64 {
        let key = 40 + (i % 40) as u8;
        producer
            .push(Scheduled::new(t0 + i * 100, 0, &[0x90, key, 100]).unwrap())
            .unwrap();
        producer
            .push(Scheduled::new(t0 + i * 100 + 50, 0, &[0x80, key, 0]).unwrap())
            .unwrap();
    }
    let count = allocations_in(|| {
        while now_us() < t0 + 25_000 {
            scheduler.step();
        }
        // Notes left sounding, then cancelled.
        let now = now_us();
        for key in [60u8, 64, 67] {
            producer
                .push(Scheduled::new(now, 0, &[0x90, key, 90]).unwrap())
                .unwrap();
        }
        producer
            .push(Scheduled::new(now + 100_000, 0, &[0x80, 60, 0]).unwrap())
            .unwrap();
        for _ in 0..2_000 {
            scheduler.step();
            if scheduler.sounding() == 3 {
                break;
            }
        }
        let generation = shared.cancel();
        shared.mute.store(true, Ordering::Release);
        producer
            .push(Scheduled::new(now_us(), generation, &[0x90, 70, 90]).unwrap())
            .unwrap();
        for _ in 0..20 {
            scheduler.step();
        }
    });
    assert_eq!(count, 0, "the scheduler loop allocated {count} times");
    shared.stop.store(true, Ordering::Release);
    let recorder = scheduler.run();
    let sent = &recorder.sent;
    // 400 note messages, 3 more note-ons, their 3 note-offs and All Notes Off at the
    // cancel, nothing for the muted note, and All Notes Off at the exit.
    assert_eq!(sent.len(), 400 + 3 + 3 + 1 + 1, "{:?}", &sent[395..]);
    assert!(sent[..400].iter().all(|(_, _, due, at)| at >= due));
    assert_eq!(shared.cancelled.load(Ordering::Relaxed), 1);
    assert_eq!(shared.muted.load(Ordering::Relaxed), 1);
    assert_eq!(sent.last().unwrap().0, [0xB0, 123, 0]);
}

/// The scheduler's real send path: a midir output port (JACK here; the machine has no ALSA
/// sequencer), sends that succeed and sends that are refused, and the scheduler loop over it.
#[cfg(feature = "jack")]
#[test]
fn jam_scheduler_sends_through_a_real_midi_port_without_allocating() {
    use reprise::music::jam::scheduler::{Scheduled, Scheduler, SchedulerShared};
    use reprise::music::live::{MidiOut, PortSpec};
    use reprise::rt::time::now_us;
    use std::sync::atomic::Ordering;

    let mut port = MidiOut::open(&PortSpec::Virtual("reprise alloc".into()), "reprise-alloc")
        .expect("a JACK MIDI port: run the JACK build's tests through scripts/with-jack");
    let mut sent = [false; 4];
    let count = allocations_in(|| {
        sent[0] = MidiSend::send(&mut port, &[0x90, 60, 100], 0);
        sent[1] = MidiSend::send(&mut port, &[0x80, 60, 0], 0);
        sent[2] = MidiSend::send(&mut port, &[0x3C], 0);
        sent[3] = MidiSend::send(&mut port, &[0x90, 200, 1], 0);
    });
    assert_eq!(sent, [true, true, false, false]);
    assert_eq!(count, 0, "sending through the port allocated {count} times");

    let (mut producer, consumer) = rtrb::RingBuffer::<Scheduled>::new(512);
    let shared = Arc::new(SchedulerShared::default());
    let mut scheduler = Scheduler::new(consumer, port, shared.clone(), 0);
    let t0 = now_us() + 2_000;
    for i in 0..100u64 {
        let key = 40 + (i % 40) as u8;
        for (at, message) in [(0, [0x90, key, 100]), (50, [0x80, key, 0])] {
            producer
                .push(Scheduled::new(t0 + i * 100 + at, 0, &message).unwrap())
                .unwrap();
        }
    }
    let count = allocations_in(|| {
        while now_us() < t0 + 15_000 {
            scheduler.step();
        }
        shared.cancel();
        for _ in 0..20 {
            scheduler.step();
        }
    });
    assert_eq!(
        count, 0,
        "the scheduler loop over a port allocated {count} times"
    );
    shared.stop.store(true, Ordering::Release);
    scheduler.run().close();
}

/// A period's MIDI buffer: messages with their frames, in a buffer allocated up front.
struct FrameBuffer {
    written: Vec<(u32, [u8; 3])>,
}

impl reprise::music::jam::cycle::FrameWriter for FrameBuffer {
    fn write(&mut self, frame: u32, message: &[u8]) -> bool {
        if self.written.len() == self.written.capacity() {
            return false;
        }
        let mut bytes = [0; 3];
        bytes[..message.len()].copy_from_slice(message);
        self.written.push((frame, bytes));
        true
    }
}

#[test]
fn jack_output_process_callback_does_not_allocate() {
    use reprise::music::jam::cycle::{ClockLink, Cycle, CycleOutput, process_cycle};
    use reprise::music::jam::scheduler::{Scheduled, SchedulerShared};
    use reprise::rt::time::now_us;
    use std::sync::atomic::Ordering;

    let (mut producer, consumer) = rtrb::RingBuffer::<Scheduled>::new(1024);
    let shared = Arc::new(SchedulerShared::default());
    let mut output = CycleOutput::new(consumer, shared.clone(), 0);
    let mut buffer = FrameBuffer {
        written: Vec::with_capacity(4096),
    };
    // 300 notes 150 µs apart from 10 ms ahead, some late ones first; periods of 256 frames
    // at 48 kHz on a server clock 7 s ahead of the process clock.
    let t0 = now_us() + 10_000;
    for i in 0..5u64 {
        producer
            .push(Scheduled::new(t0 - 9_000 + i, 0, &[0x90, 30 + i as u8, 90]).unwrap())
            .unwrap();
    }
    for i in 0..300u64 {
        let key = 40 + (i % 40) as u8;
        producer
            .push(Scheduled::new(t0 + i * 150, 0, &[0x90, key, 100]).unwrap())
            .unwrap();
        producer
            .push(Scheduled::new(t0 + i * 150 + 70, 0, &[0x80, key, 0]).unwrap())
            .unwrap();
    }
    let server = 7_000_000u64;
    let period = 5_333u64;
    let mut link = ClockLink::default();
    let mut start = t0 - 5_000;
    let cycle = |link: &mut ClockLink, start: &mut u64| {
        // The callback's clock reads and cycle times, as the JACK client makes them.
        link.update(server + *start, *start, server + *start + 1);
        let c = Cycle {
            start_us: link.to_process(server + *start),
            end_us: link.to_process(server + *start + period),
            frames: 256,
        };
        *start += period;
        c
    };
    let count = allocations_in(|| {
        for _ in 0..12 {
            let c = cycle(&mut link, &mut start);
            process_cycle(&mut output, &c, &mut buffer);
        }
        // Three notes left sounding, then a cancel, a muted note and the stop.
        let now = start;
        for key in [60u8, 64, 67] {
            producer
                .push(Scheduled::new(now + 100, 0, &[0x90, key, 90]).unwrap())
                .unwrap();
        }
        let c = cycle(&mut link, &mut start);
        process_cycle(&mut output, &c, &mut buffer);
        let generation = shared.cancel();
        shared.mute.store(true, Ordering::Release);
        producer
            .push(Scheduled::new(start + 100, generation, &[0x90, 70, 90]).unwrap())
            .unwrap();
        for _ in 0..2 {
            let c = cycle(&mut link, &mut start);
            process_cycle(&mut output, &c, &mut buffer);
        }
        shared.stop.store(true, Ordering::Release);
        for _ in 0..3 {
            let c = cycle(&mut link, &mut start);
            process_cycle(&mut output, &c, &mut buffer);
        }
    });
    assert_eq!(count, 0, "the JACK output callback allocated {count} times");
    let written = &buffer.written;
    // 5 late note-ons, 600 note messages, 3 more note-ons, at the cancel the note-offs of
    // those 8 and All Notes Off, nothing for the muted note, and All Notes Off at the stop.
    assert_eq!(written.len(), 5 + 600 + 3 + 8 + 1 + 1);
    assert!(written[..5].iter().all(|(frame, _)| *frame == 0));
    assert_eq!(written.last().unwrap().1, [0xB0, 123, 0]);
    assert!(output.is_finished());
    assert_eq!(shared.muted.load(Ordering::Relaxed), 1);
    assert_eq!(shared.periods_stopped.load(Ordering::Relaxed), 3);
}

#[path = "common/speech.rs"]
mod speech;

#[test]
fn speech_recognition_does_not_allocate_while_streaming() {
    use reprise::speech::lm::NgramLm;
    use reprise::speech::{AcousticModel, Event, Recognizer, RecognizerOptions};

    let dir = tempfile::tempdir().unwrap();
    speech::write_random_model(dir.path(), 32);
    let lm = NgramLm::read(
        speech::TINY_ARPA.as_bytes(),
        std::path::Path::new("tiny.arpa"),
    )
    .unwrap();
    let model = AcousticModel::load(dir.path(), None).unwrap();
    let mut opts = RecognizerOptions {
        hot_words: vec!["hello:3".parse().unwrap()],
        ..Default::default()
    };
    opts.endpoint.max_utterance = 3.0;
    let mut rec = Recognizer::new(model, Some(std::sync::Arc::new(lm)), &opts).unwrap();
    let audio = speech::babble(16_000, 12.0, 3);
    // Warm up: the first utterances grow the text buffers to their working size.
    let (mut partials, mut finals, mut words) = (0, 0, 0);
    let mut sink = |e: Event<'_>| match e {
        Event::Partial(_) => partials += 1,
        Event::Final(u) => {
            finals += 1;
            words += u.word_count();
        }
    };
    for block in audio[..64_000].chunks(160) {
        rec.accept(block, &mut sink).unwrap();
    }
    let count = allocations_in(|| {
        for block in audio[64_000..].chunks(160) {
            rec.accept(block, &mut sink).unwrap();
        }
        rec.flush(&mut sink);
    });
    assert_eq!(count, 0, "recognition allocated {count} times");
    assert!(
        partials > 0 && finals >= 3 && words > 0,
        "{partials} {finals} {words}"
    );
    assert_eq!(rec.dropped(), 0);
}

#[test]
fn batched_acoustic_steps_over_shared_weights_do_not_allocate() {
    use reprise::speech::AcousticModel;

    let dir = tempfile::tempdir().unwrap();
    speech::write_random_model(dir.path(), 32);
    let model = AcousticModel::load(dir.path(), None).unwrap();
    // As each of the daemon's inference threads holds it: shared weights, a batch of 8.
    let mut batch = model.share(8);
    let (n, v) = (model.step_size(), model.outputs());
    let mut states: Vec<_> = (0..8).map(|_| model.new_state()).collect();
    let input: Vec<f32> = (0..8 * n).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
    let mut out = vec![0.0; 8 * v];
    let count = allocations_in(|| {
        for b in [8, 3, 1, 8] {
            batch
                .step_batch_into(&mut states[..b], &input[..b * n], &mut out[..b * v])
                .unwrap();
        }
    });
    assert_eq!(count, 0, "batched steps allocated {count} times");
    assert!(out.iter().all(|x| x.is_finite() && *x <= 0.0));
}
