//! The jam output as a JACK client of its own (the `jack` build): its process callback
//! writes each event of the scheduler's ring at its frame ([`super::cycle`]), so a receiving
//! client sees the event at its due time instead of at a period boundary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cycle::{ClockLink, Cycle, CycleOutput, FrameWriter, process_cycle};
use super::scheduler::{Scheduled, SchedulerShared};
use crate::music::live::{MidiError, PortSpec};

impl FrameWriter for jack::MidiWriter<'_> {
    fn write(&mut self, frame: u32, message: &[u8]) -> bool {
        jack::MidiWriter::write(
            self,
            &jack::RawMidi {
                time: frame,
                bytes: message,
            },
        )
        .is_ok()
    }
}

/// The process callback: the port, the output state and the clock link.
struct Process {
    port: jack::Port<jack::MidiOut>,
    output: CycleOutput,
    link: ClockLink,
    sample_rate: u64,
}

impl jack::ProcessHandler for Process {
    fn process(&mut self, client: &jack::Client, scope: &jack::ProcessScope) -> jack::Control {
        // Clears the port's buffer for this period, even when nothing is written.
        let mut writer = self.port.writer(scope);
        let before = client.time();
        let now = crate::rt::time::now_us();
        let after = client.time();
        self.link.update(before, now, after);
        let frames = scope.n_frames();
        let nominal_us = frames as u64 * 1_000_000 / self.sample_rate.max(1);
        let cycle = match scope.cycle_times() {
            Ok(t) => Cycle::checked(
                self.link.to_process(t.current_usecs),
                self.link.to_process(t.next_usecs),
                now,
                frames,
                nominal_us,
            ),
            // Not expected from a running server; the nominal period from now will do.
            Err(_) => Cycle {
                start_us: now,
                end_us: now + nominal_us,
                frames,
            },
        };
        process_cycle(&mut self.output, &cycle, &mut writer);
        jack::Control::Continue
    }
}

/// Raises a flag when the JACK server shuts down.
struct Notifications {
    gone: Arc<AtomicBool>,
}

impl jack::NotificationHandler for Notifications {
    unsafe fn shutdown(&mut self, _status: jack::ClientStatus, _reason: &str) {
        // Async-signal-safe: one atomic store.
        self.gone.store(true, Ordering::Release);
    }
}

/// An open JACK MIDI output playing the scheduler's ring.
pub struct JackOutput {
    client: Option<jack::AsyncClient<Notifications, Process>>,
    shared: Arc<SchedulerShared>,
    gone: Arc<AtomicBool>,
    name: String,
    realtime: bool,
}

fn unavailable(e: jack::Error) -> MidiError {
    MidiError::Unavailable {
        detail: e.to_string(),
    }
}

/// How long closing waits for the process callback to send the last note-offs.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

impl JackOutput {
    /// Opens a client named `client_name` with one MIDI output port that plays `consumer`
    /// on `channel` (0..16), controlled through `shared` like the scheduler thread. A
    /// [`PortSpec::Named`] port is looked up among the JACK MIDI inputs (exact name or a
    /// unique part of it) and connected; a [`PortSpec::Virtual`] one is left for others to
    /// connect. `gone` is raised if the server shuts down.
    pub fn open(
        spec: &PortSpec,
        client_name: &str,
        consumer: rtrb::Consumer<Scheduled>,
        shared: Arc<SchedulerShared>,
        channel: u8,
        gone: Arc<AtomicBool>,
    ) -> Result<JackOutput, MidiError> {
        // The callback reads the process clock: set its base here, not in the callback.
        crate::rt::time::init();
        let (client, _status) =
            jack::Client::new(client_name, jack::ClientOptions::NO_START_SERVER)
                .map_err(unavailable)?;
        // Reprise's port name, the port to connect to, and the name to show.
        let (port_name, target, shown) = match spec {
            PortSpec::Named(wanted) => {
                let available = client.ports(
                    None,
                    Some(jack::jack_sys::RAW_MIDI_TYPE),
                    jack::PortFlags::IS_INPUT,
                );
                let Some(i) = crate::names::pick_by_name(&available, wanted) else {
                    return Err(MidiError::UnknownPort {
                        name: wanted.clone(),
                        direction: "output",
                        available,
                    });
                };
                ("out", Some(available[i].clone()), available[i].clone())
            }
            PortSpec::Virtual(name) => (name.as_str(), None, name.clone()),
        };
        let connect_error = |detail: String| MidiError::Connect {
            port: shown.clone(),
            detail,
        };
        let port = client
            .register_port(port_name, jack::MidiOut::default())
            .map_err(|e| connect_error(e.to_string()))?;
        let own_name = port.name().map_err(|e| connect_error(e.to_string()))?;
        let sample_rate = client.sample_rate() as u64;
        // SAFETY: `client.raw()` is the live client opened above; jack_is_realtime only reads
        // the server's setting through it.
        let realtime = unsafe { jack::jack_sys::jack_is_realtime(client.raw()) } != 0;
        let process = Process {
            port,
            output: CycleOutput::new(consumer, shared.clone(), channel),
            link: ClockLink::default(),
            sample_rate,
        };
        let notifications = Notifications { gone: gone.clone() };
        let active = client
            .activate_async(notifications, process)
            .map_err(|e| connect_error(e.to_string()))?;
        if let Some(target) = &target {
            active
                .as_client()
                .connect_ports_by_name(&own_name, target)
                .map_err(|e| connect_error(e.to_string()))?;
        }
        Ok(JackOutput {
            client: Some(active),
            shared,
            gone,
            name: shown,
            realtime,
        })
    }

    /// The port's name: the connected port's, or the virtual port's own.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the JACK server runs its clients' process callbacks in real time.
    pub fn is_realtime(&self) -> bool {
        self.realtime
    }

    /// Stops every sounding note (note-offs and All Notes Off, written by the process
    /// callback) and closes the client. While the server runs this waits for the callback
    /// to have written them and for one more period, up to half a second.
    pub fn close(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.shared.periods_stopped.load(Ordering::Acquire) < 2
            && !self.gone.load(Ordering::Acquire)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(client) = self.client.take() {
            let _ = client.deactivate();
        }
    }
}

impl Drop for JackOutput {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.deactivate();
        }
    }
}
