//! The speech protocol, compatible with the Vosk server's:
//!
//! - the client may first send the text message
//!   `{"config": {"sample_rate": N, "words": true, "max_alternatives": K, "phrase_list": [...]}}`
//!   (every field optional; unknown fields are ignored, as Vosk does);
//! - then binary messages of 16-bit little-endian mono PCM at that rate;
//! - each binary message is answered with one text message: `{"partial": "..."}`, or, when an
//!   utterance ended inside it, `{"result": [{"conf", "end", "start", "word"}…], "text": "..."}`
//!   (`result` only with `words`); with `max_alternatives` K > 0,
//!   `{"alternatives": [{"confidence", "result", "text"}…]}` holding up to K distinct texts from
//!   the beam, best first, each confidence being that text's share of their probability (Vosk
//!   writes lattice scores there instead);
//! - `{"eof" : 1}` is answered with the final result of the audio so far, then the server
//!   closes; `{"reset" : 1}` is answered the same way and the session goes on.
//!
//! Errors are sent as `{"error": "..."}` before the server closes the connection with a
//! WebSocket close code saying why.

use serde::Deserialize;
use serde_json::{Value, json};

/// A client's `config` message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamConfig {
    /// Rate of the PCM the client sends, in Hz.
    pub sample_rate: Option<u32>,
    /// Report words with times and confidences in results.
    pub words: Option<bool>,
    /// Report results as a list of alternatives (the best one; see the module docs).
    pub max_alternatives: Option<u32>,
    /// Words to favour (each word of each phrase becomes a hot word).
    pub phrase_list: Option<Vec<String>>,
}

/// A parsed text message.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientText {
    /// Stream settings.
    Config(StreamConfig),
    /// End of the stream: send the final result and close.
    Eof,
    /// End of an utterance: send the final result and go on.
    Reset,
}

/// Why a text message was refused. The text is sent to the client.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

/// Most phrases, and most bytes in all of them, that a `phrase_list` may hold.
pub const MAX_PHRASES: usize = 1000;
const MAX_PHRASE_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    sample_rate: Option<Value>,
    #[serde(default)]
    words: Option<Value>,
    #[serde(default)]
    max_alternatives: Option<Value>,
    #[serde(default)]
    phrase_list: Option<Vec<String>>,
}

/// A number, or a string holding one: Vosk's server reads `sample_rate` with Python's
/// `float()` and `max_alternatives` with `int()`, so `"16000"` is a rate there too.
fn number(key: &str, v: &Value) -> Result<f64, ProtocolError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| ProtocolError(format!("config.{key} must be a number (got {v})")))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "yes"),
        _ => false,
    }
}

/// Parses a text message from a client.
pub fn parse_text(text: &str) -> Result<ClientText, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError(format!("malformed JSON message: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ProtocolError(
            "a text message must be a JSON object: {\"config\": {…}}, {\"eof\": 1} or {\"reset\": 1}"
                .into(),
        ));
    };
    if let Some(v) = map.get("eof") {
        return if truthy(v) {
            Ok(ClientText::Eof)
        } else {
            Err(ProtocolError("\"eof\" must be 1".into()))
        };
    }
    if let Some(v) = map.get("reset") {
        return if truthy(v) {
            Ok(ClientText::Reset)
        } else {
            Err(ProtocolError("\"reset\" must be 1".into()))
        };
    }
    let Some(config) = map.get("config") else {
        let keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        return Err(ProtocolError(format!(
            "unknown message with keys {keys:?}: expected \"config\", \"eof\" or \"reset\""
        )));
    };
    let raw = RawConfig::deserialize(config).map_err(|e| ProtocolError(format!("config: {e}")))?;
    let sample_rate = match raw
        .sample_rate
        .map(|v| number("sample_rate", &v))
        .transpose()?
    {
        None => None,
        Some(r) if r.is_finite() && (4_000.0..=192_000.0).contains(&r) => Some(r.round() as u32),
        Some(r) => {
            return Err(ProtocolError(format!(
                "config.sample_rate {r} is out of range (4000 to 192000 Hz)"
            )));
        }
    };
    let max_alternatives = match raw
        .max_alternatives
        .map(|v| number("max_alternatives", &v))
        .transpose()?
    {
        None => None,
        Some(k) if k.is_finite() && (0.0..=100.0).contains(&k) => Some(k as u32),
        Some(k) => {
            return Err(ProtocolError(format!(
                "config.max_alternatives {k} is out of range (0 to 100)"
            )));
        }
    };
    if let Some(list) = &raw.phrase_list
        && (list.len() > MAX_PHRASES
            || list.iter().map(|p| p.len()).sum::<usize>() > MAX_PHRASE_BYTES)
    {
        return Err(ProtocolError(format!(
            "config.phrase_list is too long (at most {MAX_PHRASES} phrases, {MAX_PHRASE_BYTES} bytes)"
        )));
    }
    Ok(ClientText::Config(StreamConfig {
        sample_rate,
        words: raw.words.as_ref().map(truthy),
        max_alternatives,
        phrase_list: raw.phrase_list,
    }))
}

/// The distinct words of a phrase list, lower-cased (`[unk]` and other bracketed tokens left
/// out).
pub fn phrase_words(phrases: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for p in phrases {
        for w in p.split_whitespace() {
            if w.starts_with('[') && w.ends_with(']') {
                continue;
            }
            let w = w.to_lowercase();
            if !words.contains(&w) {
                words.push(w);
            }
        }
    }
    words
}

/// Decodes 16-bit little-endian PCM into floats in [-1, 1). A byte left over from an odd-length
/// message is kept in `carry` and joined with the next message's first byte.
pub fn decode_pcm16(bytes: &[u8], carry: &mut Option<u8>, out: &mut Vec<f32>) {
    out.clear();
    let mut bytes = bytes;
    if let Some(lo) = carry.take() {
        match bytes.split_first() {
            Some((&hi, rest)) => {
                out.push(i16::from_le_bytes([lo, hi]) as f32 / 32768.0);
                bytes = rest;
            }
            None => {
                *carry = Some(lo);
                return;
            }
        }
    }
    let mut pairs = bytes.chunks_exact(2);
    out.extend(
        pairs
            .by_ref()
            .map(|p| i16::from_le_bytes([p[0], p[1]]) as f32 / 32768.0),
    );
    if let [last] = pairs.remainder() {
        *carry = Some(*last);
    }
}

/// A finished utterance, as sent to clients.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FinalResult {
    /// Words separated by single spaces.
    pub text: String,
    /// (word, start, end, confidence), times in seconds from the start of the stream.
    pub words: Vec<(String, f64, f64, f32)>,
    /// The n best texts, best first, when the session asked for `max_alternatives`.
    pub alternatives: Vec<AlternativeResult>,
}

/// One of an utterance's n best texts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlternativeResult {
    /// Words separated by single spaces.
    pub text: String,
    /// Its share of the probability of the n best, 0 to 1.
    pub confidence: f32,
    /// As [`FinalResult::words`].
    pub words: Vec<(String, f64, f64, f32)>,
}

/// How results are written for one session.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResultStyle {
    /// Include the words with times and confidences.
    pub words: bool,
    /// Write `{"alternatives": [...]}`.
    pub alternatives: bool,
}

/// `{"partial": "..."}`.
pub fn partial_json(text: &str) -> String {
    json!({ "partial": text }).to_string()
}

/// A result message for the utterances that ended since the last reply (usually one; several
/// are joined into one result, so that each client message still gets exactly one reply).
/// No utterances give `{"text": ""}`, as Vosk sends for silence.
pub fn result_json(finals: &[FinalResult], style: ResultStyle) -> String {
    let text = finals
        .iter()
        .map(|f| f.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<Value> = word_values(finals.iter().flat_map(|f| &f.words));
    let mut one = serde_json::Map::new();
    if let (true, [only]) = (style.alternatives, finals)
        && !only.alternatives.is_empty()
    {
        let list: Vec<Value> = only
            .alternatives
            .iter()
            .map(|a| {
                let mut alt = serde_json::Map::new();
                alt.insert("confidence".into(), json!(round(a.confidence as f64)));
                if style.words {
                    alt.insert("result".into(), Value::Array(word_values(&a.words)));
                }
                alt.insert("text".into(), Value::String(a.text.clone()));
                Value::Object(alt)
            })
            .collect();
        return json!({ "alternatives": list }).to_string();
    }
    if style.alternatives {
        let confidence = if words.is_empty() {
            0.0
        } else {
            finals
                .iter()
                .flat_map(|f| &f.words)
                .map(|w| w.3 as f64)
                .sum::<f64>()
                / words.len() as f64
        };
        one.insert("confidence".into(), json!(round(confidence)));
        if style.words {
            one.insert("result".into(), Value::Array(words));
        }
        one.insert("text".into(), Value::String(text));
        return json!({ "alternatives": [Value::Object(one)] }).to_string();
    }
    if style.words && !words.is_empty() {
        one.insert("result".into(), Value::Array(words));
    }
    one.insert("text".into(), Value::String(text));
    Value::Object(one).to_string()
}

fn word_values<'a>(words: impl IntoIterator<Item = &'a (String, f64, f64, f32)>) -> Vec<Value> {
    words
        .into_iter()
        .map(|(w, start, end, conf)| {
            json!({ "conf": round(*conf as f64), "end": round(*end), "start": round(*start), "word": w })
        })
        .collect()
}

/// `{"error": "..."}`.
pub fn error_json(message: &str) -> String {
    json!({ "error": message }).to_string()
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vosk_messages_parse() {
        assert_eq!(parse_text(r#"{"eof" : 1}"#), Ok(ClientText::Eof));
        assert_eq!(parse_text(r#"{"reset": 1}"#), Ok(ClientText::Reset));
        let c = parse_text(
            r#"{ "config" : { "sample_rate" : 8000.0, "words": 1, "max_alternatives": 0,
                "phrase_list": ["one two", "[unk]"], "model": "ignored" } }"#,
        )
        .unwrap();
        let ClientText::Config(c) = c else { panic!() };
        assert_eq!(c.sample_rate, Some(8000));
        assert_eq!(c.words, Some(true));
        assert_eq!(c.max_alternatives, Some(0));
        assert_eq!(
            phrase_words(c.phrase_list.as_deref().unwrap()),
            vec!["one", "two"]
        );
        // As strings, which Vosk's server reads with float() and int().
        let c = parse_text(r#"{"config": {"sample_rate": "16000", "max_alternatives": " 3"}}"#);
        let Ok(ClientText::Config(c)) = c else {
            panic!("{c:?}")
        };
        assert_eq!((c.sample_rate, c.max_alternatives), (Some(16000), Some(3)));
    }

    #[test]
    fn bad_messages_are_errors() {
        for bad in [
            "",
            "{",
            "[1,2]",
            "\"eof\"",
            r#"{"hello": 1}"#,
            r#"{"config": {"sample_rate": -5}}"#,
            r#"{"config": {"sample_rate": "fast"}}"#,
            r#"{"config": {"sample_rate": [16000]}}"#,
            r#"{"config": {"max_alternatives": "many"}}"#,
            r#"{"config": {"sample_rate": 1e300}}"#,
            r#"{"config": {"max_alternatives": 1000}}"#,
            r#"{"config": 7}"#,
            r#"{"eof": 0}"#,
        ] {
            assert!(parse_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pcm_with_odd_lengths_is_joined() {
        let samples: Vec<i16> = vec![0, 1, -1, 32767, -32768, 1234];
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let (mut carry, mut out, mut all) = (None, Vec::new(), Vec::new());
        for piece in [&bytes[..3], &bytes[3..4], &bytes[4..9], &bytes[9..]] {
            decode_pcm16(piece, &mut carry, &mut out);
            all.extend_from_slice(&out);
        }
        let want: Vec<f32> = samples.iter().map(|&s| s as f32 / 32768.0).collect();
        assert_eq!(all, want);
        assert_eq!(carry, None);
    }

    #[test]
    fn results_look_like_vosk() {
        let f = FinalResult {
            text: "one two".into(),
            words: vec![("one".into(), 0.5, 0.8, 1.0), ("two".into(), 0.9, 1.2, 0.5)],
            alternatives: Vec::new(),
        };
        let style = ResultStyle {
            words: true,
            alternatives: false,
        };
        let v: Value = serde_json::from_str(&result_json(std::slice::from_ref(&f), style)).unwrap();
        assert_eq!(v["text"], "one two");
        assert_eq!(v["result"][1]["word"], "two");
        assert_eq!(v["result"][0]["start"], 0.5);
        assert_eq!(result_json(&[], style), r#"{"text":""}"#);
        let plain = result_json(std::slice::from_ref(&f), ResultStyle::default());
        assert_eq!(plain, r#"{"text":"one two"}"#);
        let alt: Value = serde_json::from_str(&result_json(
            &[f],
            ResultStyle {
                words: false,
                alternatives: true,
            },
        ))
        .unwrap();
        assert_eq!(alt["alternatives"][0]["text"], "one two");
        assert_eq!(alt["alternatives"][0]["confidence"], 0.75);
        assert_eq!(partial_json("a \"b\""), r#"{"partial":"a \"b\""}"#);
    }

    #[test]
    fn n_best_results_list_each_alternative() {
        let alt = |text: &str, confidence| AlternativeResult {
            text: text.into(),
            confidence,
            words: vec![(text.into(), 0.25, 0.5, 0.5)],
        };
        let f = FinalResult {
            text: "to".into(),
            words: vec![("to".into(), 0.25, 0.5, 0.5)],
            alternatives: vec![alt("to", 0.75), alt("two", 0.25)],
        };
        let style = ResultStyle {
            words: true,
            alternatives: true,
        };
        let v: Value = serde_json::from_str(&result_json(&[f], style)).unwrap();
        let list = v["alternatives"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["text"], "to");
        assert_eq!(list[1]["text"], "two");
        assert_eq!(list[1]["confidence"], 0.25);
        assert_eq!(list[1]["result"][0]["word"], "two");
    }
}
