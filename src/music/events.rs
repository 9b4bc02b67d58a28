//! The event-based continuation model (kind `music-events`, see `docs/model-format.md`): an
//! LSTM over a stream of note and time tokens whose linear output layer gives the next token's
//! distribution.
//!
//! Music on a grid of `steps_per_quarter` steps per quarter note is written as tokens: `start`
//! opens the stream, `shift(k)` moves time on by k steps, `note(m)` starts a note on key m and
//! is always followed by `dur(i)`, its length. Notes that start together come lowest first. The
//! LSTM's input at each token is made of the blocks the config lists ([`Block`]): the token
//! (one-hot), the keys sounding after it, the keys used so far, the pitch-class counts so far,
//! and the metric position of the current time (step within the quarter note, quarter note
//! within the bar, bar length). `models/training/music/events.py` holds the same definition.

use std::path::Path;

use crate::engine::kernels::Isa;
use crate::engine::layers::Linear;
use crate::engine::weights::LayerConfig;
use crate::engine::{Format, LstmStack, LstmState, Model};

use super::model::{CHUNK, MusicError, music_stack};
use super::sample::{Rng, Sampling, Scale};

/// Width of the metric part of the input: step in the quarter (4), quarter in the bar (8), bar
/// length in quarters (8).
pub const METRIC: usize = 20;

/// A part of the LSTM's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// The token just read, one-hot (vocabulary size).
    Token,
    /// The keys sounding now (keys).
    Sounding,
    /// The keys any note read so far started on (keys).
    Used,
    /// Notes read so far per pitch class, divided by the largest count (12).
    PitchClasses,
    /// The metric position ([`METRIC`]).
    Metric,
}

impl Block {
    fn parse(name: &str) -> Option<Block> {
        Some(match name {
            "token" => Block::Token,
            "sounding" => Block::Sounding,
            "used" => Block::Used,
            "pitch_classes" => Block::PitchClasses,
            "metric" => Block::Metric,
            _ => return None,
        })
    }
}

/// The `music` section of a `music-events` model.
#[derive(Clone, Debug, PartialEq)]
pub struct EventConfig {
    /// MIDI note of key 0.
    pub low_note: u8,
    /// Number of keys.
    pub keys: usize,
    /// Grid steps per quarter note.
    pub steps_per_quarter: u32,
    /// Largest time shift in steps (shift tokens are 1..=shifts).
    pub shifts: u32,
    /// Note lengths in steps, one `dur` token each.
    pub durations: Vec<u32>,
    /// The parts of the LSTM's input, in order.
    pub blocks: Vec<Block>,
}

/// A token, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// Opens a stream.
    Start,
    /// Time moves on by this many steps.
    Shift(u32),
    /// A note starts on this key (index from `low_note`).
    Note(usize),
    /// The pending note lasts `durations[i]` steps.
    Dur(usize),
}

impl EventConfig {
    /// Size of the vocabulary.
    pub fn vocab(&self) -> usize {
        1 + self.shifts as usize + self.keys + self.durations.len()
    }

    fn block_size(&self, b: Block) -> usize {
        match b {
            Block::Token => self.vocab(),
            Block::Sounding | Block::Used => self.keys,
            Block::PitchClasses => 12,
            Block::Metric => METRIC,
        }
    }

    /// Width of the LSTM's input.
    pub fn input_size(&self) -> usize {
        self.blocks.iter().map(|b| self.block_size(*b)).sum()
    }

    fn note0(&self) -> usize {
        1 + self.shifts as usize
    }

    fn dur0(&self) -> usize {
        self.note0() + self.keys
    }

    /// The token with index `i` (`i < vocab()`).
    pub fn token(&self, i: usize) -> Token {
        if i == 0 {
            Token::Start
        } else if i < self.note0() {
            Token::Shift(i as u32)
        } else if i < self.dur0() {
            Token::Note(i - self.note0())
        } else {
            Token::Dur(i - self.dur0())
        }
    }

    /// The index of a token.
    pub fn index(&self, t: Token) -> usize {
        match t {
            Token::Start => 0,
            Token::Shift(k) => k as usize,
            Token::Note(k) => self.note0() + k,
            Token::Dur(i) => self.dur0() + i,
        }
    }

    /// The `dur` entry nearest to `steps` (the shorter one on a tie).
    pub fn duration_index(&self, steps: u64) -> usize {
        let mut best = 0;
        for (i, &d) in self.durations.iter().enumerate() {
            if (d as u64).abs_diff(steps) < (self.durations[best] as u64).abs_diff(steps) {
                best = i;
            }
        }
        best
    }

    /// Appends the tokens of `notes` (key, start step, length in steps), shifting on to `end`.
    /// Notes outside the keyboard are left out; `notes` must be sorted by (start, key).
    pub fn encode(&self, notes: &[(u8, u64, u64)], end: u64, out: &mut Vec<usize>) {
        let mut t = 0u64;
        let shift_to = |t: &mut u64, to: u64, out: &mut Vec<usize>| {
            while to > *t {
                let k = (to - *t).min(self.shifts as u64);
                out.push(self.index(Token::Shift(k as u32)));
                *t += k;
            }
        };
        for &(note, start, len) in notes {
            let Some(k) = (note as usize)
                .checked_sub(self.low_note as usize)
                .filter(|k| *k < self.keys)
            else {
                continue;
            };
            shift_to(&mut t, start, out);
            out.push(self.index(Token::Note(k)));
            out.push(self.index(Token::Dur(self.duration_index(len))));
        }
        shift_to(&mut t, end, out);
    }
}

fn parse_events(model: &Model) -> Result<EventConfig, String> {
    let m = model
        .config
        .music
        .as_ref()
        .ok_or("the config has no music section")?;
    match m.get("encoding").and_then(|v| v.as_str()) {
        Some("events") => {}
        other => return Err(format!("music.encoding {other:?} is not \"events\"")),
    }
    let int = |key: &str| {
        m.get(key)
            .and_then(|v| v.as_u64())
            .ok_or(format!("music.{key} is missing or not a whole number"))
    };
    let low_note = int("low_note")?;
    let keys = int("keys")? as usize;
    let steps_per_quarter = int("steps_per_quarter")?;
    let shifts = int("shifts")?;
    if keys == 0 || low_note as usize + keys > 128 {
        return Err("music.low_note + music.keys must lie within MIDI notes 0..=127".into());
    }
    if steps_per_quarter != 4 {
        return Err(
            "music.steps_per_quarter must be 4 (the metric input counts sixteenths)".into(),
        );
    }
    if shifts == 0 || shifts > 64 {
        return Err("music.shifts must be 1..=64".into());
    }
    let durations: Vec<u32> = m
        .get("durations")
        .and_then(|v| v.as_array())
        .ok_or("music.durations is missing")?
        .iter()
        .map(|d| {
            d.as_u64()
                .filter(|d| (1..=256).contains(d))
                .map(|d| d as u32)
        })
        .collect::<Option<_>>()
        .ok_or("music.durations must be whole numbers of steps in 1..=256")?;
    if durations.is_empty() {
        return Err("music.durations is empty".into());
    }
    let blocks: Vec<Block> = m
        .get("inputs")
        .and_then(|v| v.as_array())
        .ok_or("music.inputs is missing")?
        .iter()
        .map(|b| b.as_str().and_then(Block::parse))
        .collect::<Option<_>>()
        .ok_or(
            "music.inputs must list blocks among token, sounding, used, pitch_classes, metric",
        )?;
    if !blocks.contains(&Block::Token) {
        return Err("music.inputs must include the token".into());
    }
    Ok(EventConfig {
        low_note: low_note as u8,
        keys,
        steps_per_quarter: steps_per_quarter as u32,
        shifts: shifts as u32,
        durations,
        blocks,
    })
}

/// Time, sounding keys and the metric position while a stream is read or written.
#[derive(Clone, Debug)]
pub struct EventState {
    /// Current time in steps from the stream's start.
    pub t: u64,
    /// Per key, the step its last note ends (sounding while `t < ends[k]`).
    ends: Vec<u64>,
    /// Per key, whether a note has started on it.
    used: Vec<bool>,
    /// Notes read per pitch class.
    pitch_classes: [u32; 12],
    /// A `note` waiting for its `dur`.
    pending: Option<usize>,
    /// The highest key started at the current step (notes at one step come lowest first).
    last_key: Option<usize>,
    /// Steps per bar and the step of a bar line.
    bar: u64,
    phase: u64,
}

impl EventState {
    /// At time 0 with nothing sounding, bars of `bar` steps with a bar line at step `phase`.
    pub fn new(keys: usize, bar: u64, phase: u64) -> EventState {
        EventState {
            t: 0,
            ends: vec![0; keys],
            used: vec![false; keys],
            pitch_classes: [0; 12],
            pending: None,
            last_key: None,
            bar: bar.max(1),
            phase,
        }
    }

    /// Back to time 0, nothing sounding.
    pub fn reset(&mut self) {
        self.t = 0;
        self.ends.fill(0);
        self.used.fill(false);
        self.pitch_classes = [0; 12];
        self.pending = None;
        self.last_key = None;
    }

    /// Whether key `k` sounds now.
    pub fn sounding(&self, k: usize) -> bool {
        self.ends[k] > self.t
    }

    /// Keys sounding now.
    pub fn voices(&self) -> usize {
        self.ends.iter().filter(|e| **e > self.t).count()
    }

    /// The key waiting for its length, if the last token was a `note`.
    pub fn pending(&self) -> Option<usize> {
        self.pending
    }

    /// The highest key already started at the current step.
    pub fn last_key(&self) -> Option<usize> {
        self.last_key
    }

    /// Reads one token.
    pub fn read(&mut self, cfg: &EventConfig, token: Token) {
        match token {
            Token::Start => {}
            Token::Shift(k) => {
                self.t += k as u64;
                self.last_key = None;
            }
            Token::Note(k) => {
                self.pending = Some(k);
                self.last_key = Some(k);
                self.used[k] = true;
                self.pitch_classes[(cfg.low_note as usize + k) % 12] += 1;
            }
            Token::Dur(i) => {
                if let Some(k) = self.pending.take() {
                    self.ends[k] = self.t + cfg.durations[i] as u64;
                }
            }
        }
    }

    /// Writes the LSTM input after reading token `index` into `row` (`cfg.input_size()`).
    pub fn fill(&self, cfg: &EventConfig, index: usize, row: &mut [f32]) {
        row.fill(0.0);
        let mut at = 0;
        for &block in &cfg.blocks {
            let part = &mut row[at..at + cfg.block_size(block)];
            match block {
                Block::Token => part[index] = 1.0,
                Block::Sounding => {
                    for (x, &end) in part.iter_mut().zip(&self.ends) {
                        *x = f32::from(u8::from(end > self.t));
                    }
                }
                Block::Used => {
                    for (x, &used) in part.iter_mut().zip(&self.used) {
                        *x = f32::from(u8::from(used));
                    }
                }
                Block::PitchClasses => {
                    let top = self.pitch_classes.iter().copied().max().unwrap_or(0);
                    if top > 0 {
                        for (x, &n) in part.iter_mut().zip(&self.pitch_classes) {
                            *x = n as f32 / top as f32;
                        }
                    }
                }
                Block::Metric => {
                    let pos = (self.t + self.bar - self.phase % self.bar) % self.bar;
                    part[(pos % 4) as usize] = 1.0;
                    part[4 + (pos / 4).min(7) as usize] = 1.0;
                    part[12 + (self.bar.div_ceil(4).clamp(1, 8) - 1) as usize] = 1.0;
                }
            }
            at += part.len();
        }
    }
}

/// A loaded event model with its scratch space.
pub struct EventModel {
    /// The `music` section.
    pub config: EventConfig,
    stack: LstmStack,
    out: Linear,
    input: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
    chunk_in: Vec<f32>,
    chunk_out: Vec<f32>,
}

impl EventModel {
    /// Whether a loaded model is an event model.
    pub fn is_events(model: &Model) -> bool {
        model.config.kind == "music-events"
    }

    /// Loads `dir` and runs its LSTM in `format` (the config's own format if `None`).
    pub fn load(dir: impl AsRef<Path>, format: Option<Format>) -> Result<EventModel, MusicError> {
        EventModel::from_model(Model::load(dir.as_ref())?, format)
    }

    /// An event model from an already loaded [`Model`].
    pub fn from_model(model: Model, format: Option<Format>) -> Result<EventModel, MusicError> {
        let not_music = |message: String| MusicError::NotMusic {
            path: model.dir.clone(),
            message,
        };
        if !EventModel::is_events(&model) {
            return Err(not_music(format!(
                "kind is {:?}, expected \"music-events\"",
                model.config.kind
            )));
        }
        let config = parse_events(&model).map_err(not_music)?;
        let (lstm, linear) = match &model.config.layers[..] {
            [
                LayerConfig::Lstm {
                    name: a,
                    input_size,
                    ..
                },
                LayerConfig::Linear {
                    name: b,
                    out_features,
                    ..
                },
            ] => {
                if *input_size != config.input_size() || *out_features != config.vocab() {
                    return Err(not_music(format!(
                        "the layers take {input_size} inputs and give {out_features} outputs, but \
                         the vocabulary needs {} and {}",
                        config.input_size(),
                        config.vocab()
                    )));
                }
                (a.clone(), b.clone())
            }
            _ => return Err(not_music("the layers must be lstm then linear".into())),
        };
        let stack = music_stack(&model, &lstm, format);
        let h = stack.hidden_size();
        let format = format.unwrap_or(model.config.weight_format);
        let out = Linear::from_model(&model, &linear, format, Isa::detect(), 1)
            .expect("layer checked above");
        if out.inputs() != h {
            return Err(not_music(
                "the linear layer must read the LSTM's output".into(),
            ));
        }
        let (n, v) = (config.input_size(), config.vocab());
        Ok(EventModel {
            input: vec![0.0; n],
            hidden: vec![0.0; h],
            logits: vec![0.0; v],
            chunk_in: vec![0.0; CHUNK * n],
            chunk_out: vec![0.0; CHUNK * h],
            config,
            stack,
            out,
        })
    }

    /// A fresh LSTM state.
    pub fn new_state(&self) -> LstmState {
        self.stack.new_state()
    }

    /// Reads token `index` into `st` and steps the LSTM on it; afterwards [`logits`]
    /// (Self::logits) scores the next token.
    pub fn step(
        &mut self,
        lstm: &mut LstmState,
        st: &mut EventState,
        index: usize,
    ) -> Result<(), MusicError> {
        st.read(&self.config, self.config.token(index));
        st.fill(&self.config, index, &mut self.input);
        self.stack
            .step_into(std::slice::from_mut(lstm), &self.input, &mut self.hidden)?;
        self.out.forward_into(&self.hidden, &mut self.logits)?;
        Ok(())
    }

    /// Reads a known stream of tokens (a seed) a chunk at a time; afterwards [`logits`]
    /// (Self::logits) scores the token after the last one.
    pub fn read_all(
        &mut self,
        lstm: &mut LstmState,
        st: &mut EventState,
        tokens: &[usize],
    ) -> Result<(), MusicError> {
        let (n, h) = (self.config.input_size(), self.stack.hidden_size());
        for chunk in tokens.chunks(CHUNK) {
            for (i, &index) in chunk.iter().enumerate() {
                st.read(&self.config, self.config.token(index));
                st.fill(&self.config, index, &mut self.chunk_in[i * n..(i + 1) * n]);
            }
            let tc = chunk.len();
            self.stack.forward_chunk_into(
                lstm,
                &self.chunk_in[..tc * n],
                &mut self.chunk_out[..tc * h],
            )?;
            self.hidden
                .copy_from_slice(&self.chunk_out[(tc - 1) * h..tc * h]);
        }
        self.out.forward_into(&self.hidden, &mut self.logits)?;
        Ok(())
    }

    /// Unnormalised log-probabilities of the next token.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

/// What may be sampled, besides the grammar (a `note` takes a `dur`, notes at one step rise).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventConstraints {
    /// Temperature and top-p.
    pub sampling: Sampling,
    /// Only keys of this scale may start.
    pub scale: Option<Scale>,
    /// At most this many keys sound at once.
    pub max_voices: Option<usize>,
}

/// Draws tokens from an event model's scores without allocating.
pub struct TokenSampler {
    probs: Vec<f32>,
    order: Vec<u16>,
}

impl TokenSampler {
    /// Buffers for a vocabulary of `vocab` tokens.
    pub fn new(vocab: usize) -> TokenSampler {
        TokenSampler {
            probs: vec![0.0; vocab],
            order: (0..vocab as u16).collect(),
        }
    }

    /// Whether token `i` may come next.
    pub fn allowed(cfg: &EventConfig, st: &EventState, c: &EventConstraints, i: usize) -> bool {
        match (cfg.token(i), st.pending()) {
            (Token::Dur(_), Some(_)) => true,
            (_, Some(_)) | (Token::Dur(_), None) | (Token::Start, None) => false,
            (Token::Shift(_), None) => true,
            (Token::Note(k), None) => {
                st.last_key().is_none_or(|last| k > last)
                    && !st.sounding(k)
                    && c.scale.is_none_or(|s| s.contains(cfg.low_note + k as u8))
                    && c.max_voices.is_none_or(|m| st.voices() < m)
            }
        }
    }

    /// Samples the next token under the grammar and `c`. `None` only if nothing is allowed,
    /// which the grammar rules out (a shift is always allowed when no note is pending, and
    /// every `dur` after a note).
    pub fn sample(
        &mut self,
        cfg: &EventConfig,
        st: &EventState,
        logits: &[f32],
        c: &EventConstraints,
        rng: &mut Rng,
    ) -> Option<usize> {
        let inv_t = 1.0 / c.sampling.temperature.max(1e-3);
        let mut max = f32::NEG_INFINITY;
        for (i, (p, &z)) in self.probs.iter_mut().zip(logits).enumerate() {
            *p = if TokenSampler::allowed(cfg, st, c, i) && z.is_finite() {
                max = max.max(z * inv_t);
                z * inv_t
            } else {
                f32::NEG_INFINITY
            };
        }
        if max == f32::NEG_INFINITY {
            return None;
        }
        let mut sum = 0.0;
        for p in self.probs.iter_mut() {
            *p = if *p == f32::NEG_INFINITY {
                0.0
            } else {
                (*p - max).exp()
            };
            sum += *p;
        }
        for p in self.probs.iter_mut() {
            *p /= sum;
        }
        // Nucleus: the most likely tokens whose probabilities reach top_p.
        let probs = &self.probs;
        self.order
            .sort_unstable_by(|a, b| probs[*b as usize].total_cmp(&probs[*a as usize]));
        let mut kept = 0;
        let mut mass = 0.0;
        for &i in &self.order {
            if probs[i as usize] <= 0.0 {
                break;
            }
            kept += 1;
            mass += probs[i as usize];
            if mass >= c.sampling.top_p {
                break;
            }
        }
        let mut u = rng.uniform() * mass;
        for &i in &self.order[..kept] {
            u -= probs[i as usize];
            if u < 0.0 {
                return Some(i as usize);
            }
        }
        Some(self.order[kept - 1] as usize)
    }
}

/// What [`EventGenerator::next`] drew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drawn {
    /// Time moved on from `from` by `steps`.
    Shift {
        /// Time before the shift.
        from: u64,
        /// Steps moved.
        steps: u32,
    },
    /// A note is coming on this key (its length follows).
    NoteOn(usize),
    /// A note on `key` from step `start` for `steps` steps.
    Note {
        /// Key index from `low_note`.
        key: usize,
        /// Start step.
        start: u64,
        /// Length in steps.
        steps: u32,
    },
}

/// Generates a token stream with an event model: the LSTM state, the stream's state and the
/// sampler. Everything is allocated by [`new`](Self::new); [`next`](Self::next) does not
/// allocate.
pub struct EventGenerator {
    lstm: LstmState,
    state: EventState,
    sampler: TokenSampler,
    rng: Rng,
}

impl EventGenerator {
    /// A generator at time 0 for bars of `bar` steps (a bar line at step 0), drawing with the
    /// random seed `seed`.
    pub fn new(model: &EventModel, bar: u64, seed: u64) -> EventGenerator {
        EventGenerator {
            lstm: model.new_state(),
            state: EventState::new(model.config.keys, bar, 0),
            sampler: TokenSampler::new(model.config.vocab()),
            rng: Rng::new(seed),
        }
    }

    /// The stream's state (time, sounding keys).
    pub fn state(&self) -> &EventState {
        &self.state
    }

    /// Reads a known stream (starting with `start`), such as a seed's tokens.
    pub fn prime(&mut self, model: &mut EventModel, tokens: &[usize]) -> Result<(), MusicError> {
        model.read_all(&mut self.lstm, &mut self.state, tokens)
    }

    /// Draws the next token under `c`, lets the model read it, and says what it was.
    pub fn next(
        &mut self,
        model: &mut EventModel,
        c: &EventConstraints,
    ) -> Result<Drawn, MusicError> {
        let cfg = &model.config;
        let index = self
            .sampler
            .sample(cfg, &self.state, model.logits(), c, &mut self.rng)
            .ok_or(MusicError::NoToken)?;
        let drawn = match (cfg.token(index), self.state.pending()) {
            (Token::Shift(k), _) => Drawn::Shift {
                from: self.state.t,
                steps: k,
            },
            (Token::Note(k), _) => Drawn::NoteOn(k),
            (Token::Dur(i), Some(key)) => Drawn::Note {
                key,
                start: self.state.t,
                steps: cfg.durations[i],
            },
            // The sampler never draws `start`, nor a `dur` without a note before it.
            _ => return Err(MusicError::NoToken),
        };
        model.step(&mut self.lstm, &mut self.state, index)?;
        Ok(drawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EventConfig {
        EventConfig {
            low_note: 21,
            keys: 88,
            steps_per_quarter: 4,
            shifts: 16,
            durations: (1..=16).chain([18, 20, 24, 28, 32, 40, 48, 64]).collect(),
            blocks: vec![
                Block::Token,
                Block::Sounding,
                Block::Used,
                Block::PitchClasses,
                Block::Metric,
            ],
        }
    }

    #[test]
    fn notes_become_tokens_lowest_first_with_long_gaps_split_and_read_back() {
        let c = cfg();
        let mut toks = vec![0];
        // C4 and E4 together at step 0, G4 at step 20 for 17 steps, then on to step 40.
        c.encode(&[(60, 0, 4), (64, 0, 4), (67, 20, 17)], 40, &mut toks);
        let read: Vec<Token> = toks.iter().map(|&i| c.token(i)).collect();
        assert_eq!(
            read,
            [
                Token::Start,
                Token::Note(39),
                Token::Dur(3),
                Token::Note(43),
                Token::Dur(3),
                Token::Shift(16),
                Token::Shift(4),
                Token::Note(46),
                Token::Dur(15), // 17 steps: 16 and 18 are as near; the shorter wins
                Token::Shift(16),
                Token::Shift(4),
            ]
        );
        for (i, &t) in toks.iter().enumerate() {
            assert_eq!(c.index(c.token(t)), toks[i]);
        }
        let mut st = EventState::new(c.keys, 16, 0);
        for &t in &toks[..8] {
            st.read(&c, c.token(t));
        }
        assert_eq!(st.t, 20);
        assert_eq!(st.pending(), Some(46));
        st.read(&c, Token::Dur(15));
        assert!(st.sounding(46) && !st.sounding(39));
        assert_eq!(st.voices(), 1);
    }

    #[test]
    fn the_input_holds_every_block_in_order() {
        let c = cfg();
        let mut st = EventState::new(c.keys, 12, 0); // 3/4
        st.read(&c, Token::Note(10)); // G1
        st.read(&c, Token::Dur(7)); // 8 steps
        st.read(&c, Token::Note(22)); // G2
        st.read(&c, Token::Dur(0)); // 1 step
        st.read(&c, Token::Note(14)); // B1
        st.read(&c, Token::Dur(0));
        st.read(&c, Token::Shift(6));
        let mut row = vec![0.0; c.input_size()];
        st.fill(&c, c.index(Token::Shift(6)), &mut row);
        let v = c.vocab();
        let hot: Vec<(usize, f32)> = (0..row.len())
            .filter(|&i| row[i] != 0.0)
            .map(|i| (i, row[i]))
            .collect();
        let (used, pcs, metric) = (v + 88, v + 176, v + 188);
        assert_eq!(
            hot,
            [
                (6, 1.0),         // the shift just read
                (v + 10, 1.0),    // G1 still sounds; G2 and B1 have ended
                (used + 10, 1.0), // keys used so far
                (used + 14, 1.0),
                (used + 22, 1.0),
                (pcs + 7, 1.0),         // two Gs: the most frequent pitch class
                (pcs + 11, 0.5),        // one B
                (metric + 2, 1.0),      // step 6 of a 12-step bar: its third sixteenth…
                (metric + 4 + 1, 1.0),  // …of the second quarter note…
                (metric + 12 + 2, 1.0), // …of a three-quarter bar
            ]
        );
    }

    #[test]
    fn the_sampler_keeps_the_grammar_the_voice_limit_and_the_scale() {
        let c = cfg();
        let mut sampler = TokenSampler::new(c.vocab());
        let mut rng = Rng::new(7);
        let logits = vec![0.0f32; c.vocab()]; // every token equally likely
        let limits = EventConstraints {
            sampling: Sampling::default(),
            scale: Scale::parse("C:major"),
            max_voices: Some(2),
        };
        let mut st = EventState::new(c.keys, 16, 0);
        let mut notes_at_step: Vec<usize> = Vec::new();
        for _ in 0..5000 {
            let i = sampler.sample(&c, &st, &logits, &limits, &mut rng).unwrap();
            let tok = c.token(i);
            match (tok, st.pending()) {
                (Token::Dur(_), p) => assert!(p.is_some(), "a dur without a note"),
                (_, Some(_)) => panic!("{tok:?} after a note"),
                (Token::Start, _) => panic!("start drawn"),
                (Token::Note(k), None) => {
                    assert!(Scale::parse("C:major").unwrap().contains(21 + k as u8));
                    assert!(notes_at_step.last().is_none_or(|&l| k > l), "not rising");
                    assert!(st.voices() < 2, "over the voice limit");
                    assert!(!st.sounding(k), "a sounding key struck again");
                    notes_at_step.push(k);
                }
                (Token::Shift(_), None) => notes_at_step.clear(),
            }
            st.read(&c, tok);
        }
    }

    #[test]
    fn top_p_keeps_only_the_likeliest_tokens() {
        let c = cfg();
        let mut sampler = TokenSampler::new(c.vocab());
        let mut rng = Rng::new(1);
        let mut logits = vec![-20.0f32; c.vocab()];
        logits[c.index(Token::Shift(4))] = 5.0;
        logits[c.index(Token::Shift(2))] = 4.0;
        logits[c.index(Token::Note(40))] = 3.0;
        let st = EventState::new(c.keys, 16, 0);
        let mut limits = EventConstraints {
            sampling: Sampling {
                temperature: 1.0,
                top_p: 0.6,
            },
            scale: None,
            max_voices: None,
        };
        for _ in 0..200 {
            let i = sampler.sample(&c, &st, &logits, &limits, &mut rng).unwrap();
            assert_eq!(c.token(i), Token::Shift(4));
        }
        limits.sampling.top_p = 1.0;
        let seen: std::collections::HashSet<usize> = (0..2000)
            .map(|_| sampler.sample(&c, &st, &logits, &limits, &mut rng).unwrap())
            .collect();
        assert!(seen.len() >= 3, "{seen:?}");
    }
}
