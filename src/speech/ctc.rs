//! CTC decoding: greedy, and prefix beam search with word language-model fusion and hot words.
//!
//! The decoder is incremental: [`Decoder::step`] takes one step's log-probabilities and does
//! work proportional to `beam × candidate symbols`, whatever the length of the stream. Prefixes
//! live in a trie (an arena of nodes preallocated for the longest utterance); a beam is a node
//! plus its scores, so extending a prefix costs one node and no copying. [`Decoder::reset`]
//! empties the trie at each endpoint.
//!
//! Scoring of a prefix: `ln(p_blank + p_non_blank) + lm_weight · ln P_lm(words) +
//! word_bonus · words + hot-word boosts`. The language model scores a word when the space after
//! it (or the end of the utterance) appears. A hot word's boost is given letter by letter while
//! a word follows it (so the beam keeps it) and taken back if the word turns out different.

use std::sync::Arc;

use super::SpeechError;
use super::lm::{LmState, NgramLm};

const NONE: u32 = u32::MAX;
const NEG_INF: f32 = f32::NEG_INFINITY;

fn log_add(a: f32, b: f32) -> f32 {
    if a == NEG_INF {
        return b;
    }
    if b == NEG_INF {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// Best path: the most likely symbol of every step, repeats collapsed and blanks removed.
pub fn greedy_path(log_probs: &[f32], symbols: usize, blank: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev = blank;
    for frame in log_probs.chunks_exact(symbols.max(1)) {
        let best = argmax(frame);
        if best != blank && best != prev {
            out.push(best);
        }
        prev = best;
    }
    out
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Decoder settings.
#[derive(Clone, Debug)]
pub struct DecoderOptions {
    /// Prefixes kept per step; 1 decodes greedily (best path).
    pub beam: usize,
    /// Symbols more than this many nats below a step's best are not tried.
    pub prune: f32,
    /// At most this many symbols are tried per step.
    pub max_symbols: usize,
    /// Weight of the language model's natural-log score.
    pub lm_weight: f32,
    /// Score added per word (balances the language model's cost of words).
    pub word_bonus: f32,
    /// Longest utterance in steps; sizes the prefix trie.
    pub max_steps: usize,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions {
            beam: 8,
            prune: 8.0,
            max_symbols: 8,
            lm_weight: 0.5,
            word_bonus: 1.0,
            max_steps: 1000,
        }
    }
}

/// A word to favour, with its boost (natural-log score added when the word is recognised).
#[derive(Clone, Debug, PartialEq)]
pub struct HotWord {
    /// The word, in the model's symbols.
    pub word: String,
    /// The boost; negative values discourage the word.
    pub boost: f32,
}

impl std::str::FromStr for HotWord {
    type Err = String;

    /// `WORD:BOOST` or `WORD` (boost 5).
    fn from_str(s: &str) -> Result<HotWord, String> {
        let (word, boost) = match s.rsplit_once(':') {
            Some((w, b)) => (
                w,
                b.parse::<f32>()
                    .ok()
                    .filter(|b| b.is_finite())
                    .ok_or_else(|| format!("hot word {s:?}: boost {b:?} is not a number"))?,
            ),
            None => (s, 5.0),
        };
        let word = word.trim().to_lowercase();
        if word.is_empty() {
            return Err(format!("hot word {s:?} is empty"));
        }
        Ok(HotWord { word, boost })
    }
}

/// A trie node of the hot words.
struct HotNode {
    children: Vec<(u16, u32)>,
    /// Bonus held while a word has followed this node's path (the largest over the words below).
    partial: f32,
    /// Boost of the hot word ending here (if any).
    complete: Option<f32>,
}

struct HotTrie {
    nodes: Vec<HotNode>,
}

impl HotTrie {
    fn new(words: &[Vec<u16>], boosts: &[f32]) -> HotTrie {
        let mut nodes = vec![HotNode {
            children: Vec::new(),
            partial: 0.0,
            complete: None,
        }];
        for (word, &boost) in words.iter().zip(boosts) {
            let mut at = 0usize;
            for (depth, &c) in word.iter().enumerate() {
                let next = match nodes[at].children.iter().find(|(s, _)| *s == c) {
                    Some(&(_, n)) => n as usize,
                    None => {
                        nodes.push(HotNode {
                            children: Vec::new(),
                            partial: f32::NEG_INFINITY,
                            complete: None,
                        });
                        let n = nodes.len() - 1;
                        nodes[at].children.push((c, n as u32));
                        n
                    }
                };
                let share = boost * (depth + 1) as f32 / word.len() as f32;
                nodes[next].partial = nodes[next].partial.max(share);
                at = next;
            }
            nodes[at].complete = Some(boost);
        }
        HotTrie { nodes }
    }

    fn child(&self, node: u32, symbol: u16) -> u32 {
        if node == NONE {
            return NONE;
        }
        self.nodes[node as usize]
            .children
            .iter()
            .find(|(s, _)| *s == symbol)
            .map_or(NONE, |&(_, n)| n)
    }

    fn partial(&self, node: u32) -> f32 {
        if node == NONE || node == 0 {
            0.0
        } else {
            self.nodes[node as usize].partial
        }
    }

    fn complete(&self, node: u32) -> f32 {
        if node == NONE {
            0.0
        } else {
            self.nodes[node as usize].complete.unwrap_or(0.0)
        }
    }
}

/// A prefix: one symbol after its parent.
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    symbol: u16,
    first_child: u32,
    next_sibling: u32,
    /// Step (within the utterance) at which the symbol was first emitted.
    step: u32,
    /// Its log-probability at that step.
    log_prob: f32,
    /// First node of the word this node ends (NONE for a space).
    word_start: u32,
}

/// A live prefix with its scores (or, during a step, a candidate).
#[derive(Clone, Copy)]
struct Beam {
    node: u32,
    /// When `node` is NONE: the candidate extends `parent` by `symbol`.
    parent: u32,
    symbol: u16,
    p_blank: f32,
    p_symbol: f32,
    lm: f32,
    words: u32,
    lm_state: Option<LmState>,
    hot: u32,
    hot_done: f32,
    hot_partial: f32,
}

impl Beam {
    fn acoustic(&self) -> f32 {
        log_add(self.p_blank, self.p_symbol)
    }
}

/// A recognised word, as symbols of the utterance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WordSpan {
    /// First step of the word (within the utterance).
    pub start: u32,
    /// Step after its last symbol.
    pub end: u32,
    /// exp(mean log-probability of its symbols), 0 to 1.
    pub conf: f32,
    /// Byte range of the word in the text written by [`Decoder::best`].
    pub text: (usize, usize),
}

/// One of the n best texts of an utterance ([`Decoder::n_best`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hypothesis {
    /// The text: words separated by single spaces.
    pub text: String,
    /// Its words, as in [`Decoder::best`].
    pub words: Vec<WordSpan>,
    /// Its share of the probability of the n best, 0 to 1.
    pub confidence: f32,
}

/// An incremental CTC decoder for one stream.
pub struct Decoder {
    symbols: Vec<char>,
    blank: usize,
    space: Option<usize>,
    opts: DecoderOptions,
    lm: Option<Arc<NgramLm>>,
    hot: HotTrie,
    nodes: Vec<Node>,
    beams: Vec<Beam>,
    candidates: Vec<Beam>,
    tried: Vec<(usize, f32)>,
    steps: u32,
    greedy_prev: usize,
    dropped: u64,
}

impl Decoder {
    /// A decoder over `vocabulary` (one character per symbol; the blank's entry is ignored).
    pub fn new(
        vocabulary: &[String],
        blank: usize,
        opts: DecoderOptions,
        lm: Option<Arc<NgramLm>>,
        hot_words: &[HotWord],
    ) -> Result<Decoder, SpeechError> {
        if opts.beam == 0 || opts.max_symbols == 0 || opts.max_steps == 0 {
            return Err(SpeechError::Option(
                "beam, max_symbols and max_steps must be positive".into(),
            ));
        }
        if !(opts.prune > 0.0 && opts.lm_weight.is_finite() && opts.word_bonus.is_finite()) {
            return Err(SpeechError::Option(
                "prune must be positive, lm_weight and word_bonus finite".into(),
            ));
        }
        let symbols: Vec<char> = vocabulary
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == blank {
                    '\0'
                } else {
                    s.chars().next().unwrap_or('\0')
                }
            })
            .collect();
        let space = symbols
            .iter()
            .enumerate()
            .position(|(i, &c)| i != blank && c == ' ');
        let mut words = Vec::new();
        let mut boosts = Vec::new();
        for h in hot_words {
            let word: Option<Vec<u16>> = h
                .word
                .chars()
                .map(|c| {
                    symbols
                        .iter()
                        .enumerate()
                        .position(|(i, &s)| i != blank && s == c && c != ' ')
                        .map(|i| i as u16)
                })
                .collect();
            match word {
                Some(w) if !w.is_empty() => {
                    words.push(w);
                    boosts.push(h.boost);
                }
                _ => {
                    return Err(SpeechError::Option(format!(
                        "hot word {:?} has characters the model cannot write",
                        h.word
                    )));
                }
            }
        }
        let capacity = (opts.max_steps + 1) * opts.beam + 1;
        let mut d = Decoder {
            symbols,
            blank,
            space,
            hot: HotTrie::new(&words, &boosts),
            nodes: Vec::with_capacity(capacity),
            beams: Vec::with_capacity(opts.beam),
            candidates: Vec::with_capacity(opts.beam * (opts.max_symbols + 1)),
            tried: Vec::with_capacity(vocabulary.len()),
            steps: 0,
            greedy_prev: blank,
            dropped: 0,
            lm,
            opts,
        };
        d.reset();
        Ok(d)
    }

    /// Forgets the utterance: back to the empty prefix.
    pub fn reset(&mut self) {
        self.nodes.clear();
        self.nodes.push(Node {
            parent: NONE,
            symbol: u16::MAX,
            first_child: NONE,
            next_sibling: NONE,
            step: 0,
            log_prob: 0.0,
            word_start: NONE,
        });
        self.beams.clear();
        self.beams.push(Beam {
            node: 0,
            parent: NONE,
            symbol: 0,
            p_blank: 0.0,
            p_symbol: NEG_INF,
            lm: 0.0,
            words: 0,
            lm_state: self.lm.as_ref().map(|lm| lm.begin()),
            hot: 0,
            hot_done: 0.0,
            hot_partial: 0.0,
        });
        self.steps = 0;
        self.greedy_prev = self.blank;
    }

    /// Steps decoded since the last reset.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Symbols dropped because the prefix trie was full (the utterance outgrew `max_steps`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The best prefix's identity: equal ids mean equal text (until the next reset).
    pub fn best_id(&self) -> u32 {
        self.best_beam(false).node
    }

    /// Whether the best prefix is empty.
    pub fn is_empty(&self) -> bool {
        self.best_beam(false).node == 0
    }

    fn last_symbol(&self, node: u32) -> Option<usize> {
        (node != 0).then(|| self.nodes[node as usize].symbol as usize)
    }

    fn find_child(&self, parent: u32, symbol: u16) -> u32 {
        let mut c = self.nodes[parent as usize].first_child;
        while c != NONE {
            let n = &self.nodes[c as usize];
            if n.symbol == symbol {
                return c;
            }
            c = n.next_sibling;
        }
        NONE
    }

    fn add_node(&mut self, parent: u32, symbol: u16, log_prob: f32) -> u32 {
        if self.nodes.len() == self.nodes.capacity() {
            self.dropped += 1;
            return NONE;
        }
        let id = self.nodes.len() as u32;
        let is_space = Some(symbol as usize) == self.space;
        let p = self.nodes[parent as usize];
        let word_start = if is_space {
            NONE
        } else if p.word_start == NONE {
            id
        } else {
            p.word_start
        };
        self.nodes.push(Node {
            parent,
            symbol,
            first_child: NONE,
            next_sibling: p.first_child,
            step: self.steps,
            log_prob,
            word_start,
        });
        self.nodes[parent as usize].first_child = id;
        id
    }

    /// The language-model and hot-word effect of completing the word that ends at `from`.
    fn complete_word(&self, beam: &mut Beam, from: u32) {
        if from == 0 || self.nodes[from as usize].word_start == NONE {
            return;
        }
        if let (Some(lm), Some(state)) = (&self.lm, beam.lm_state) {
            let (p, next) = self.word_score(lm, &state, from);
            beam.lm += p;
            beam.lm_state = Some(next);
        }
        beam.words += 1;
        beam.hot_done += self.hot.complete(beam.hot);
        beam.hot_partial = 0.0;
        beam.hot = 0;
    }

    fn score(&self, b: &Beam) -> f32 {
        b.acoustic()
            + self.opts.lm_weight * b.lm
            + self.opts.word_bonus * b.words as f32
            + b.hot_done
            + b.hot_partial
    }

    fn merge(&mut self, cand: Beam) {
        for c in self.candidates.iter_mut() {
            let same = if cand.node != NONE {
                c.node == cand.node
            } else {
                c.node == NONE && c.parent == cand.parent && c.symbol == cand.symbol
            };
            if same {
                c.p_blank = log_add(c.p_blank, cand.p_blank);
                c.p_symbol = log_add(c.p_symbol, cand.p_symbol);
                return;
            }
        }
        self.candidates.push(cand);
    }

    /// Decodes one step: `log_probs` holds a log-probability per symbol.
    pub fn step(&mut self, log_probs: &[f32]) -> Result<(), SpeechError> {
        if log_probs.len() != self.symbols.len() {
            return Err(SpeechError::Option(format!(
                "a step has {} log-probabilities, the vocabulary {} symbols",
                log_probs.len(),
                self.symbols.len()
            )));
        }
        if self.opts.beam == 1 {
            self.greedy_step(log_probs);
        } else {
            self.beam_step(log_probs);
        }
        self.steps = self.steps.saturating_add(1);
        Ok(())
    }

    fn greedy_step(&mut self, lp: &[f32]) {
        let best = argmax(lp);
        let prev = std::mem::replace(&mut self.greedy_prev, best);
        if best == self.blank || best == prev {
            return;
        }
        let mut beam = self.beams[0];
        let last = self.last_symbol(beam.node);
        let is_space = Some(best) == self.space;
        if is_space && (last.is_none() || last == self.space) {
            return;
        }
        if is_space {
            let at = beam.node;
            self.complete_word(&mut beam, at);
        } else {
            beam.hot = self.hot.child(beam.hot, best as u16);
            beam.hot_partial = self.hot.partial(beam.hot);
        }
        let node = self.add_node(beam.node, best as u16, lp[best]);
        if node != NONE {
            beam.node = node;
            self.beams[0] = beam;
        }
    }

    fn beam_step(&mut self, lp: &[f32]) {
        // The symbols worth trying at this step.
        let top = lp.iter().fold(NEG_INF, |m, &v| m.max(v));
        self.tried.clear();
        for (i, &v) in lp.iter().enumerate() {
            if i != self.blank && v >= top - self.opts.prune {
                self.tried.push((i, v));
            }
        }
        if self.tried.len() > self.opts.max_symbols {
            self.tried
                .select_nth_unstable_by(self.opts.max_symbols - 1, |a, b| b.1.total_cmp(&a.1));
            self.tried.truncate(self.opts.max_symbols);
        }
        self.candidates.clear();
        let blank = lp[self.blank];
        for bi in 0..self.beams.len() {
            let b = self.beams[bi];
            let total = b.acoustic();
            let last = self.last_symbol(b.node);
            let mut stay = Beam {
                p_blank: blank + total,
                p_symbol: last.map_or(NEG_INF, |s| lp[s] + b.p_symbol),
                ..b
            };
            for ti in 0..self.tried.len() {
                let (c, v) = self.tried[ti];
                let from = if Some(c) == last { b.p_blank } else { total };
                let is_space = Some(c) == self.space;
                if Some(c) == last && !is_space {
                    // Handled below as an extension from the blank-ending paths.
                } else if is_space && (last.is_none() || last == self.space) {
                    // A space at the start or after a space writes nothing.
                    stay.p_symbol = log_add(stay.p_symbol, v + from);
                    continue;
                }
                if is_space && Some(c) == last {
                    continue;
                }
                let existing = self.find_child(b.node, c as u16);
                let mut cand = Beam {
                    node: existing,
                    parent: b.node,
                    symbol: c as u16,
                    p_blank: NEG_INF,
                    p_symbol: v + from,
                    ..b
                };
                if is_space {
                    self.complete_word(&mut cand, b.node);
                } else {
                    cand.hot = self.hot.child(b.hot, c as u16);
                    cand.hot_partial = self.hot.partial(cand.hot);
                }
                self.merge(cand);
            }
            self.merge(stay);
        }
        // Keep the best `beam` candidates.
        let keep = self.opts.beam.min(self.candidates.len());
        let mut cands = std::mem::take(&mut self.candidates);
        if cands.len() > keep {
            cands.select_nth_unstable_by(keep - 1, |a, b| self.score(b).total_cmp(&self.score(a)));
            cands.truncate(keep);
        }
        self.beams.clear();
        for mut c in cands.iter().copied() {
            if c.node == NONE {
                let lpc = lp[c.symbol as usize];
                c.node = self.add_node(c.parent, c.symbol, lpc);
                if c.node == NONE {
                    continue;
                }
            }
            self.beams.push(c);
        }
        self.candidates = cands;
        if self.beams.is_empty() {
            // Only possible with a full trie: keep the best prefix as it is.
            let root = Beam {
                node: 0,
                p_blank: 0.0,
                p_symbol: NEG_INF,
                ..self.candidates[0]
            };
            self.beams.push(root);
        }
    }

    fn best_beam(&self, finished: bool) -> Beam {
        let mut best = self.beams[0];
        let mut best_score = NEG_INF;
        for b in &self.beams {
            let mut b = *b;
            let s = if finished {
                self.finish_score(&mut b)
            } else {
                self.score(&b)
            };
            if s > best_score {
                best_score = s;
                best = b;
            }
        }
        best
    }

    /// Score with the last word completed and the sentence end (for finals).
    fn finish_score(&self, b: &mut Beam) -> f32 {
        let node = b.node;
        let mut extra = 0.0;
        if node != 0 && self.nodes[node as usize].word_start != NONE {
            extra += self.hot.complete(b.hot) - b.hot_partial + self.opts.word_bonus;
            if let (Some(lm), Some(state)) = (&self.lm, b.lm_state) {
                let (p, next) = self.word_score(lm, &state, node);
                extra += self.opts.lm_weight * (p + lm.end(&next));
            }
        } else if let (Some(lm), Some(state)) = (&self.lm, b.lm_state) {
            extra += self.opts.lm_weight * lm.end(&state);
        }
        self.score(b) + extra
    }

    fn word_score(&self, lm: &NgramLm, state: &LmState, node: u32) -> (f32, LmState) {
        // Compare the word against the LM vocabulary without building a String: walk the
        // letters into a small stack buffer (words longer than it are scored as unknown).
        let mut buf = [0u8; 64];
        let start = self.nodes[node as usize].word_start;
        let mut n = node;
        let mut len = 0;
        loop {
            if len == buf.len() {
                return lm.score(state, super::lm::UNKNOWN);
            }
            let c = self.symbols[self.nodes[n as usize].symbol as usize];
            if !c.is_ascii() {
                return lm.score(state, super::lm::UNKNOWN);
            }
            buf[len] = c as u8;
            len += 1;
            if n == start {
                break;
            }
            n = self.nodes[n as usize].parent;
        }
        buf[..len].reverse();
        let word = std::str::from_utf8(&buf[..len]).unwrap_or("");
        lm.score(state, lm.word_id(word))
    }

    /// Writes the best prefix's text into `text` and its words into `words` (both cleared
    /// first). With `finished`, the last word and the sentence end are scored too (use it for
    /// finals). Does not allocate once the buffers have grown to an utterance's size.
    pub fn best(&self, finished: bool, text: &mut String, words: &mut Vec<WordSpan>) {
        self.write_prefix(self.best_beam(finished).node, text, words);
    }

    /// The `k` best distinct finished texts, best first, each with its share of their summed
    /// probability (the softmax of their scores), written into `out`, whose first `k` entries
    /// are reused. Fewer than `k` when fewer distinct prefixes are alive. Returns how many were
    /// written. Meant for finals: it ranks the beam in a small list of its own (allocated).
    pub fn n_best(&self, k: usize, out: &mut Vec<Hypothesis>) -> usize {
        let mut scored: Vec<(f32, u32)> = self
            .beams
            .iter()
            .map(|b| {
                let mut b = *b;
                (self.finish_score(&mut b), b.node)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut n = 0;
        for &(score, node) in &scored {
            if n == k {
                break;
            }
            if out.len() == n {
                out.push(Hypothesis::default());
            }
            let (done, rest) = out.split_at_mut(n);
            let h = &mut rest[0];
            self.write_prefix(node, &mut h.text, &mut h.words);
            // A prefix and the same prefix with a trailing space read the same.
            if h.text.is_empty() || done.iter().any(|d| d.text == h.text) {
                continue;
            }
            h.confidence = score;
            n += 1;
        }
        let top = out.first().map_or(0.0, |h| h.confidence);
        let total: f32 = out[..n].iter().map(|h| (h.confidence - top).exp()).sum();
        for h in &mut out[..n] {
            h.confidence = (h.confidence - top).exp() / total;
        }
        n
    }

    /// Writes the text and words of the prefix ending at `node`.
    fn write_prefix(&self, node: u32, text: &mut String, words: &mut Vec<WordSpan>) {
        text.clear();
        words.clear();
        // Walk back to the root, counting, then write forwards by walking again per word.
        let mut n = node;
        let mut len = 0usize;
        while n != 0 && n != NONE {
            len += 1;
            n = self.nodes[n as usize].parent;
        }
        // Reserve exactly, then fill from the end: chars are written into a byte buffer.
        let mut bytes = std::mem::take(text).into_bytes();
        let ascii = self.symbols.iter().all(|c| c.is_ascii());
        if ascii {
            bytes.resize(len, b' ');
            let mut n = node;
            let mut i = len;
            let mut word_end = NONE;
            let mut word_sum = 0.0f32;
            let mut word_len = 0u32;
            let mut end_step = 0u32;
            while n != 0 && n != NONE {
                i -= 1;
                let node = self.nodes[n as usize];
                bytes[i] = self.symbols[node.symbol as usize] as u8;
                if node.word_start != NONE {
                    if word_end == NONE {
                        word_end = i as u32 + 1;
                        word_sum = 0.0;
                        word_len = 0;
                        end_step = node.step + 1;
                    }
                    word_sum += node.log_prob;
                    word_len += 1;
                    if node.word_start == n {
                        words.push(WordSpan {
                            start: node.step,
                            end: end_step,
                            conf: (word_sum / word_len as f32).exp(),
                            text: (i, word_end as usize),
                        });
                        word_end = NONE;
                    }
                }
                n = node.parent;
            }
            words.reverse();
            // A trailing space (word finished, next not begun) is not part of the text.
            while bytes.last() == Some(&b' ') {
                bytes.pop();
            }
            *text = String::from_utf8(bytes).unwrap_or_default();
        } else {
            *text = String::from_utf8(bytes).unwrap_or_default();
            let mut n = node;
            let mut rev = Vec::new();
            while n != 0 && n != NONE {
                rev.push(self.symbols[self.nodes[n as usize].symbol as usize]);
                n = self.nodes[n as usize].parent;
            }
            text.extend(rev.iter().rev());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::lm::tests::tiny;

    fn vocab() -> Vec<String> {
        let mut v = vec!["<blank>".to_string(), " ".into(), "'".into()];
        v.extend(('a'..='z').map(|c| c.to_string()));
        v
    }

    fn id(c: char) -> usize {
        vocab().iter().position(|s| s == &c.to_string()).unwrap()
    }

    /// Log-probabilities where each step puts `p` on one symbol ('_' = blank) and spreads the
    /// rest evenly.
    fn frames(path: &str, p: f32) -> Vec<f32> {
        let n = vocab().len();
        let mut out = Vec::new();
        for c in path.chars() {
            let k = if c == '_' { 0 } else { id(c) };
            let rest = ((1.0 - p) / (n - 1) as f32).ln();
            out.extend((0..n).map(|i| if i == k { p.ln() } else { rest }));
        }
        out
    }

    fn decode(
        opts: DecoderOptions,
        lm: Option<Arc<NgramLm>>,
        hot: &[HotWord],
        lp: &[f32],
    ) -> (String, Vec<WordSpan>) {
        let v = vocab();
        let mut d = Decoder::new(&v, 0, opts, lm, hot).unwrap();
        for step in lp.chunks(v.len()) {
            d.step(step).unwrap();
        }
        let (mut text, mut words) = (String::new(), Vec::new());
        d.best(true, &mut text, &mut words);
        (text, words)
    }

    #[test]
    fn greedy_collapses_repeats_and_drops_blanks() {
        let lp = frames("hh_e_ll_l_oo__ w_o", 0.9);
        let path = greedy_path(&lp, vocab().len(), 0);
        let text: String = path.iter().map(|&i| vocab()[i].clone()).collect();
        assert_eq!(text, "hello wo");
        let greedy = DecoderOptions {
            beam: 1,
            ..Default::default()
        };
        let (t, words) = decode(greedy, None, &[], &lp);
        assert_eq!(t, "hello wo");
        assert_eq!(words.len(), 2);
        assert_eq!((words[0].start, words[0].end), (0, 11));
        assert_eq!(&t[words[1].text.0..words[1].text.1], "wo");
        assert!((words[0].conf - 0.9).abs() < 1e-4);
    }

    #[test]
    fn beam_search_finds_the_best_path_and_sums_paths() {
        let lp = frames("__cc_a_t__ _d_o_g_", 0.8);
        let (t, words) = decode(DecoderOptions::default(), None, &[], &lp);
        assert_eq!(t, "cat dog");
        assert_eq!(words.len(), 2);
        assert_eq!(words[1].start, 12);
        // Summing paths beats the single best path: each step 'a' 0.4, blank 0.35, 'b' 0.25
        // has best path "a" ... but the collapsed sequences agree. A known case: two steps
        // with p(a)=0.4, p(blank)=0.6 give best path "" (0.36) but P("a") = 0.64.
        let n = vocab().len();
        let mut lp = vec![(1e-6f32).ln(); 2 * n];
        for s in 0..2 {
            lp[s * n] = 0.6f32.ln();
            lp[s * n + id('a')] = 0.4f32.ln();
        }
        assert!(greedy_path(&lp, n, 0).is_empty());
        let opts = DecoderOptions {
            word_bonus: 0.0,
            ..Default::default()
        };
        assert_eq!(decode(opts, None, &[], &lp).0, "a");
    }

    #[test]
    fn n_best_lists_distinct_texts_best_first() {
        // "c?t": the middle step is 'a' 0.5, 'o' 0.3, 'u' 0.2.
        let n = vocab().len();
        let mut lp = frames("c_x_t", 0.9);
        for (c, p) in [('a', 0.5f32), ('o', 0.3), ('u', 0.2)] {
            lp[2 * n + id(c)] = p.ln();
        }
        lp[2 * n + id('x')] = (1e-6f32).ln();
        let v = vocab();
        let mut d = Decoder::new(&v, 0, DecoderOptions::default(), None, &[]).unwrap();
        for step in lp.chunks(n) {
            d.step(step).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(d.n_best(3, &mut out), 3);
        let texts: Vec<&str> = out.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(texts, ["cat", "cot", "cut"]);
        let conf: Vec<f32> = out.iter().map(|h| h.confidence).collect();
        assert!(conf[0] > conf[1] && conf[1] > conf[2], "{conf:?}");
        assert!((conf.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!((conf[0] / conf[1] - 5.0 / 3.0).abs() < 0.05, "{conf:?}");
        let (mut best, mut words) = (String::new(), Vec::new());
        d.best(true, &mut best, &mut words);
        assert_eq!(best, out[0].text);
        assert_eq!(words, out[0].words);
        // Asking again reuses the entries; asking for fewer writes fewer.
        assert_eq!(d.n_best(1, &mut out), 1);
        assert_eq!(out[0].text, "cat");
    }

    /// Steps where "world" and "word" are nearly tied acoustically.
    fn ambiguous() -> Vec<f32> {
        let n = vocab().len();
        let mut lp = frames("hel_lo w_o_r___d_", 0.9);
        let q = "hel_lo w_o_r_".len();
        let row = &mut lp[q * n..(q + 1) * n];
        row.fill((0.01f32).ln());
        row[id('l')] = 0.40f32.ln();
        row[0] = 0.45f32.ln();
        lp
    }

    #[test]
    fn language_model_and_hot_words_change_the_result() {
        let lp = ambiguous();
        let no_lm = DecoderOptions {
            word_bonus: 0.0,
            ..Default::default()
        };
        assert_eq!(decode(no_lm.clone(), None, &[], &lp).0, "hello word");
        let lm = Some(Arc::new(tiny()));
        let with_lm = DecoderOptions {
            lm_weight: 1.0,
            ..no_lm.clone()
        };
        assert_eq!(
            decode(with_lm.clone(), lm.clone(), &[], &lp).0,
            "hello world"
        );
        let hot: HotWord = "word:6".parse().unwrap();
        assert_eq!(decode(with_lm, lm, &[hot], &lp).0, "hello word");
        let hot: HotWord = "world:3".parse().unwrap();
        assert_eq!(decode(no_lm, None, &[hot], &lp).0, "hello world");
    }

    #[test]
    fn chunked_decoding_equals_one_pass_and_reset_forgets() {
        let lp = ambiguous();
        let v = vocab();
        let mut d = Decoder::new(&v, 0, DecoderOptions::default(), None, &[]).unwrap();
        let (mut a, mut b, mut w) = (String::new(), String::new(), Vec::new());
        for step in lp.chunks(v.len()) {
            d.step(step).unwrap();
            d.best(false, &mut a, &mut w);
        }
        d.best(true, &mut a, &mut w);
        d.reset();
        assert!(d.is_empty());
        for step in lp.chunks(v.len()) {
            d.step(step).unwrap();
        }
        d.best(true, &mut b, &mut w);
        assert_eq!(a, b);
        assert!(d.step(&lp[..3]).is_err());
    }

    #[test]
    fn bad_hot_words_and_options_are_refused() {
        assert!("".parse::<HotWord>().is_err());
        assert!("x:abc".parse::<HotWord>().is_err());
        assert_eq!(
            "Paris".parse::<HotWord>().unwrap(),
            HotWord {
                word: "paris".into(),
                boost: 5.0
            }
        );
        let v = vocab();
        let hot = HotWord {
            word: "ça".into(),
            boost: 1.0,
        };
        assert!(Decoder::new(&v, 0, DecoderOptions::default(), None, &[hot]).is_err());
        let zero = DecoderOptions {
            beam: 0,
            ..Default::default()
        };
        assert!(Decoder::new(&v, 0, zero, None, &[]).is_err());
    }

    #[test]
    fn a_full_trie_drops_symbols_instead_of_growing() {
        let v = vocab();
        let opts = DecoderOptions {
            max_steps: 3,
            beam: 2,
            ..Default::default()
        };
        let mut d = Decoder::new(&v, 0, opts, None, &[]).unwrap();
        let lp = frames("abcdefghijklmnop", 0.9);
        for step in lp.chunks(v.len()) {
            d.step(step).unwrap();
        }
        assert!(d.dropped() > 0);
        let (mut t, mut w) = (String::new(), Vec::new());
        d.best(true, &mut t, &mut w);
        assert!(t.len() <= 9, "{t}");
    }
}
