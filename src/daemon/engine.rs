//! The inference threads: every speech session's acoustic model is stepped here, all sessions
//! with a step ready going through the model as one batch.
//!
//! ```text
//! session task: PCM → resample → front end ─rtrb ring (steps)──────▶ inference thread:
//!               commands (reply, final, close) ─rtrb ring────────▶   batch of ready sessions →
//!                                                                     LSTM step (shared weights)
//! session task ◀─bounded channel (partial / result / space)────────  → CTC decoder, endpoints
//! ```
//!
//! The weights are loaded once and shared ([`AcousticModel::share`]); a session owns only its
//! recurrent state, its decoder and two small rings, all allocated when it opens. Each thread
//! holds its sessions in a list and, on every turn, takes at most one step from each session
//! that has one ready (up to `max_batch`, starting from a rotating position so no session
//! waits behind the others), steps them as one batch, and feeds each row of log-probabilities
//! to that session's decoder. The step itself does not allocate, lock or block; a thread with
//! nothing to do parks until a session wakes it.
//!
//! Back-pressure: a session's step ring holds `queue_steps` steps. A session that finds it full
//! raises a flag and waits; the thread answers with a `Space` message when it has taken steps
//! from that ring. Replies go out with `try_send` on a channel sized for the replies a session
//! can have outstanding, so a session whose client is slow never holds a thread up: the thread
//! counts a drop (`reprise_drops_total{kind="reply"}`) rather than wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::protocol::{AlternativeResult, FinalResult};
use crate::speech::acoustic::AcousticState;
use crate::speech::recognizer::Transcriber;
use crate::speech::{AcousticModel, Event, SpeechConfig, Utterance};

/// How the inference threads run.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Inference threads.
    pub threads: usize,
    /// Most sessions per batch.
    pub max_batch: usize,
    /// Steps queued per session.
    pub queue_steps: usize,
}

/// What a session asks of its inference thread, in order with its steps.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Command {
    /// Reply with the result or the partial once `after` steps have been taken.
    Reply { after: u64 },
    /// End the utterance once `after` steps have been taken and reply with its final result.
    Final { after: u64 },
    /// The session is over.
    Close,
}

/// What an inference thread sends back to a session.
#[derive(Debug)]
pub enum Reply {
    /// The step ring has room again.
    Space,
    /// No utterance ended since the last reply: the current utterance's text so far.
    Partial(String),
    /// Utterances ended since the last reply.
    Result(Vec<FinalResult>),
    /// The answer to a final request: every utterance ended since the last reply, the one in
    /// progress included (empty when there were no words).
    Final(Vec<FinalResult>),
    /// Inference failed; the session must end.
    Failed(String),
}

/// The session is gone from its inference thread (the daemon is stopping, or inference
/// failed).
#[derive(Debug, thiserror::Error)]
#[error("the inference thread has stopped")]
pub struct EngineGone;

struct SlotShared {
    want_space: AtomicBool,
}

/// One session as an inference thread holds it.
struct Slot {
    state: AcousticState,
    transcriber: Transcriber,
    steps: Consumer<f32>,
    commands: Consumer<Command>,
    replies: mpsc::Sender<Reply>,
    /// Partial texts' buffers, handed back by the session once sent, so that a partial reply
    /// does not allocate on this thread.
    spare: Consumer<String>,
    shared: Arc<SlotShared>,
    consumed: u64,
    finals: Vec<FinalResult>,
}

impl From<&Utterance> for FinalResult {
    fn from(u: &Utterance) -> FinalResult {
        FinalResult {
            text: u.text().to_string(),
            words: u
                .words()
                .map(|(w, t)| (w.to_string(), t.start, t.end, t.conf))
                .collect(),
            alternatives: u
                .alternatives()
                .iter()
                .map(|a| AlternativeResult {
                    text: a.text().to_string(),
                    confidence: a.confidence,
                    words: a
                        .words()
                        .map(|(w, t)| (w.to_string(), t.start, t.end, t.conf))
                        .collect(),
                })
                .collect(),
        }
    }
}

enum Service {
    Keep,
    Retire,
}

impl Slot {
    fn send(&mut self, reply: Reply, metrics: &Metrics) {
        if self.replies.try_send(reply).is_err() {
            metrics.dropped_replies.inc();
        }
    }

    /// Carries out the commands that are due (all steps before them taken).
    fn service(&mut self, metrics: &Metrics) -> Service {
        loop {
            let due = match self.commands.peek() {
                Ok(Command::Close) => return Service::Retire,
                Ok(&Command::Reply { after }) | Ok(&Command::Final { after }) => {
                    after <= self.consumed
                }
                Err(_) => {
                    // A session that went away without closing is retired once its queue is
                    // empty.
                    return if self.commands.is_abandoned() && self.steps.is_empty() {
                        Service::Retire
                    } else {
                        Service::Keep
                    };
                }
            };
            if !due {
                return Service::Keep;
            }
            let Ok(command) = self.commands.pop() else {
                return Service::Keep;
            };
            let reply = match command {
                Command::Reply { .. } if self.finals.is_empty() => {
                    let mut text = self.spare.pop().unwrap_or_default();
                    text.clear();
                    text.push_str(self.transcriber.partial());
                    Reply::Partial(text)
                }
                Command::Reply { .. } => Reply::Result(std::mem::take(&mut self.finals)),
                Command::Final { .. } => {
                    let finals = &mut self.finals;
                    self.transcriber.flush(&mut |e| {
                        if let Event::Final(u) = e {
                            finals.push(FinalResult::from(u));
                        }
                    });
                    Reply::Final(std::mem::take(&mut self.finals))
                }
                Command::Close => return Service::Retire,
            };
            self.send(reply, metrics);
        }
    }
}

struct Worker {
    admit: crossbeam_channel::Sender<Box<Slot>>,
    thread: Thread,
    load: Arc<AtomicUsize>,
    join: Option<JoinHandle<()>>,
}

/// The inference threads and what sessions need to join them.
pub struct SpeechEngine {
    workers: Vec<Worker>,
    template: AcousticModel,
    step_len: usize,
    queue_steps: usize,
    metrics: Arc<Metrics>,
    janitor: Option<JoinHandle<()>>,
}

/// A session's side of its inference thread.
pub struct StreamHandle {
    steps: Producer<f32>,
    commands: Producer<Command>,
    replies: mpsc::Receiver<Reply>,
    recycle: Producer<String>,
    shared: Arc<SlotShared>,
    worker: Thread,
    step_len: usize,
    written: u64,
}

/// Partial-text buffers per session: one partial in flight and one waiting.
const SPARE_TEXTS: usize = 2;

/// The ring that hands a session's partial-text buffers back to its inference thread, filled
/// with buffers as long as the longest partial.
fn spare_texts(transcriber: &Transcriber) -> (Producer<String>, Consumer<String>) {
    let (mut recycle, spare) = RingBuffer::new(SPARE_TEXTS);
    for _ in 0..SPARE_TEXTS {
        let _ = recycle.push(String::with_capacity(transcriber.max_text_len()));
    }
    (recycle, spare)
}

impl SpeechEngine {
    /// Starts `opts.threads` inference threads, each with its own scratch space over the
    /// weights of `model`.
    pub fn start(
        model: AcousticModel,
        opts: EngineOptions,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<SpeechEngine> {
        let step_len = model.step_size() + 1;
        metrics
            .step_seconds
            .set(model.config.front_end.step_seconds());
        metrics
            .model_rate
            .set(model.config.front_end.sample_rate as f64);
        let (retire_tx, retire_rx) = crossbeam_channel::bounded::<Box<Slot>>(1024);
        let janitor = std::thread::Builder::new()
            .name("reprise-janitor".into())
            .spawn(move || while retire_rx.recv().is_ok() {})?;
        let mut workers = Vec::new();
        for k in 0..opts.threads.max(1) {
            let (admit, admitted) = crossbeam_channel::bounded::<Box<Slot>>(256);
            let load = Arc::new(AtomicUsize::new(0));
            let mut runner = Runner {
                model: model.share(opts.max_batch),
                admitted,
                retire: retire_tx.clone(),
                load: Arc::clone(&load),
                metrics: Arc::clone(&metrics),
                step_len,
            };
            let join = std::thread::Builder::new()
                .name(format!("reprise-infer-{k}"))
                .spawn(move || runner.run())?;
            workers.push(Worker {
                admit,
                thread: join.thread().clone(),
                load,
                join: Some(join),
            });
        }
        Ok(SpeechEngine {
            workers,
            template: model,
            step_len,
            queue_steps: opts.queue_steps,
            metrics,
            janitor: Some(janitor),
        })
    }

    /// The model's `speech` config (front end, vocabulary).
    pub fn config(&self) -> &SpeechConfig {
        &self.template.config
    }

    /// The model (for its sizes; its weights are the ones every thread shares).
    pub fn model(&self) -> &AcousticModel {
        &self.template
    }

    /// Opens a session on the least loaded inference thread.
    pub fn open(&self, transcriber: Transcriber) -> Result<StreamHandle, EngineGone> {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .ok_or(EngineGone)?;
        let (steps_tx, steps_rx) = RingBuffer::new(self.queue_steps * self.step_len);
        let (commands_tx, commands_rx) = RingBuffer::new(8);
        let (reply_tx, reply_rx) = mpsc::channel(8);
        let (recycle, spare) = spare_texts(&transcriber);
        let shared = Arc::new(SlotShared {
            want_space: AtomicBool::new(false),
        });
        let slot = Box::new(Slot {
            state: self.template.new_state(),
            transcriber,
            steps: steps_rx,
            commands: commands_rx,
            replies: reply_tx,
            spare,
            shared: Arc::clone(&shared),
            consumed: 0,
            finals: Vec::with_capacity(4),
        });
        worker.load.fetch_add(1, Ordering::Relaxed);
        if worker.admit.send(slot).is_err() {
            worker.load.fetch_sub(1, Ordering::Relaxed);
            return Err(EngineGone);
        }
        worker.thread.unpark();
        Ok(StreamHandle {
            steps: steps_tx,
            commands: commands_tx,
            replies: reply_rx,
            recycle,
            shared,
            worker: worker.thread.clone(),
            step_len: self.step_len,
            written: 0,
        })
    }

    /// The metrics the threads write.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Drop for SpeechEngine {
    /// Stops the threads once their sessions are gone.
    fn drop(&mut self) {
        for w in &mut self.workers {
            let (dead, _) = crossbeam_channel::bounded(1);
            w.admit = dead;
            w.thread.unpark();
        }
        for w in &mut self.workers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
        self.workers.clear();
        if let Some(j) = self.janitor.take() {
            let _ = j.join();
        }
    }
}

impl StreamHandle {
    /// Values per step in the ring (the model's step and its level).
    pub fn step_len(&self) -> usize {
        self.step_len
    }

    /// Hands a partial's text back once it has been sent, for the next partial to reuse.
    pub fn recycle(&mut self, text: String) {
        let _ = self.recycle.push(text);
    }

    /// Queues steps (each `step_len` values: the front end's step, then its level in dB),
    /// waiting for room when the ring is full.
    pub async fn push_steps(&mut self, mut steps: &[f32]) -> Result<(), EngineGone> {
        while !steps.is_empty() {
            let room = self.steps.slots() / self.step_len * self.step_len;
            if room > 0 {
                let n = room.min(steps.len());
                self.steps
                    .push_entire_slice(&steps[..n])
                    .map_err(|_| EngineGone)?;
                self.written += (n / self.step_len) as u64;
                steps = &steps[n..];
                self.worker.unpark();
                continue;
            }
            self.shared.want_space.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.steps.slots() >= self.step_len {
                continue;
            }
            self.worker.unpark();
            match self.replies.recv().await {
                Some(Reply::Space) => {}
                Some(Reply::Failed(_)) | None => return Err(EngineGone),
                // No request is outstanding while steps are pushed, so nothing else comes.
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The reply to the steps queued so far: a partial, or the utterances that ended.
    pub async fn reply(&mut self) -> Result<Reply, EngineGone> {
        self.request(Command::Reply {
            after: self.written,
        })
        .await
    }

    /// Ends the utterance in progress after the steps queued so far and returns its final
    /// result (with any other utterance that ended since the last reply).
    pub async fn finish(&mut self) -> Result<Reply, EngineGone> {
        self.request(Command::Final {
            after: self.written,
        })
        .await
    }

    async fn request(&mut self, command: Command) -> Result<Reply, EngineGone> {
        self.commands.push(command).map_err(|_| EngineGone)?;
        self.worker.unpark();
        loop {
            match self.replies.recv().await {
                Some(Reply::Space) => {}
                Some(Reply::Failed(_)) | None => return Err(EngineGone),
                Some(r) => return Ok(r),
            }
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        // If the ring is full the thread retires the session when it sees the ring abandoned.
        let _ = self.commands.push(Command::Close);
        self.worker.unpark();
    }
}

/// One inference thread.
struct Runner {
    model: AcousticModel,
    admitted: crossbeam_channel::Receiver<Box<Slot>>,
    retire: crossbeam_channel::Sender<Box<Slot>>,
    load: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    step_len: usize,
}

impl Runner {
    fn run(&mut self) {
        let _ftz = crate::rt::ScopedFtz::enable();
        let max_batch = self.model.max_batch();
        let step = self.model.step_size();
        let outputs = self.model.outputs();
        let mut slots: Vec<Box<Slot>> = Vec::with_capacity(1024);
        let mut picked: Vec<usize> = Vec::with_capacity(max_batch);
        let mut states: Vec<AcousticState> =
            (0..max_batch).map(|_| self.model.new_state()).collect();
        let mut input = vec![0.0f32; max_batch * step];
        let mut levels = vec![0.0f32; max_batch];
        let mut row = vec![0.0f32; self.step_len];
        let mut log_probs = vec![0.0f32; max_batch * outputs];
        let mut cursor = 0usize;
        let mut queued_before = 0u64;
        let mut open = true;
        loop {
            while open {
                match self.admitted.try_recv() {
                    Ok(slot) => slots.push(slot),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => open = false,
                }
            }
            let mut i = 0;
            while i < slots.len() {
                match slots[i].service(&self.metrics) {
                    Service::Keep => i += 1,
                    Service::Retire => {
                        let slot = slots.swap_remove(i);
                        self.load.fetch_sub(1, Ordering::Relaxed);
                        // Freed on the janitor thread, not here.
                        if let Err(e) = self.retire.try_send(slot) {
                            drop(e.into_inner());
                        }
                    }
                }
            }
            if !open && slots.is_empty() {
                self.metrics
                    .queued_steps
                    .add(0u64.wrapping_sub(queued_before));
                return;
            }
            picked.clear();
            let n = slots.len();
            let mut queued = 0u64;
            for k in 0..n {
                let i = (cursor + k) % n;
                let slot = &mut slots[i];
                let ready = slot.steps.slots() / self.step_len;
                queued += ready as u64;
                if ready == 0 || picked.len() == max_batch {
                    continue;
                }
                if slot.steps.pop_entire_slice(&mut row).is_err() {
                    continue;
                }
                let b = picked.len();
                input[b * step..(b + 1) * step].copy_from_slice(&row[..step]);
                levels[b] = row[step];
                picked.push(i);
            }
            cursor = if n == 0 { 0 } else { (cursor + 1) % n };
            self.metrics
                .queued_steps
                .add(queued.wrapping_sub(queued_before));
            queued_before = queued;
            if picked.is_empty() {
                std::thread::park_timeout(Duration::from_millis(20));
                continue;
            }
            let started = Instant::now();
            let nb = picked.len();
            for (b, &i) in picked.iter().enumerate() {
                std::mem::swap(&mut slots[i].state, &mut states[b]);
            }
            let result = self.model.step_batch_into(
                &mut states[..nb],
                &input[..nb * step],
                &mut log_probs[..nb * outputs],
            );
            for (b, &i) in picked.iter().enumerate() {
                std::mem::swap(&mut slots[i].state, &mut states[b]);
            }
            for (b, &i) in picked.iter().enumerate() {
                let slot = &mut slots[i];
                slot.consumed += 1;
                let stepped = result.as_ref().map_err(|e| e.to_string()).and_then(|_| {
                    let Slot {
                        transcriber,
                        finals,
                        ..
                    } = &mut **slot;
                    transcriber
                        .step(
                            &log_probs[b * outputs..(b + 1) * outputs],
                            levels[b],
                            &mut |e| {
                                if let Event::Final(u) = e {
                                    finals.push(FinalResult::from(u));
                                }
                            },
                        )
                        .map_err(|e| e.to_string())
                });
                if let Err(message) = stepped {
                    self.metrics.errors_engine.inc();
                    slot.send(Reply::Failed(message), &self.metrics);
                }
                std::sync::atomic::fence(Ordering::SeqCst);
                if slot.shared.want_space.swap(false, Ordering::SeqCst) {
                    slot.send(Reply::Space, &self.metrics);
                }
            }
            self.metrics.steps_total.add(nb as u64);
            self.metrics.batches_total.inc();
            self.metrics
                .engine_busy_ns
                .add(started.elapsed().as_nanos() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::RecognizerOptions;

    /// A slot as an inference thread holds it, and the session's ends of its rings.
    fn slot() -> (
        Box<Slot>,
        Producer<Command>,
        mpsc::Receiver<Reply>,
        Producer<String>,
    ) {
        let mut vocabulary = vec!["<blank>".to_string(), " ".into()];
        vocabulary.extend(('a'..='z').map(|c| c.to_string()));
        let config = SpeechConfig {
            front_end: crate::speech::features::tests::config(),
            vocabulary,
            blank: 0,
        };
        let transcriber = Transcriber::new(&config, None, &RecognizerOptions::default()).unwrap();
        let (_, steps) = RingBuffer::new(8);
        let (commands_tx, commands) = RingBuffer::new(8);
        let (replies, replies_rx) = mpsc::channel(8);
        let (recycle, spare) = spare_texts(&transcriber);
        let slot = Box::new(Slot {
            state: AcousticState::empty(),
            transcriber,
            steps,
            commands,
            replies,
            spare,
            shared: Arc::new(SlotShared {
                want_space: AtomicBool::new(false),
            }),
            consumed: 0,
            finals: Vec::with_capacity(4),
        });
        (slot, commands_tx, replies_rx, recycle)
    }

    #[test]
    fn partial_replies_reuse_the_sessions_buffers() {
        let (mut slot, mut commands, mut replies, mut recycle) = slot();
        let metrics = Metrics::default();
        // Steps that spell "hello" loudly, so that the partial has text.
        for c in "hello".chars() {
            let k = 2 + (c as usize - 'a' as usize);
            let row: Vec<f32> = (0..28).map(|i| if i == k { -0.01 } else { -9.0 }).collect();
            slot.transcriber.step(&row, -20.0, &mut |_| {}).unwrap();
            let blank: Vec<f32> = (0..28).map(|i| if i == 0 { -0.01 } else { -9.0 }).collect();
            slot.transcriber.step(&blank, -20.0, &mut |_| {}).unwrap();
        }
        assert!(slot.transcriber.partial().starts_with("hello"));
        // Warm up the reply channel (tokio allocates its first block of slots).
        commands.push(Command::Reply { after: 0 }).unwrap();
        slot.service(&metrics);
        let Ok(Reply::Partial(text)) = replies.try_recv() else {
            panic!("no partial");
        };
        let _ = recycle.push(text);
        let mut allocations = 0;
        for _ in 0..20 {
            commands.push(Command::Reply { after: 0 }).unwrap();
            assert_no_alloc::reset_violation_count();
            assert_no_alloc::assert_no_alloc(|| {
                slot.service(&metrics);
            });
            allocations += assert_no_alloc::violation_count();
            // The session sends the text, then hands the buffer back.
            let Ok(Reply::Partial(text)) = replies.try_recv() else {
                panic!("no partial");
            };
            let _ = recycle.push(text);
        }
        assert_eq!(
            allocations, 0,
            "partial replies allocated {allocations} times"
        );
    }
}
