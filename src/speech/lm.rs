//! A word n-gram language model read from an ARPA file, with Katz-style back-off.
//!
//! Words get dense ids; n-grams are keyed by fixed-size id arrays, so a lookup never allocates.
//! Scores are natural logs (ARPA files hold log10).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use super::SpeechError;

/// Longest n-gram order this build reads.
pub const MAX_ORDER: usize = 5;

const NONE: u32 = u32::MAX;

type Key = [u32; MAX_ORDER];

/// ln p of a word outside the vocabulary when the model has no `<unk>` (about the offset
/// other CTC decoders use).
pub const UNKNOWN_SCORE: f32 = -10.0;

/// Word id of a word not in the vocabulary.
pub const UNKNOWN: u32 = NONE;

/// The context a word is scored in: up to `MAX_ORDER - 1` previous word ids, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LmState {
    words: [u32; MAX_ORDER - 1],
    len: u8,
}

impl LmState {
    fn context(&self) -> &[u32] {
        &self.words[..self.len as usize]
    }
}

/// A back-off n-gram model.
#[derive(Debug)]
pub struct NgramLm {
    vocab: HashMap<String, u32>,
    grams: HashMap<Key, (f32, f32)>,
    order: usize,
    unk: f32,
    bos: u32,
    eos: u32,
}

fn key(words: &[u32]) -> Key {
    let mut k = [NONE; MAX_ORDER];
    k[..words.len()].copy_from_slice(words);
    k
}

const LN10: f32 = std::f32::consts::LN_10;

impl NgramLm {
    /// Reads an ARPA file, gzip-compressed when its name ends in `.gz`.
    pub fn load(path: &Path) -> Result<NgramLm, SpeechError> {
        let file = std::fs::File::open(path).map_err(|e| SpeechError::LanguageModel {
            path: path.to_owned(),
            line: 0,
            message: e.to_string(),
        })?;
        if path.extension().is_some_and(|e| e == "gz") {
            let gz = flate2::read::GzDecoder::new(file);
            NgramLm::read(std::io::BufReader::new(gz), path)
        } else {
            NgramLm::read(std::io::BufReader::new(file), path)
        }
    }

    /// Reads ARPA text (`path` is for messages).
    pub fn read(reader: impl BufRead, path: &Path) -> Result<NgramLm, SpeechError> {
        let err = |line: usize, message: String| SpeechError::LanguageModel {
            path: path.to_owned(),
            line,
            message,
        };
        let mut lm = NgramLm {
            vocab: HashMap::new(),
            grams: HashMap::new(),
            order: 0,
            unk: UNKNOWN_SCORE,
            bos: NONE,
            eos: NONE,
        };
        let mut section: Option<usize> = None;
        let mut in_data = false;
        let mut counts: Vec<usize> = Vec::new();
        let mut seen = [0usize; MAX_ORDER + 1];
        let mut ids = Vec::with_capacity(MAX_ORDER);
        for (i, line) in reader.lines().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| err(n, e.to_string()))?;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line == "\\data\\" {
                in_data = true;
                continue;
            }
            if line == "\\end\\" {
                section = None;
                in_data = false;
                break;
            }
            if let Some(rest) = line.strip_prefix('\\') {
                let order = rest
                    .strip_suffix("-grams:")
                    .and_then(|o| o.parse::<usize>().ok())
                    .filter(|o| (1..=MAX_ORDER).contains(o))
                    .ok_or_else(|| {
                        err(
                            n,
                            format!("unknown section {line:?} (orders 1 to {MAX_ORDER})"),
                        )
                    })?;
                section = Some(order);
                in_data = false;
                lm.order = lm.order.max(order);
                continue;
            }
            if in_data {
                if let Some(c) = line.strip_prefix("ngram ") {
                    let (o, c) = c
                        .split_once('=')
                        .and_then(|(o, c)| {
                            Some((
                                o.trim().parse::<usize>().ok()?,
                                c.trim().parse::<usize>().ok()?,
                            ))
                        })
                        .ok_or_else(|| err(n, format!("bad count line {line:?}")))?;
                    if o == 0 || o > MAX_ORDER {
                        return Err(err(
                            n,
                            format!("order {o} is not supported (1 to {MAX_ORDER})"),
                        ));
                    }
                    counts.resize(counts.len().max(o), 0);
                    counts[o - 1] = c;
                    continue;
                }
                return Err(err(n, format!("unexpected line in \\data\\: {line:?}")));
            }
            let Some(order) = section else {
                return Err(err(n, format!("text outside any section: {line:?}")));
            };
            let mut fields = line.split_whitespace();
            let logp: f32 = fields
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| err(n, format!("no probability in {line:?}")))?;
            ids.clear();
            for _ in 0..order {
                let w = fields
                    .next()
                    .ok_or_else(|| err(n, format!("a {order}-gram needs {order} words")))?;
                let id = match lm.vocab.get(w) {
                    Some(&id) => id,
                    None if order == 1 => {
                        let id = lm.vocab.len() as u32;
                        lm.vocab.insert(w.to_owned(), id);
                        id
                    }
                    None => return Err(err(n, format!("word {w:?} has no unigram"))),
                };
                ids.push(id);
            }
            let backoff: f32 = match fields.next() {
                Some(b) => b
                    .parse()
                    .map_err(|_| err(n, format!("bad back-off weight {b:?}")))?,
                None => 0.0,
            };
            if fields.next().is_some() {
                return Err(err(n, format!("too many fields in {line:?}")));
            }
            if !logp.is_finite() && logp != f32::NEG_INFINITY || !backoff.is_finite() {
                return Err(err(n, format!("non-finite value in {line:?}")));
            }
            lm.grams.insert(key(&ids), (logp * LN10, backoff * LN10));
            seen[order] += 1;
        }
        if section.is_some() || in_data {
            return Err(err(0, "no \\end\\ line (truncated file?)".into()));
        }
        if lm.order == 0 || lm.vocab.is_empty() {
            return Err(err(0, "no n-grams".into()));
        }
        for (o, &c) in counts.iter().enumerate() {
            if seen[o + 1] != c {
                return Err(err(
                    0,
                    format!(
                        "the header announces {c} {}-grams, the file has {}",
                        o + 1,
                        seen[o + 1]
                    ),
                ));
            }
        }
        lm.bos = lm.vocab.get("<s>").copied().unwrap_or(NONE);
        lm.eos = lm.vocab.get("</s>").copied().unwrap_or(NONE);
        if let Some(&unk) = lm.vocab.get("<unk>") {
            lm.unk = lm.grams[&key(&[unk])].0;
        }
        Ok(lm)
    }

    /// The n-gram order.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Words in the vocabulary.
    pub fn vocabulary_size(&self) -> usize {
        self.vocab.len()
    }

    /// The id of `word` ([`UNKNOWN`] if it is not in the vocabulary).
    pub fn word_id(&self, word: &str) -> u32 {
        self.vocab.get(word).copied().unwrap_or(UNKNOWN)
    }

    /// The state at the start of a sentence.
    pub fn begin(&self) -> LmState {
        let mut s = LmState {
            words: [NONE; MAX_ORDER - 1],
            len: 0,
        };
        if self.bos != NONE && self.order > 1 {
            s.words[0] = self.bos;
            s.len = 1;
        }
        s
    }

    /// ln p(word | state) and the state after it. An unknown word scores as `<unk>` (or
    /// [`UNKNOWN_SCORE`] without one) and resets the context.
    pub fn score(&self, state: &LmState, word: u32) -> (f32, LmState) {
        let mut next = *state;
        if word == UNKNOWN {
            next.len = 0;
            return (self.unk, next);
        }
        let ctx = state.context();
        let mut backoff = 0.0;
        let mut logp = self.unk;
        for start in 0..=ctx.len() {
            let mut k = [NONE; MAX_ORDER];
            let c = &ctx[start..];
            k[..c.len()].copy_from_slice(c);
            k[c.len()] = word;
            if let Some(&(p, _)) = self.grams.get(&k) {
                logp = p + backoff;
                break;
            }
            if let Some(&(_, b)) = self.grams.get(&key(c)) {
                backoff += b;
            }
        }
        let keep = self.order.saturating_sub(1);
        if keep == 0 {
            next.len = 0;
        } else if (next.len as usize) < keep {
            next.words[next.len as usize] = word;
            next.len += 1;
        } else {
            next.words.copy_within(1..keep, 0);
            next.words[keep - 1] = word;
        }
        (logp, next)
    }

    /// ln p(`</s>` | state), 0 when the model has no sentence end.
    pub fn end(&self, state: &LmState) -> f32 {
        if self.eos == NONE {
            0.0
        } else {
            self.score(state, self.eos).0
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TINY: &str = "\\data\\
ngram 1=6
ngram 2=4

\\1-grams:
-1.0 <s> -0.5
-1.0 </s>
-0.8 hello -0.3
-1.2 world -0.2
-1.1 word -0.2
-2.0 <unk>

\\2-grams:
-0.1 <s> hello
-0.2 hello world
-1.5 hello word
-0.3 world </s>

\\end\\
";

    pub(crate) fn tiny() -> NgramLm {
        NgramLm::read(TINY.as_bytes(), Path::new("tiny.arpa")).unwrap()
    }

    #[test]
    fn explicit_bigram_and_back_off() {
        let lm = tiny();
        assert_eq!(lm.order(), 2);
        let s = lm.begin();
        let (p, s) = lm.score(&s, lm.word_id("hello"));
        assert!((p - -0.1 * LN10).abs() < 1e-6);
        let (p, _) = lm.score(&s, lm.word_id("world"));
        assert!((p - -0.2 * LN10).abs() < 1e-6);
        // "world word" is not a bigram: back-off(world) + p(word).
        let (_, s) = lm.score(&lm.begin(), lm.word_id("world"));
        let (p, _) = lm.score(&s, lm.word_id("word"));
        assert!((p - (-0.2 - 1.1) * LN10).abs() < 1e-5, "{p}");
        let (p, _) = lm.score(&s, lm.word_id("zebra"));
        assert!((p - -2.0 * LN10).abs() < 1e-6);
    }

    #[test]
    fn gzip_files_are_read() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.arpa.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(TINY.as_bytes()).unwrap();
        gz.finish().unwrap();
        let lm = NgramLm::load(&path).unwrap();
        assert_eq!((lm.order(), lm.vocabulary_size()), (2, 6));
        let missing = NgramLm::load(&dir.path().join("none.arpa"));
        assert!(matches!(
            missing,
            Err(SpeechError::LanguageModel { line: 0, .. })
        ));
    }

    #[test]
    fn broken_files_are_refused_with_a_line() {
        for (text, line) in [
            ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 a\n", 0),
            ("\\data\\\nngram 1=1\n\n\\1-grams:\nx a\n\\end\\\n", 5),
            ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1 a\n\\end\\\n", 0),
            ("\\data\\\nngram 2=1\n\n\\2-grams:\n-1 a b\n\\end\\\n", 5),
            ("hello\n", 1),
        ] {
            match NgramLm::read(text.as_bytes(), Path::new("x.arpa")) {
                Err(SpeechError::LanguageModel { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
