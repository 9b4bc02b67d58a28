//! Transcripts of files and their formats: plain text, JSON lines, SRT and WebVTT.

use serde::Serialize;

use super::recognizer::Utterance;

/// A word with its times (seconds) and confidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimedWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub conf: f32,
}

/// One utterance of a transcript.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: Vec<TimedWord>,
    /// The n best texts, best first, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<AlternativeText>,
}

/// One of an utterance's n best texts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlternativeText {
    pub text: String,
    /// Its share of the probability of the n best.
    pub confidence: f32,
}

impl From<&Utterance> for Segment {
    fn from(u: &Utterance) -> Segment {
        Segment {
            start: u.start,
            end: u.end,
            text: u.text().to_owned(),
            words: u
                .words()
                .map(|(w, t)| TimedWord {
                    word: w.to_owned(),
                    start: round_ms(t.start),
                    end: round_ms(t.end),
                    conf: (t.conf * 1000.0).round() / 1000.0,
                })
                .collect(),
            alternatives: u
                .alternatives()
                .iter()
                .map(|a| AlternativeText {
                    text: a.text().to_owned(),
                    confidence: (a.confidence * 1000.0).round() / 1000.0,
                })
                .collect(),
        }
    }
}

fn round_ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// The transcript of one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    /// The file as the user named it.
    pub file: String,
    /// Its utterances in order.
    pub segments: Vec<Segment>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    file: &'a str,
    text: String,
    words: Vec<&'a TimedWord>,
    segments: &'a [Segment],
}

/// How a transcript is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The text, one line per file.
    Text,
    /// One JSON object per file: file, text, words, segments.
    Jsonl,
    /// SubRip subtitles, one cue per utterance.
    Srt,
    /// WebVTT subtitles, one cue per utterance.
    Vtt,
}

impl Transcript {
    /// All utterances' text, separated by spaces.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .filter(|t| !t.is_empty())
            .collect();
        parts.join(" ")
    }

    /// The transcript in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => format!("{}\n", self.text()),
            Format::Jsonl => self.jsonl(),
            Format::Srt => self.cues(false),
            Format::Vtt => format!("WEBVTT\n\n{}", self.cues(true)),
        }
    }

    fn jsonl(&self) -> String {
        let line = JsonLine {
            file: &self.file,
            text: self.text(),
            words: self.segments.iter().flat_map(|s| &s.words).collect(),
            segments: &self.segments,
        };
        // Serialising plain strings and finite numbers cannot fail.
        let mut s = serde_json::to_string(&line).unwrap_or_default();
        s.push('\n');
        s
    }

    fn cues(&self, vtt: bool) -> String {
        let mut out = String::new();
        for (i, s) in self.segments.iter().enumerate() {
            let end = if s.end > s.start {
                s.end
            } else {
                s.start + 0.5
            };
            if !vtt {
                out.push_str(&format!("{}\n", i + 1));
            }
            out.push_str(&format!(
                "{} --> {}\n{}\n\n",
                timestamp(s.start, vtt),
                timestamp(end, vtt),
                s.text
            ));
        }
        out
    }
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT).
pub fn timestamp(seconds: f64, vtt: bool) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{}{ms:03}", if vtt { '.' } else { ',' })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        let w = |word: &str, start, end| TimedWord {
            word: word.into(),
            start,
            end,
            conf: 0.9,
        };
        Transcript {
            file: "a \"b\".wav".into(),
            segments: vec![
                Segment {
                    start: 0.3,
                    end: 1.25,
                    text: "hello world".into(),
                    words: vec![w("hello", 0.3, 0.7), w("world", 0.8, 1.25)],
                    alternatives: Vec::new(),
                },
                Segment {
                    start: 3661.5,
                    end: 3662.0,
                    text: "again".into(),
                    words: vec![w("again", 3661.5, 3662.0)],
                    alternatives: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn formats() {
        let t = sample();
        assert_eq!(t.render(Format::Text), "hello world again\n");
        let srt = t.render(Format::Srt);
        assert!(
            srt.starts_with("1\n00:00:00,300 --> 00:00:01,250\nhello world\n\n2\n01:01:01,500")
        );
        let vtt = t.render(Format::Vtt);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.300 --> 00:00:01.250\nhello world\n"));
        let json: serde_json::Value = serde_json::from_str(t.render(Format::Jsonl).trim()).unwrap();
        assert_eq!(json["file"], "a \"b\".wav");
        assert_eq!(json["text"], "hello world again");
        assert_eq!(json["words"].as_array().unwrap().len(), 3);
        assert_eq!(json["words"][1]["word"], "world");
        assert_eq!(json["segments"][1]["start"], 3661.5);
    }
}
