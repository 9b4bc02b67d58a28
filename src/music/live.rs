//! Live MIDI ports through midir: listing, opening by name, virtual ports.
//!
//! The input callback ([`MidiInSink::on_message`]) copies each short message with
//! its timestamp into a wait-free SPSC ring of fixed-size [`MidiEvent`]s and
//! counts what it had to drop; it never allocates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use midir::{Ignore, MidiIO, MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};

/// Errors of the MIDI edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MidiError {
    /// The MIDI system (ALSA sequencer or JACK server) cannot be reached.
    #[error(
        "cannot reach the MIDI system ({backend}): {detail}. {hint}",
        backend = BACKEND,
        hint = BACKEND_HINT
    )]
    Unavailable { detail: String },
    /// No port matches the requested name.
    #[error(
        "no MIDI {direction} port named {name:?}; available: {}",
        crate::names::list_or_none(available)
    )]
    UnknownPort {
        name: String,
        direction: &'static str,
        available: Vec<String>,
    },
    /// Connecting or creating a port failed.
    #[error("cannot open MIDI port {port:?}: {detail}")]
    Connect { port: String, detail: String },
    /// Sending failed (the port or server went away, or the message is invalid).
    #[error("cannot send MIDI message: {detail}")]
    Send { detail: String },
}

#[cfg(feature = "jack")]
const BACKEND: &str = "JACK";
#[cfg(feature = "jack")]
const BACKEND_HINT: &str = "Is a JACK server running?";
#[cfg(not(feature = "jack"))]
const BACKEND: &str = "ALSA sequencer";
#[cfg(not(feature = "jack"))]
const BACKEND_HINT: &str = "Does /dev/snd/seq exist? Without a sound card, build with --features jack and run a JACK server.";

/// A MIDI message of one to three bytes, stored inline (no allocation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortMessage {
    len: u8,
    data: [u8; 3],
}

impl ShortMessage {
    /// A message of one to three bytes; `None` otherwise.
    pub fn new(message: &[u8]) -> Option<Self> {
        if message.is_empty() || message.len() > 3 {
            return None;
        }
        let mut data = [0; 3];
        data[..message.len()].copy_from_slice(message);
        Some(Self {
            len: message.len() as u8,
            data,
        })
    }

    /// The message bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// One short MIDI message (up to three bytes) with its arrival time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MidiEvent {
    /// Backend timestamp in microseconds (JACK: frame time; ALSA: since the port opened).
    pub timestamp_us: u64,
    /// When the input callback received it, on the process clock ([`crate::rt::time`]).
    pub received_us: u64,
    message: ShortMessage,
}

impl MidiEvent {
    /// An event from a message of one to three bytes; `None` otherwise.
    pub fn new(timestamp_us: u64, message: &[u8]) -> Option<Self> {
        Some(Self {
            timestamp_us,
            received_us: 0,
            message: ShortMessage::new(message)?,
        })
    }

    /// The message bytes.
    pub fn bytes(&self) -> &[u8] {
        self.message.bytes()
    }
}

/// Counters of a MIDI input.
#[derive(Debug, Default)]
pub struct MidiInStats {
    /// Messages that reached the ring.
    pub received: AtomicU64,
    /// Messages dropped because the ring was full.
    pub dropped_full: AtomicU64,
    /// Messages dropped because they were longer than three bytes (system exclusive).
    pub dropped_long: AtomicU64,
}

/// The body of the MIDI input callback.
pub struct MidiInSink {
    producer: rtrb::Producer<MidiEvent>,
    stats: Arc<MidiInStats>,
}

impl MidiInSink {
    pub fn new(producer: rtrb::Producer<MidiEvent>, stats: Arc<MidiInStats>) -> Self {
        Self { producer, stats }
    }

    /// Handles one incoming message, stamping it with the process clock. Wait-free,
    /// allocation-free.
    pub fn on_message(&mut self, timestamp_us: u64, message: &[u8]) {
        let Some(mut event) = MidiEvent::new(timestamp_us, message) else {
            self.stats.dropped_long.fetch_add(1, Ordering::Relaxed);
            return;
        };
        event.received_us = crate::rt::time::now_us();
        match self.producer.push(event) {
            Ok(()) => self.stats.received.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.dropped_full.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Which port to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// An existing port, by exact name or a unique part of it.
    Named(String),
    /// A new port with this name that other programs connect to.
    Virtual(String),
}

impl PortSpec {
    /// The named port, or without a name a new virtual port called `default`.
    pub fn named_or_virtual(name: Option<&str>, default: &str) -> PortSpec {
        match name {
            Some(n) => PortSpec::Named(n.to_owned()),
            None => PortSpec::Virtual(default.to_owned()),
        }
    }
}

/// The MIDI ports the system offers.
#[derive(Clone, Debug, Default)]
pub struct MidiPorts {
    /// Ports Reprise can read from (other programs' outputs).
    pub inputs: Vec<String>,
    /// Ports Reprise can write to (other programs' inputs).
    pub outputs: Vec<String>,
}

fn unavailable(e: impl std::fmt::Display) -> MidiError {
    MidiError::Unavailable {
        detail: e.to_string(),
    }
}

/// Lists input and output ports.
pub fn list_ports() -> Result<MidiPorts, MidiError> {
    let input = MidiInput::new("reprise-list").map_err(unavailable)?;
    let output = MidiOutput::new("reprise-list").map_err(unavailable)?;
    let inputs = input
        .ports()
        .iter()
        .filter_map(|p| input.port_name(p).ok())
        .collect();
    let outputs = output
        .ports()
        .iter()
        .filter_map(|p| output.port_name(p).ok())
        .collect();
    Ok(MidiPorts { inputs, outputs })
}

/// Finds a port by exact name or a unique part of it.
fn find_port<IO: MidiIO>(
    io: &IO,
    wanted: &str,
    direction: &'static str,
) -> Result<(IO::Port, String), MidiError> {
    let ports = io.ports();
    let names: Vec<String> = ports
        .iter()
        .map(|p| io.port_name(p).unwrap_or_default())
        .collect();
    match crate::names::pick_by_name(&names, wanted) {
        Some(i) => Ok((ports[i].clone(), names[i].clone())),
        None => Err(MidiError::UnknownPort {
            name: wanted.to_owned(),
            direction,
            available: names,
        }),
    }
}

/// An open MIDI input: timestamped events arrive in a ring.
pub struct MidiIn {
    connection: MidiInputConnection<MidiInSink>,
    consumer: rtrb::Consumer<MidiEvent>,
    stats: Arc<MidiInStats>,
    name: String,
}

impl MidiIn {
    /// Opens an input. `client` names Reprise's client; `capacity` is the ring length.
    pub fn open(spec: &PortSpec, client: &str, capacity: usize) -> Result<Self, MidiError> {
        // The callback reads the process clock: set its base here, not in the callback.
        crate::rt::time::init();
        let mut input = MidiInput::new(client).map_err(unavailable)?;
        input.ignore(Ignore::SysexAndActiveSense);
        let (producer, consumer) = rtrb::RingBuffer::new(capacity.max(16));
        let stats = Arc::new(MidiInStats::default());
        let sink = MidiInSink::new(producer, stats.clone());
        let callback = |ts: u64, msg: &[u8], sink: &mut MidiInSink| sink.on_message(ts, msg);
        let (connection, name) = match spec {
            PortSpec::Named(wanted) => {
                let (port, name) = find_port(&input, wanted, "input")?;
                let connection =
                    input
                        .connect(&port, "in", callback, sink)
                        .map_err(|e| MidiError::Connect {
                            port: name.clone(),
                            detail: e.to_string(),
                        })?;
                (connection, name)
            }
            PortSpec::Virtual(name) => {
                let connection = create_virtual_input(input, name, callback, sink)?;
                (connection, name.clone())
            }
        };
        Ok(Self {
            connection,
            consumer,
            stats,
            name,
        })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next received event, if any. Never blocks.
    pub fn try_recv(&mut self) -> Option<MidiEvent> {
        self.consumer.pop().ok()
    }

    /// Counters so far.
    pub fn stats(&self) -> &MidiInStats {
        &self.stats
    }

    /// Closes the port.
    pub fn close(self) {
        let _ = self.connection.close();
    }
}

#[cfg(unix)]
fn create_virtual_input<F>(
    input: MidiInput,
    name: &str,
    callback: F,
    sink: MidiInSink,
) -> Result<MidiInputConnection<MidiInSink>, MidiError>
where
    F: FnMut(u64, &[u8], &mut MidiInSink) + Send + 'static,
{
    use midir::os::unix::VirtualInput;
    input
        .create_virtual(name, callback, sink)
        .map_err(|e| MidiError::Connect {
            port: name.to_owned(),
            detail: e.to_string(),
        })
}

#[cfg(not(unix))]
fn create_virtual_input<F>(
    _input: MidiInput,
    name: &str,
    _callback: F,
    _sink: MidiInSink,
) -> Result<MidiInputConnection<MidiInSink>, MidiError> {
    Err(MidiError::Connect {
        port: name.to_owned(),
        detail: "virtual ports are not supported on this platform".into(),
    })
}

/// An open MIDI output.
pub struct MidiOut {
    connection: MidiOutputConnection,
    name: String,
}

impl MidiOut {
    /// Opens an output. `client` names Reprise's client.
    pub fn open(spec: &PortSpec, client: &str) -> Result<Self, MidiError> {
        let output = MidiOutput::new(client).map_err(unavailable)?;
        match spec {
            PortSpec::Named(wanted) => {
                let (port, name) = find_port(&output, wanted, "output")?;
                let connection = output
                    .connect(&port, "out")
                    .map_err(|e| MidiError::Connect {
                        port: name.clone(),
                        detail: e.to_string(),
                    })?;
                Ok(Self { connection, name })
            }
            PortSpec::Virtual(name) => Ok(Self {
                connection: create_virtual_output(output, name)?,
                name: name.clone(),
            }),
        }
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one message.
    pub fn send(&mut self, message: &[u8]) -> Result<(), MidiError> {
        self.connection.send(message).map_err(|e| MidiError::Send {
            detail: e.to_string(),
        })
    }

    /// Sends one short message (a channel or system message of 1 to 3 bytes) for a real-time
    /// thread: nothing is allocated, also when the send fails (no error text is made), and a
    /// message that is not one whole short message is refused for every backend alike (ALSA
    /// refuses it, JACK would pass the bytes on).
    pub fn send_short(&mut self, message: &[u8]) -> bool {
        is_short_message(message) && self.connection.send(message).is_ok()
    }

    /// Closes the port.
    pub fn close(self) {
        let _ = self.connection.close();
    }
}

/// Whether `message` is one whole MIDI message of 1 to 3 bytes: a status byte, then as many
/// data bytes (below 0x80) as the status takes. System exclusive is not short.
pub fn is_short_message(message: &[u8]) -> bool {
    let Some((&status, data)) = message.split_first() else {
        return false;
    };
    let wanted = match status {
        0x80..=0xBF | 0xE0..=0xEF | 0xF2 => 2,
        0xC0..=0xDF | 0xF1 | 0xF3 => 1,
        0xF6 | 0xF8..=0xFF => 0,
        _ => return false,
    };
    data.len() == wanted && data.iter().all(|&b| b < 0x80)
}

#[cfg(unix)]
fn create_virtual_output(
    output: MidiOutput,
    name: &str,
) -> Result<MidiOutputConnection, MidiError> {
    use midir::os::unix::VirtualOutput;
    output.create_virtual(name).map_err(|e| MidiError::Connect {
        port: name.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(not(unix))]
fn create_virtual_output(
    _output: MidiOutput,
    name: &str,
) -> Result<MidiOutputConnection, MidiError> {
    Err(MidiError::Connect {
        port: name.to_owned(),
        detail: "virtual ports are not supported on this platform".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_whole_and_well_formed() {
        for good in [
            &[0x90, 60, 100][..],
            &[0xC5, 3],
            &[0xF8],
            &[0xF2, 1, 2],
            &[0xB0, 123, 0],
        ] {
            assert!(is_short_message(good), "{good:?}");
        }
        for bad in [
            &[][..],
            &[0x3C],
            &[0x90, 60],
            &[0x90, 200, 1],
            &[0xF0, 1, 0xF7],
            &[0xF8, 1],
        ] {
            assert!(!is_short_message(bad), "{bad:?}");
        }
    }

    #[test]
    fn events_hold_short_messages_only() {
        let e = MidiEvent::new(5, &[0x90, 60, 100]).unwrap();
        assert_eq!(e.bytes(), &[0x90, 60, 100]);
        assert_eq!(MidiEvent::new(0, &[0xF8]).unwrap().bytes(), &[0xF8]);
        assert!(MidiEvent::new(0, &[]).is_none());
        assert!(MidiEvent::new(0, &[0xF0, 1, 2, 0xF7]).is_none());
    }

    #[test]
    fn sink_counts_full_ring_and_long_messages() {
        let (producer, mut consumer) = rtrb::RingBuffer::new(2);
        let stats = Arc::new(MidiInStats::default());
        let mut sink = MidiInSink::new(producer, stats.clone());
        sink.on_message(1, &[0x90, 60, 1]);
        sink.on_message(2, &[0x80, 60, 0]);
        sink.on_message(3, &[0x90, 61, 1]);
        sink.on_message(4, &[0xF0, 1, 2, 3, 0xF7]);
        assert_eq!(stats.received.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dropped_full.load(Ordering::Relaxed), 1);
        assert_eq!(stats.dropped_long.load(Ordering::Relaxed), 1);
        assert_eq!(consumer.pop().unwrap().timestamp_us, 1);
        assert_eq!(consumer.pop().unwrap().bytes(), &[0x80, 60, 0]);
    }
}
