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
use super::acoustic::{AcousticModel, AcousticState};
use super::ctc::{Decoder, DecoderOptions, HotWord, WordSpan};
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
}

impl Utterance {
    /// The text: words separated by single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The words with their text.
    pub fn words(&self) -> impl Iterator<Item = (&str, &Word)> {
        self.words
            .iter()
            .map(|w| (&self.text[w.text.0..w.text.1], w))
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

/// Everything one stream needs.
pub struct Recognizer {
    front_end: FrontEnd,
    model: AcousticModel,
    state: AcousticState,
    decoder: Decoder,
    endpoint: Endpointer,
    log_probs: Vec<f32>,
    partial: String,
    partial_id: u32,
    spans: Vec<WordSpan>,
    utterance: Utterance,
    step_seconds: f64,
    steps: u64,
    utterance_start: u64,
    samples: u64,
}

struct Parts<'a> {
    decoder: &'a mut Decoder,
    endpoint: &'a mut Endpointer,
    partial: &'a mut String,
    partial_id: &'a mut u32,
    spans: &'a mut Vec<WordSpan>,
    utterance: &'a mut Utterance,
    step_seconds: f64,
    steps: u64,
    utterance_start: &'a mut u64,
}

impl Parts<'_> {
    fn finish(&mut self, reason: EndReason, sink: &mut dyn FnMut(Event<'_>)) {
        if !self.decoder.is_empty() {
            let u = &mut *self.utterance;
            self.decoder.best(true, &mut u.text, self.spans);
            u.words.clear();
            let base = *self.utterance_start;
            let secs = |step: u32| (base + step as u64) as f64 * self.step_seconds;
            u.words.extend(self.spans.iter().map(|s| Word {
                start: secs(s.start),
                end: secs(s.end),
                conf: s.conf,
                text: s.text,
            }));
            u.start = u.words.first().map_or(secs(0), |w| w.start);
            u.end = u.words.last().map_or(secs(0), |w| w.end);
            u.reason = Some(reason);
            if !u.text.is_empty() {
                sink(Event::Final(u));
            }
        }
        self.decoder.reset();
        self.endpoint.reset();
        self.partial.clear();
        *self.partial_id = 0;
        *self.utterance_start = self.steps;
    }

    fn report_partial(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        let id = self.decoder.best_id();
        if id == *self.partial_id {
            return;
        }
        *self.partial_id = id;
        let (old_len, old_hash) = (self.partial.len(), hash(self.partial));
        self.decoder.best(false, self.partial, self.spans);
        if self.partial.len() != old_len || hash(self.partial) != old_hash {
            sink(Event::Partial(self.partial));
        }
    }
}

/// FNV-1a: compares a partial with the previous one without keeping a copy.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Recognizer {
    /// A recognizer for one stream. The language model (if any) may be shared between streams.
    pub fn new(
        model: AcousticModel,
        lm: Option<Arc<NgramLm>>,
        opts: &RecognizerOptions,
    ) -> Result<Recognizer, SpeechError> {
        let fe_cfg = model.config.front_end.clone();
        let step_seconds = fe_cfg.step_seconds();
        let front_end = FrontEnd::new(fe_cfg).map_err(SpeechError::Option)?;
        let endpoint =
            Endpointer::new(opts.endpoint.clone(), step_seconds).map_err(SpeechError::Option)?;
        let decoder_opts = DecoderOptions {
            max_steps: endpoint.max_steps() as usize + 1,
            ..opts.decoder.clone()
        };
        let decoder = Decoder::new(
            &model.config.vocabulary,
            model.config.blank,
            decoder_opts,
            lm,
            &opts.hot_words,
        )?;
        let max_chars = endpoint.max_steps() as usize + 1;
        Ok(Recognizer {
            state: model.new_state(),
            log_probs: vec![0.0; model.outputs()],
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
            samples: 0,
            front_end,
            model,
            decoder,
            endpoint,
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
        self.decoder.dropped()
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
            decoder,
            endpoint,
            log_probs,
            partial,
            partial_id,
            spans,
            utterance,
            step_seconds,
            steps,
            utterance_start,
            ..
        } = self;
        let mut failure = None;
        front_end.push(samples, &mut |step, level_db| {
            if failure.is_some() {
                return;
            }
            let result = model
                .step_into(state, step, log_probs)
                .and_then(|()| decoder.step(log_probs));
            if let Err(e) = result {
                failure = Some(e);
                return;
            }
            *steps += 1;
            let blank = log_probs[model.config.blank].exp();
            let end = endpoint.step(level_db, blank);
            let mut parts = Parts {
                decoder: &mut *decoder,
                endpoint: &mut *endpoint,
                partial: &mut *partial,
                partial_id: &mut *partial_id,
                spans: &mut *spans,
                utterance: &mut *utterance,
                step_seconds: *step_seconds,
                steps: *steps,
                utterance_start: &mut *utterance_start,
            };
            match end {
                Some(reason) => parts.finish(reason, sink),
                None => parts.report_partial(sink),
            }
        });
        failure.map_or(Ok(()), Err)
    }

    /// Ends the current utterance now (end of a file, or stop), reporting its final result if
    /// it has words. Audio shorter than a step that has not been processed yet is dropped.
    pub fn flush(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        let mut parts = Parts {
            decoder: &mut self.decoder,
            endpoint: &mut self.endpoint,
            partial: &mut self.partial,
            partial_id: &mut self.partial_id,
            spans: &mut self.spans,
            utterance: &mut self.utterance,
            step_seconds: self.step_seconds,
            steps: self.steps,
            utterance_start: &mut self.utterance_start,
        };
        parts.finish(EndReason::Flush, sink);
    }

    /// Back to the start of a new stream (state, decoder and clock).
    pub fn reset(&mut self) {
        self.state.reset();
        self.front_end.reset();
        self.decoder.reset();
        self.endpoint.reset();
        self.partial.clear();
        self.partial_id = 0;
        self.steps = 0;
        self.utterance_start = 0;
        self.samples = 0;
    }
}
