//! Output driven by an audio server's period (JACK): each event at its frame.
//!
//! A JACK client can only write MIDI into the period being processed, but it can write each
//! message at any frame of it, and a receiving client sees the message at that frame's time.
//! So the output's process callback takes, at the start of every period, the events due
//! before the period ends (they were queued well ahead: see
//! [`HORIZON_US`](super::session::HORIZON_US)) and writes each at the frame of its due time:
//! output runs one period ahead of the clock, and what the receiver sees is the time the jam
//! thread meant, not the period boundary. Events already late go at the period's first
//! frame.
//!
//! This module holds the callback's body without JACK types, so that it can be tested with a
//! recording [`FrameWriter`] (and under the allocation checker); the JACK client around it is
//! `jack_out`, in the `jack` build.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::scheduler::{Dispatcher, MidiSend, Scheduled, SchedulerShared};

/// One period, on the process clock ([`crate::rt::time`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// When the period's first frame is.
    pub start_us: u64,
    /// When the next period's first frame is.
    pub end_us: u64,
    /// Frames in the period.
    pub frames: u32,
}

impl Cycle {
    /// The period whose first frame the server's clock puts at `start_us` and whose end at
    /// `end_us` (both already on the process clock), checked against the process clock read
    /// at the start of the callback (`now_us`) and the nominal period length: if the period
    /// is far from its nominal length or starts more than a period and a millisecond after
    /// the callback began (the clocks disagree), it is taken as the nominal period from now,
    /// so that no event is ever written far ahead of its time. Smaller differences are the
    /// server's timing filter at work and are followed: a receiving client places events by
    /// the same cycle times. A callback running late keeps the server's times too: its
    /// events are late by as much, not misplaced.
    pub fn checked(start_us: u64, end_us: u64, now_us: u64, frames: u32, nominal_us: u64) -> Cycle {
        let span = end_us.saturating_sub(start_us);
        let plausible = span >= nominal_us / 2
            && span <= nominal_us.saturating_mul(2)
            && start_us <= now_us + nominal_us + 1_000;
        if plausible {
            Cycle {
                start_us,
                end_us,
                frames,
            }
        } else {
            Cycle {
                start_us: now_us,
                end_us: now_us + nominal_us,
                frames,
            }
        }
    }

    /// The frame of the period nearest to `due_us`: 0 for anything due before the period
    /// starts (late), the last frame for anything due at or after its end.
    pub fn offset_of(&self, due_us: u64) -> u32 {
        if self.frames == 0 || due_us <= self.start_us {
            return 0;
        }
        let span = self.end_us.saturating_sub(self.start_us).max(1);
        let into = (due_us - self.start_us).min(span);
        let frame = (into * self.frames as u64 + span / 2) / span;
        frame.min(self.frames as u64 - 1) as u32
    }
}

/// Relates the audio server's microsecond clock to the process clock. Both count real time,
/// so their difference is nearly constant; it is measured every period from a process-clock
/// read between two server-clock reads, and a measurement whose reads lie far apart (the
/// thread was preempted between them) is ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockLink {
    /// Process clock minus server clock, in microseconds.
    offset: Option<i64>,
}

/// Server-clock reads further apart than this do not update the link.
const LINK_GAP_US: u64 = 20;

impl ClockLink {
    /// Takes one measurement: `server_before` and `server_after` read just before and after
    /// `process` was read.
    pub fn update(&mut self, server_before: u64, process: u64, server_after: u64) {
        let gap = server_after.saturating_sub(server_before);
        if self.offset.is_none() || gap <= LINK_GAP_US {
            let server = server_before + gap / 2;
            self.offset = Some(process as i64 - server as i64);
        }
    }

    /// A server-clock time on the process clock (0 before any measurement or before the
    /// process clock's base).
    pub fn to_process(&self, server_us: u64) -> u64 {
        match self.offset {
            Some(offset) => (server_us as i64).saturating_add(offset).max(0) as u64,
            None => 0,
        }
    }
}

/// Where a period's messages go: the MIDI buffer of an output port for one period.
pub trait FrameWriter {
    /// Writes one message at `frame` of the period (frames never decrease within a period);
    /// false if it did not fit. Called in the process callback: must not allocate or block.
    fn write(&mut self, frame: u32, message: &[u8]) -> bool;
}

/// Turns due times into frames of one period, keeping frames in order.
struct CycleSink<'a, W: FrameWriter> {
    writer: &'a mut W,
    cycle: Cycle,
    last: u32,
}

impl<W: FrameWriter> MidiSend for CycleSink<'_, W> {
    fn send(&mut self, message: &[u8], due_us: u64) -> bool {
        let frame = self.cycle.offset_of(due_us).max(self.last);
        self.last = frame;
        self.writer.write(frame, message)
    }
}

/// The state of a period-driven output: a [`Dispatcher`] over the scheduler's ring.
pub struct CycleOutput {
    dispatcher: Dispatcher,
    finished: bool,
}

impl CycleOutput {
    /// An output of the events in `consumer`, on `channel` (0..16), controlled through
    /// `shared` like the scheduler thread.
    pub fn new(
        consumer: rtrb::Consumer<Scheduled>,
        shared: Arc<SchedulerShared>,
        channel: u8,
    ) -> CycleOutput {
        CycleOutput {
            dispatcher: Dispatcher::new(consumer, shared, channel),
            finished: false,
        }
    }

    /// Notes sounding now.
    pub fn sounding(&self) -> usize {
        self.dispatcher.sounding()
    }

    /// Whether it has stopped every note after [`SchedulerShared::stop`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// The body of the process callback, once per period: applies the controls and writes every
/// event of the ring due before the period ends at its frame ([`Cycle::offset_of`]). Once
/// [`SchedulerShared::stop`] is set it writes the note-offs of every sounding note and All
/// Notes Off, then nothing more, and counts the periods since in
/// [`SchedulerShared::periods_stopped`]. Does not allocate, lock or block.
pub fn process_cycle<W: FrameWriter>(output: &mut CycleOutput, cycle: &Cycle, writer: &mut W) {
    let mut sink = CycleSink {
        writer,
        cycle: *cycle,
        last: 0,
    };
    let stop = output.dispatcher.shared().stop.load(Ordering::Acquire);
    if stop && !output.finished {
        output.dispatcher.finish(&mut sink);
        output.finished = true;
    }
    if output.finished {
        output
            .dispatcher
            .shared()
            .periods_stopped
            .fetch_add(1, Ordering::Release);
        return;
    }
    output.dispatcher.deliver_until(cycle.end_us, &mut sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Buffer(Vec<(u32, Vec<u8>)>);

    impl FrameWriter for Buffer {
        fn write(&mut self, frame: u32, message: &[u8]) -> bool {
            if let Some((last, _)) = self.0.last() {
                assert!(frame >= *last, "frames out of order");
            }
            self.0.push((frame, message.to_vec()));
            true
        }
    }

    #[test]
    fn due_times_map_to_the_nearest_frame_and_late_ones_to_the_first() {
        // 256 frames at 48 kHz: 5333 µs.
        let c = Cycle {
            start_us: 10_000,
            end_us: 15_333,
            frames: 256,
        };
        assert_eq!(c.offset_of(0), 0);
        assert_eq!(c.offset_of(10_000), 0);
        assert_eq!(c.offset_of(10_010), 0);
        assert_eq!(c.offset_of(10_011), 1);
        assert_eq!(c.offset_of(12_666), 128);
        assert_eq!(c.offset_of(15_320), 255);
        assert_eq!(c.offset_of(99_999), 255);
        let empty = Cycle { frames: 0, ..c };
        assert_eq!(empty.offset_of(12_000), 0);
    }

    #[test]
    fn implausible_cycle_times_give_the_nominal_period_from_now() {
        let ok = Cycle::checked(10_000, 15_333, 10_050, 256, 5_333);
        assert_eq!((ok.start_us, ok.end_us), (10_000, 15_333));
        // The server's filter puts the period a little after the callback's start: followed.
        let ahead = Cycle::checked(10_000, 15_333, 8_000, 256, 5_333);
        assert_eq!((ahead.start_us, ahead.end_us), (10_000, 15_333));
        // Running late keeps the server's times.
        let late = Cycle::checked(10_000, 15_333, 14_000, 256, 5_333);
        assert_eq!((late.start_us, late.end_us), (10_000, 15_333));
        // Far too long, far too short, or starting well after now: nominal from now.
        for (start, end) in [(10_000, 40_000), (10_000, 11_000), (16_400, 21_733)] {
            let c = Cycle::checked(start, end, 10_050, 256, 5_333);
            assert_eq!((c.start_us, c.end_us, c.frames), (10_050, 15_383, 256));
        }
    }

    #[test]
    fn the_clock_link_ignores_reads_far_apart() {
        let mut link = ClockLink::default();
        assert_eq!(link.to_process(5), 0);
        link.update(1_000_000, 500, 1_000_010);
        assert_eq!(link.to_process(1_000_005), 500);
        // Preempted between the reads: ignored.
        link.update(2_000_000, 9_999_999, 2_000_500);
        assert_eq!(link.to_process(1_000_005), 500);
        link.update(2_000_000, 1_000_501, 2_000_002);
        assert_eq!(link.to_process(2_000_001), 1_000_501);
    }

    fn setup() -> (rtrb::Producer<Scheduled>, CycleOutput, Arc<SchedulerShared>) {
        let (producer, consumer) = rtrb::RingBuffer::new(64);
        let shared = Arc::new(SchedulerShared::default());
        let output = CycleOutput::new(consumer, shared.clone(), 1);
        (producer, output, shared)
    }

    #[test]
    fn each_period_writes_the_events_due_in_it_at_their_frames() {
        let (mut p, mut out, shared) = setup();
        let now = crate::rt::time::now_us();
        let start = now + 100_000;
        for (t, key) in [
            (start + 1_000, 60u8),
            (start + 4_000, 62),
            (start + 6_000, 64),
        ] {
            p.push(Scheduled::new(t, 0, &[0x91, key, 100]).unwrap())
                .unwrap();
        }
        let first = Cycle {
            start_us: start,
            end_us: start + 5_333,
            frames: 256,
        };
        let mut buf = Buffer::default();
        process_cycle(&mut out, &first, &mut buf);
        assert_eq!(
            buf.0,
            vec![(48, vec![0x91, 60, 100]), (192, vec![0x91, 62, 100])]
        );
        let second = Cycle {
            start_us: first.end_us,
            end_us: first.end_us + 5_333,
            frames: 256,
        };
        let mut buf = Buffer::default();
        process_cycle(&mut out, &second, &mut buf);
        assert_eq!(buf.0, vec![(32, vec![0x91, 64, 100])]);
        assert_eq!(out.sounding(), 3);
        // Stop: note-offs and All Notes Off in the next period, then nothing.
        shared.stop.store(true, Ordering::Release);
        let mut buf = Buffer::default();
        process_cycle(&mut out, &second, &mut buf);
        let bytes: Vec<Vec<u8>> = buf.0.iter().map(|e| e.1.clone()).collect();
        assert_eq!(
            bytes,
            vec![
                vec![0x81, 60, 0],
                vec![0x81, 62, 0],
                vec![0x81, 64, 0],
                vec![0xB1, 123, 0]
            ]
        );
        assert!(out.is_finished());
        let mut buf = Buffer::default();
        process_cycle(&mut out, &second, &mut buf);
        assert!(buf.0.is_empty());
        assert_eq!(shared.periods_stopped.load(Ordering::Acquire), 2);
    }

    #[test]
    fn late_events_go_first_and_a_cancel_drops_what_is_queued() {
        let (mut p, mut out, shared) = setup();
        let now = crate::rt::time::now_us();
        let start = now + 100_000;
        p.push(Scheduled::new(start - 3_000, 0, &[0x91, 50, 90]).unwrap())
            .unwrap();
        p.push(Scheduled::new(start + 2_000, 0, &[0x91, 52, 90]).unwrap())
            .unwrap();
        p.push(Scheduled::new(start + 9_000, 0, &[0x91, 55, 90]).unwrap())
            .unwrap();
        let cycle = Cycle {
            start_us: start,
            end_us: start + 5_333,
            frames: 256,
        };
        let mut buf = Buffer::default();
        process_cycle(&mut out, &cycle, &mut buf);
        assert_eq!(buf.0[0], (0, vec![0x91, 50, 90]));
        assert_eq!(buf.0[1].0, 96);
        let g = shared.cancel();
        p.push(Scheduled::new(start + 10_000, g, &[0x91, 57, 90]).unwrap())
            .unwrap();
        let next = Cycle {
            start_us: cycle.end_us,
            end_us: cycle.end_us + 5_333,
            frames: 256,
        };
        let mut buf = Buffer::default();
        process_cycle(&mut out, &next, &mut buf);
        let bytes: Vec<Vec<u8>> = buf.0.iter().map(|e| e.1.clone()).collect();
        assert_eq!(
            bytes,
            vec![
                vec![0x81, 50, 0],
                vec![0x81, 52, 0],
                vec![0xB1, 123, 0],
                vec![0x91, 57, 90]
            ]
        );
        assert_eq!(shared.cancelled.load(Ordering::Relaxed), 1);
    }
}
