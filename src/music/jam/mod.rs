//! `reprise jam`: call and response with a DAW over MIDI ports, in time.
//!
//! Three threads, joined by wait-free SPSC rings:
//! ```text
//! midir input callback ─ring (MidiEvent, stamped on the process clock)─▶ jam thread
//!   (clock follower, call recorder, call-end detection, generation, playback ahead of time)
//!   ─ring (Scheduled, in time order)─▶ output:
//!     JACK build:  the output client's process callback (each event at its frame)
//!     otherwise:   scheduler thread (sleep, spin, send) ─▶ midir output
//! ```
//! - [`clock`]: tempo and bar position from MIDI clock, or a fixed tempo;
//! - [`session`]: the call, its end, the response and the player;
//! - [`scheduler`]: sending each event at its time and stopping every note it started;
//! - [`cycle`] and `jack_out` (JACK build): the output written one JACK period at a time,
//!   each event at the frame of its due time.
//!
//! The input callback, the scheduler loop and the output's process callback do not allocate
//! or lock. The jam thread allocates only when a call ends (to generate the response).

pub mod clock;
pub mod cycle;
#[cfg(feature = "jack")]
pub mod jack_out;
pub mod scheduler;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::music::continuation::ScaleChoice;
use crate::music::live::{MidiError, MidiIn, PortSpec};
use crate::music::model::{MusicError, MusicModel};
use crate::music::sample::Sampling;
use crate::rt::time::now_us;

use scheduler::{Scheduled, SchedulerShared};
use session::{JamStatus, Session};

/// Why jamming could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JamError {
    /// Opening a port failed (unknown name, no MIDI system).
    #[error(transparent)]
    Midi(#[from] MidiError),
    /// Generating a response failed.
    #[error(transparent)]
    Music(#[from] MusicError),
    /// An option is out of range.
    #[error("invalid option: {message}")]
    Invalid { message: String },
    /// The MIDI system went away while jamming (the JACK server stopped). Retrying after
    /// restarting it can help.
    #[error("the MIDI system went away: {detail}")]
    ServerGone { detail: String },
    /// A thread could not start or stopped unexpectedly (a bug).
    #[error("jam thread failed: {detail}")]
    Thread { detail: String },
}

/// Control change numbers of the jam controls (`None`: not mapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CcMap {
    /// Ends the call now (value ≥ 64).
    pub end_call: Option<u8>,
    /// Temperature from 0.2 (value 0) to 2.0 (127).
    pub temperature: Option<u8>,
    /// Response length from 1 (value 0) to 8 bars (127).
    pub bars: Option<u8>,
    /// A new random seed for the next responses (value ≥ 64).
    pub variation: Option<u8>,
    /// Stops every note and forgets the call (value ≥ 64).
    pub panic: Option<u8>,
}

impl Default for CcMap {
    fn default() -> Self {
        CcMap {
            end_call: Some(20),
            temperature: Some(21),
            bars: Some(22),
            variation: Some(23),
            panic: Some(24),
        }
    }
}

/// Everything `reprise jam` can be told.
#[derive(Clone, Debug)]
pub struct JamOptions {
    /// Where the DAW's notes and clock come from.
    pub input: PortSpec,
    /// Where the response goes.
    pub output: PortSpec,
    /// Tempo without MIDI clock.
    pub bpm: f64,
    /// Response length in bars.
    pub bars: u32,
    /// Quarter notes per bar.
    pub beats_per_bar: u8,
    /// Bars of silence that end a call.
    pub call_end_bars: u32,
    /// Temperature and top-p.
    pub sampling: Sampling,
    /// Scale lock.
    pub scale: ScaleChoice,
    /// Most notes sounding at once.
    pub max_voices: Option<usize>,
    /// Without `max_voices`, keep to as many notes at once as the call sounds at most.
    pub fit_voices: bool,
    /// Output channel, 0..16.
    pub channel: u8,
    /// Shift of every output time in milliseconds (negative: earlier).
    pub offset_ms: f64,
    /// Repeat the last response until a new call.
    pub looping: bool,
    /// Listen for the next call while answering.
    pub overlap: bool,
    /// No response note-ons while the user holds notes.
    pub mute_while_playing: bool,
    /// Control change numbers.
    pub cc: CcMap,
    /// Random seed of the first response.
    pub seed: u64,
}

impl Default for JamOptions {
    fn default() -> Self {
        JamOptions {
            input: PortSpec::Virtual("reprise in".into()),
            output: PortSpec::Virtual("reprise out".into()),
            bpm: 120.0,
            bars: 2,
            beats_per_bar: 4,
            call_end_bars: 1,
            sampling: Sampling::default(),
            scale: ScaleChoice::Off,
            max_voices: None,
            fit_voices: true,
            channel: 0,
            offset_ms: 0.0,
            looping: false,
            overlap: false,
            mute_while_playing: false,
            cc: CcMap::default(),
            seed: 1,
        }
    }
}

impl JamOptions {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), JamError> {
        let bad = |message: String| Err(JamError::Invalid { message });
        if !(self.bpm.is_finite() && (20.0..=400.0).contains(&self.bpm)) {
            return bad(format!("--bpm must be 20..=400 (got {})", self.bpm));
        }
        if !(1..=64).contains(&self.bars) {
            return bad(format!("--bars must be 1..=64 (got {})", self.bars));
        }
        if !(1..=16).contains(&self.beats_per_bar) {
            return bad(format!(
                "--beats-per-bar must be 1..=16 (got {})",
                self.beats_per_bar
            ));
        }
        if !(1..=16).contains(&self.call_end_bars) {
            return bad(format!(
                "--call-end-bars must be 1..=16 (got {})",
                self.call_end_bars
            ));
        }
        crate::music::sample::check_controls(self.sampling, self.max_voices)
            .map_err(|message| JamError::Invalid { message })?;
        if self.channel > 15 {
            return bad(format!(
                "--channel must be 1..=16 (got {})",
                self.channel + 1
            ));
        }
        if !(self.offset_ms.is_finite() && self.offset_ms.abs() <= 1000.0) {
            return bad(format!(
                "--offset-ms must be within ±1000 (got {})",
                self.offset_ms
            ));
        }
        let ccs = [
            self.cc.end_call,
            self.cc.temperature,
            self.cc.bars,
            self.cc.variation,
            self.cc.panic,
        ];
        if let Some(cc) = ccs.iter().flatten().find(|cc| **cc > 119) {
            return bad(format!("control change numbers must be 0..=119 (got {cc})"));
        }
        Ok(())
    }
}

/// A snapshot for the status line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatusSnapshot {
    /// Tempo.
    pub bpm: f64,
    /// Whether the tempo comes from MIDI clock (else --bpm).
    pub bar: Option<u64>,
    /// Listening, answering or stopped.
    pub state: session::JamState,
    /// Note-ons received.
    pub notes_in: u64,
    /// Note-ons sent.
    pub notes_out: u64,
    /// Input messages dropped (ring full) plus output events sent over 1 ms late.
    pub dropped: u64,
    /// Responses generated.
    pub responses: u64,
    /// From the end of the last call to its response ready, in microseconds.
    pub last_ready_us: u64,
    /// The longest such time.
    pub max_ready_us: u64,
    /// From the end of the last call to the start of its response, in microseconds.
    pub last_lead_us: u64,
    /// Output events sent more than 1 ms after their time.
    pub late: u64,
    /// Whether the output runs at real-time priority (the scheduler thread got it, or the
    /// JACK server runs its clients in real time).
    pub realtime: bool,
}

impl std::fmt::Display for StatusSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            session::JamState::Listening => "listening",
            session::JamState::Answering => "answering",
            session::JamState::Stopped => "stopped",
        };
        let bar = self.bar.map_or("-".to_string(), |b| (b + 1).to_string());
        write!(
            f,
            "{:6.1} BPM  bar {bar:>4}  {state:<9}  in {}  out {}  dropped {}",
            self.bpm, self.notes_in, self.notes_out, self.dropped
        )
    }
}

/// Output through midir that goes quiet once the MIDI system is gone.
#[cfg(not(feature = "jack"))]
struct PortSink {
    port: crate::music::live::MidiOut,
    gone: Arc<AtomicBool>,
}

#[cfg(not(feature = "jack"))]
impl scheduler::MidiSend for PortSink {
    fn send(&mut self, message: &[u8], due_us: u64) -> bool {
        !self.gone.load(Ordering::Acquire)
            && scheduler::MidiSend::send(&mut self.port, message, due_us)
    }
}

/// Where the scheduled events go.
enum Output {
    /// The scheduler thread, sending through midir.
    #[cfg(not(feature = "jack"))]
    Thread(JoinHandle<()>),
    /// A JACK client writing each event at its frame.
    #[cfg(feature = "jack")]
    Jack(jack_out::JackOutput),
}

impl Output {
    /// Opens the output port and starts playing the ring. Returns the output, the port's
    /// name and whether the output runs at real-time priority.
    #[cfg(feature = "jack")]
    fn open(
        spec: &PortSpec,
        consumer: rtrb::Consumer<Scheduled>,
        shared: &Arc<SchedulerShared>,
        channel: u8,
        gone: &Arc<AtomicBool>,
    ) -> Result<(Output, String, Arc<AtomicBool>), JamError> {
        // A client name of its own: JACK would rename a second "reprise" to "reprise-01".
        let output = jack_out::JackOutput::open(
            spec,
            "reprise-out",
            consumer,
            shared.clone(),
            channel,
            gone.clone(),
        )?;
        let name = output.name().to_owned();
        let realtime = Arc::new(AtomicBool::new(output.is_realtime()));
        Ok((Output::Jack(output), name, realtime))
    }

    /// Opens the output port and starts playing the ring. Returns the output, the port's
    /// name and whether the output runs at real-time priority.
    #[cfg(not(feature = "jack"))]
    fn open(
        spec: &PortSpec,
        consumer: rtrb::Consumer<Scheduled>,
        shared: &Arc<SchedulerShared>,
        channel: u8,
        gone: &Arc<AtomicBool>,
    ) -> Result<(Output, String, Arc<AtomicBool>), JamError> {
        let port = crate::music::live::MidiOut::open(spec, "reprise-out")?;
        let name = port.name().to_owned();
        let sink = PortSink {
            port,
            gone: gone.clone(),
        };
        let scheduler = scheduler::Scheduler::new(consumer, sink, shared.clone(), channel);
        let realtime = Arc::new(AtomicBool::new(false));
        let scheduler_realtime = realtime.clone();
        let thread = std::thread::Builder::new()
            .name("reprise-scheduler".into())
            .spawn(move || {
                scheduler_realtime.store(
                    crate::rt::priority::make_current_thread_realtime(),
                    Ordering::Relaxed,
                );
                scheduler.run().port.close()
            })
            .map_err(spawn_failed)?;
        Ok((Output::Thread(thread), name, realtime))
    }

    /// Stops every sounding note (note-offs and All Notes Off) and closes the port. False if
    /// the output's thread panicked.
    fn close(self, shared: &SchedulerShared) -> bool {
        shared.stop.store(true, Ordering::Release);
        match self {
            #[cfg(not(feature = "jack"))]
            Output::Thread(thread) => thread.join().is_ok(),
            #[cfg(feature = "jack")]
            Output::Jack(output) => {
                output.close();
                true
            }
        }
    }
}

fn spawn_failed(e: std::io::Error) -> JamError {
    JamError::Thread {
        detail: e.to_string(),
    }
}

/// A running jam.
pub struct Jam {
    stop: Arc<AtomicBool>,
    jam: Option<JoinHandle<Result<(), JamError>>>,
    output: Option<Output>,
    shared: Arc<SchedulerShared>,
    status: Arc<JamStatus>,
    realtime: Arc<AtomicBool>,
    input_name: String,
    output_name: String,
}

/// Capacity of the input ring (messages) and of the scheduler ring (events).
const INPUT_RING: usize = 4096;
const OUTPUT_RING: usize = 4096;

impl Jam {
    /// Opens the ports and starts the jam thread and the output.
    pub fn start(model: MusicModel, opts: JamOptions) -> Result<Jam, JamError> {
        opts.validate()?;
        crate::rt::time::init();
        // Raised when the JACK server shuts down (never under ALSA).
        let gone = Arc::new(AtomicBool::new(false));
        let input = MidiIn::open(&opts.input, "reprise", INPUT_RING)?;
        let input_name = input.name().to_owned();
        let (producer, consumer) = rtrb::RingBuffer::new(OUTPUT_RING);
        let shared = Arc::new(SchedulerShared::default());
        let status = Arc::new(JamStatus::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (output, output_name, realtime) =
            Output::open(&opts.output, consumer, &shared, opts.channel, &gone)?;
        let session = Session::new(
            model,
            opts,
            now_us(),
            producer,
            shared.clone(),
            status.clone(),
        );
        let jam = {
            let (stop, gone, shared) = (stop.clone(), gone.clone(), shared.clone());
            std::thread::Builder::new()
                .name("reprise-jam".into())
                .spawn(move || jam_loop(session, input, &stop, &gone, &shared))
                .map_err(spawn_failed)?
        };
        Ok(Jam {
            stop,
            jam: Some(jam),
            output: Some(output),
            shared,
            status,
            realtime,
            input_name,
            output_name,
        })
    }

    /// The input port's name.
    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    /// The output port's name.
    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    /// Whether the jam thread has stopped (on an error; see [`Jam::stop`]).
    pub fn is_finished(&self) -> bool {
        self.jam.as_ref().is_none_or(|j| j.is_finished())
    }

    /// The figures for the status line.
    pub fn status(&self) -> StatusSnapshot {
        let s = &self.status;
        let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let bar = s.bar.load(Ordering::Relaxed);
        let late = r(&self.shared.late);
        StatusSnapshot {
            bpm: r(&s.bpm_milli) as f64 / 1000.0,
            bar: (bar >= 0).then_some(bar as u64),
            state: s.state(),
            notes_in: r(&s.notes_in),
            notes_out: r(&self.shared.notes_out),
            dropped: r(&s.dropped_in) + late,
            responses: r(&s.responses),
            last_ready_us: r(&s.last_ready_us),
            max_ready_us: r(&s.max_ready_us),
            last_lead_us: r(&s.last_lead_us),
            late,
            realtime: self.realtime.load(Ordering::Relaxed),
        }
    }

    /// Stops the jam thread and the output; every sounding note gets its note-off and All
    /// Notes Off is sent (unless the MIDI system is gone). Returns the final figures, or why
    /// the jam stopped.
    pub fn stop(mut self) -> Result<StatusSnapshot, JamError> {
        self.stop.store(true, Ordering::Release);
        let result = match self.jam.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(JamError::Thread {
                detail: "the jam thread panicked".into(),
            }),
            None => Ok(()),
        };
        if let Some(output) = self.output.take()
            && !output.close(&self.shared)
        {
            return Err(JamError::Thread {
                detail: "the scheduler thread panicked".into(),
            });
        }
        result.map(|()| self.status())
    }
}

impl Drop for Jam {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(j) = self.jam.take() {
            let _ = j.join();
        }
        if let Some(output) = self.output.take() {
            output.close(&self.shared);
        }
    }
}

fn jam_loop(
    mut session: Session,
    mut input: MidiIn,
    stop: &AtomicBool,
    gone: &AtomicBool,
    shared: &SchedulerShared,
) -> Result<(), JamError> {
    let result = (|| {
        while !stop.load(Ordering::Acquire) {
            if gone.load(Ordering::Acquire) {
                return Err(JamError::ServerGone {
                    detail: "the JACK server shut down".into(),
                });
            }
            // Bounded drain: at most a ring's worth per pass.
            for _ in 0..INPUT_RING {
                let Some(event) = input.try_recv() else { break };
                session.handle(&event);
            }
            session.status_dropped(input.stats().dropped_full.load(Ordering::Relaxed));
            session.poll(now_us())?;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    })();
    // Stop what sounds before the ports close.
    shared.cancel();
    input.close();
    result
}
