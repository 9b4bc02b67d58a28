//! The recognizer of one stream: samples in, partial and final results out.
//!
//! [`Recognizer::accept`] runs the front end, the acoustic model, the CTC decoder and the
//! endpoint rules step by step, and reports through a callback:
//! - [`Event::Partial`] whenever the best text of the current utterance changes;
//! - [`Event::Final`] at each endpoint (trailing silence, maximum length, or
//!   [`Recognizer::flush`]) with the words, their times and confidences.
//!
//! Everything per stream is allocated in [`Recognizer::new`]; the events borrow the
//! recognizer's buffers, so steady-state streaming does not allocate (tested under the
//! allocation-asserting allocator). Building a partial's text walks the current utterance's
//! prefix, which the maximum utterance length bounds; it happens only when the best prefix
//! changes.

use std::sync::Arc;

use super::SpeechError;
use super::acoustic::{AcousticModel, AcousticState, SpeechConfig};
use super::ctc::{Decoder, DecoderOptions, HotWord, Hypothesis, WordSpan};
use super::endpoint::{EndReason, EndpointOptions, Endpointer};
use super::features::FrontEnd;
use super::lm::NgramLm;

/// Recognizer settings.
#[derive(Clone, Debug, Default)]
pub struct RecognizerOptions {
    /// Beam search and language-model weights.
    pub decoder: DecoderOptions,
    /// End-of-utterance rules.
    pub endpoint: EndpointOptions,
    /// Words to favour.
    pub hot_words: Vec<HotWord>,
    /// With n > 0, each final also carries the n best distinct texts of the utterance
    /// ([`Utterance::alternatives`]).
    pub alternatives: usize,
}

/// A recognised word; its text is in the [`Utterance`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Word {
    /// Start time in seconds from the start of the stream.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Confidence, 0 to 1.
    pub conf: f32,
    text: (usize, usize),
}

/// A final result.
#[derive(Clone, Debug, Default)]
pub struct Utterance {
    text: String,
    words: Vec<Word>,
    /// Start of the utterance's audio in seconds from the start of the stream.
    pub start: f64,
    /// End of the utterance's audio.
    pub end: f64,
    /// Why it ended.
    pub reason: Option<EndReason>,
    alternatives: Vec<Alternative>,
    alternative_count: usize,
}

/// One of an utterance's n best texts (see [`RecognizerOptions::alternatives`]).
#[derive(Clone, Debug, Default)]
pub struct Alternative {
    text: String,
    words: Vec<Word>,
    /// Its share of the probability of the n best, 0 to 1.
    pub confidence: f32,
}

impl Alternative {
    /// The text: words separated by single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The words with their text.
    pub fn words(&self) -> impl Iterator<Item = (&str, &Word)> {
        with_text(&self.text, &self.words)
    }
}

fn with_text<'a>(text: &'a str, words: &'a [Word]) -> impl Iterator<Item = (&'a str, &'a Word)> {
    words.iter().map(|w| (&text[w.text.0..w.text.1], w))
}

impl Utterance {
    /// The n best texts, best first (empty unless [`RecognizerOptions::alternatives`] is set).
    pub fn alternatives(&self) -> &[Alternative] {
        &self.alternatives[..self.alternative_count]
    }

    /// The text: words separated by single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The words with their text.
    pub fn words(&self) -> impl Iterator<Item = (&str, &Word)> {
        with_text(&self.text, &self.words)
    }

    /// Number of words.
    pub fn word_count(&self) -> usize {
        self.words.len()
    }
}

/// What [`Recognizer::accept`] reports.
#[derive(Debug)]
pub enum Event<'a> {
    /// The current utterance's best text so far (changed since the last partial).
    Partial(&'a str),
    /// A finished utterance.
    Final(&'a Utterance),
}

/// The part of one stream's recognizer after the acoustic model: CTC decoding, the endpoint
/// rules and the results. It takes one row of log-probabilities (and the step's level) per
/// step, so a server can step the acoustic model of many streams as one batch and hand each
/// stream its row. Allocates only in [`Transcriber::new`].
pub struct Transcriber {
    decoder: Decoder,
    endpoint: Endpointer,
    blank: usize,
    partial: String,
    partial_id: u32,
    spans: Vec<WordSpan>,
    utterance: Utterance,
    step_seconds: f64,
    steps: u64,
    utterance_start: u64,
    n_best: usize,
    hypotheses: Vec<Hypothesis>,
}

impl Transcriber {
    /// A transcriber for a model with this `speech` config. The language model (if any) may
    /// be shared between streams.
    pub fn new(
        config: &SpeechConfig,
        lm: Option<Arc<NgramLm>>,
        opts: &RecognizerOptions,
    ) -> Result<Transcriber, SpeechError> {
        let step_seconds = config.front_end.step_seconds();
        let endpoint =
            Endpointer::new(opts.endpoint.clone(), step_seconds).map_err(SpeechError::Option)?;
        let decoder_opts = DecoderOptions {
            max_steps: endpoint.max_steps() as usize + 1,
            ..opts.decoder.clone()
        };
        let decoder = Decoder::new(
            &config.vocabulary,
            config.blank,
            decoder_opts,
            lm,
            &opts.hot_words,
        )?;
        let max_chars = endpoint.max_steps() as usize + 1;
        Ok(Transcriber {
            decoder,
            endpoint,
            blank: config.blank,
            partial: String::with_capacity(max_chars),
            partial_id: 0,
            spans: Vec::with_capacity(max_chars),
            utterance: Utterance {
                text: String::with_capacity(max_chars),
                words: Vec::with_capacity(max_chars),
                ..Default::default()
            },
            step_seconds,
            steps: 0,
            utterance_start: 0,
            n_best: opts.alternatives,
            hypotheses: Vec::with_capacity(opts.alternatives),
        })
    }

    /// Takes one step: `log_probs` holds the log-probability of every symbol, `level_db` the
    /// step's level. Reports a partial when the best text changed, a final at an endpoint.
    pub fn step(
        &mut self,
        log_probs: &[f32],
        level_db: f32,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), SpeechError> {
        self.decoder.step(log_probs)?;
        self.steps += 1;
        let blank = log_probs[self.blank].exp();
        match self.endpoint.step(level_db, blank) {
            Some(reason) => self.finish(reason, sink),
            None => self.report_partial(sink),
        }
        Ok(())
    }

    /// Ends the current utterance now, reporting its final result if it has words.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        self.finish(EndReason::Flush, sink);
    }

    /// The current utterance's best text so far (empty after a final).
    pub fn partial(&self) -> &str {
        &self.partial
    }

    /// The longest text an utterance can have (the maximum utterance length in steps).
    pub fn max_text_len(&self) -> usize {
        self.partial.capacity()
    }

    /// Steps taken since the start of the stream.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Seconds per step.
    pub fn step_seconds(&self) -> f64 {
        self.step_seconds
    }

    /// Symbols the decoder dropped because an utterance outgrew its buffers (should stay 0).
    pub fn dropped(&self) -> u64 {
        self.decoder.dropped()
    }

    /// Back to the start of a new stream (decoder and clock).
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.endpoint.reset();
        self.partial.clear();
        self.partial_id = 0;
        self.steps = 0;
        self.utterance_start = 0;
    }

    fn finish(&mut self, reason: EndReason, sink: &mut dyn FnMut(Event<'_>)) {
        if !self.decoder.is_empty() {
            let u = &mut self.utterance;
            self.decoder.best(true, &mut u.text, &mut self.spans);
            u.words.clear();
            let base = self.utterance_start;
            let step_seconds = self.step_seconds;
            let secs = |step: u32| (base + step as u64) as f64 * step_seconds;
            let word = |s: &WordSpan| Word {
                start: secs(s.start),
                end: secs(s.end),
                conf: s.conf,
                text: s.text,
            };
            u.words.extend(self.spans.iter().map(word));
            u.start = u.words.first().map_or(secs(0), |w| w.start);
            u.end = u.words.last().map_or(secs(0), |w| w.end);
            u.reason = Some(reason);
            u.alternative_count = 0;
            if self.n_best > 0 {
                let n = self.decoder.n_best(self.n_best, &mut self.hypotheses);
                u.alternatives
                    .resize_with(n.max(u.alternatives.len()), Default::default);
                for (h, a) in self.hypotheses[..n].iter().zip(&mut u.alternatives) {
                    a.text.clone_from(&h.text);
                    a.confidence = h.confidence;
                    a.words.clear();
                    a.words.extend(h.words.iter().map(word));
                }
                u.alternative_count = n;
            }
            if !u.text.is_empty() {
                sink(Event::Final(u));
            }
        }
        self.decoder.reset();
        self.endpoint.reset();
        self.partial.clear();
        self.partial_id = 0;
        self.utterance_start = self.steps;
    }

    fn report_partial(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        let id = self.decoder.best_id();
        if id == self.partial_id {
            return;
        }
        self.partial_id = id;
        let (old_len, old_hash) = (self.partial.len(), hash(&self.partial));
        self.decoder.best(false, &mut self.partial, &mut self.spans);
        if self.partial.len() != old_len || hash(&self.partial) != old_hash {
            sink(Event::Partial(&self.partial));
        }
    }
}

/// Everything one stream needs: the front end, the acoustic model and a [`Transcriber`].
pub struct Recognizer {
    front_end: FrontEnd,
    model: AcousticModel,
    state: AcousticState,
    log_probs: Vec<f32>,
    transcriber: Transcriber,
    samples: u64,
}

/// FNV-1a: compares a partial with the previous one without keeping a copy.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Recognizer {
    /// A recognizer for one stream. The language model (if any) may be shared between streams;
    /// so may the model's weights (pass `model.share(1)`).
    pub fn new(
        model: AcousticModel,
        lm: Option<Arc<NgramLm>>,
        opts: &RecognizerOptions,
    ) -> Result<Recognizer, SpeechError> {
        let front_end =
            FrontEnd::new(model.config.front_end.clone()).map_err(SpeechError::Option)?;
        let transcriber = Transcriber::new(&model.config, lm, opts)?;
        Ok(Recognizer {
            state: model.new_state(),
            log_probs: vec![0.0; model.outputs()],
            transcriber,
            samples: 0,
            front_end,
            model,
        })
    }

    /// The rate `accept` expects, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.front_end.config().sample_rate
    }

    /// Seconds of audio accepted so far.
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / self.sample_rate() as f64
    }

    /// The acoustic model.
    pub fn model(&self) -> &AcousticModel {
        &self.model
    }

    /// Symbols the decoder dropped because an utterance outgrew its buffers (should stay 0).
    pub fn dropped(&self) -> u64 {
        self.transcriber.dropped()
    }

    /// Feeds samples (mono, floats in [-1, 1), at [`Recognizer::sample_rate`]) and reports
    /// partial and final results to `sink`.
    pub fn accept(
        &mut self,
        samples: &[f32],
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), SpeechError> {
        self.samples += samples.len() as u64;
        let Recognizer {
            front_end,
            model,
            state,
            log_probs,
            transcriber,
            ..
        } = self;
        let mut failure = None;
        front_end.push(samples, &mut |step, level_db| {
            if failure.is_some() {
                return;
            }
            let result = model
                .step_into(state, step, log_probs)
                .and_then(|()| transcriber.step(log_probs, level_db, sink));
            if let Err(e) = result {
                failure = Some(e);
            }
        });
        failure.map_or(Ok(()), Err)
    }

    /// Ends the current utterance now (end of a file, or stop), reporting its final result if
    /// it has words. Audio shorter than a step that has not been processed yet is dropped.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        self.transcriber.flush(sink);
    }

    /// Back to the start of a new stream (state, decoder and clock).
    pub fn reset(&mut self) {
        self.state.reset();
        self.front_end.reset();
        self.transcriber.reset();
        self.samples = 0;
    }
}
