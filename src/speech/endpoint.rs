//! Speech/silence detection and the end-of-utterance rules.
//!
//! A step counts as speech when its level is at least `min_level_db` and the acoustic model
//! does not put almost all its probability on the blank (`p(blank) < blank_threshold`): the
//! level rejects quiet noise, the blank probability rejects loud non-speech. An utterance ends
//! after `trailing_silence` seconds without speech, or when it reaches `max_utterance`
//! seconds; the caller can also end it explicitly (flush).

/// Endpoint settings.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointOptions {
    /// Steps quieter than this (dB full scale) are silence.
    pub min_level_db: f32,
    /// Steps whose blank probability is at least this are silence.
    pub blank_threshold: f32,
    /// Seconds of silence that end an utterance.
    pub trailing_silence: f32,
    /// Longest utterance in seconds.
    pub max_utterance: f32,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            min_level_db: -55.0,
            blank_threshold: 0.98,
            trailing_silence: 0.8,
            max_utterance: 20.0,
        }
    }
}

impl EndpointOptions {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.trailing_silence > 0.0 && self.max_utterance >= self.trailing_silence) {
            return Err(
                "trailing silence must be positive and at most the longest utterance".into(),
            );
        }
        if self.max_utterance.is_nan() || self.max_utterance > 3600.0 {
            return Err("the longest utterance must be at most an hour".into());
        }
        if !(self.blank_threshold > 0.0 && self.blank_threshold <= 1.0)
            || self.min_level_db.is_nan()
        {
            return Err("blank threshold must be in (0, 1] and the level a number".into());
        }
        Ok(())
    }
}

/// Why an utterance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Silence after speech.
    Silence,
    /// The utterance reached its maximum length.
    MaxLength,
    /// The caller flushed (end of a file, or stop).
    Flush,
}

/// The endpoint state of one stream.
#[derive(Clone, Debug)]
pub struct Endpointer {
    opts: EndpointOptions,
    silence_steps: u32,
    max_steps: u32,
    steps: u32,
    silent_run: u32,
    speech_steps: u32,
}

impl Endpointer {
    /// Rules for steps of `step_seconds`.
    pub fn new(opts: EndpointOptions, step_seconds: f64) -> Result<Endpointer, String> {
        opts.validate()?;
        if step_seconds.is_nan() || step_seconds <= 0.0 {
            return Err("step length must be positive".into());
        }
        Ok(Endpointer {
            silence_steps: ((opts.trailing_silence as f64 / step_seconds - 1e-6).ceil() as u32)
                .max(1),
            max_steps: ((opts.max_utterance as f64 / step_seconds - 1e-6).ceil() as u32).max(1),
            opts,
            steps: 0,
            silent_run: 0,
            speech_steps: 0,
        })
    }

    /// The longest utterance in steps.
    pub fn max_steps(&self) -> u32 {
        self.max_steps
    }

    /// Whether a step with this level and blank probability is speech.
    pub fn is_speech(&self, level_db: f32, blank_prob: f32) -> bool {
        level_db >= self.opts.min_level_db && blank_prob < self.opts.blank_threshold
    }

    /// Counts one step; returns why the utterance ends here, if it does.
    pub fn step(&mut self, level_db: f32, blank_prob: f32) -> Option<EndReason> {
        self.steps += 1;
        if self.is_speech(level_db, blank_prob) {
            self.silent_run = 0;
            self.speech_steps += 1;
        } else {
            self.silent_run += 1;
        }
        if self.steps >= self.max_steps {
            Some(EndReason::MaxLength)
        } else if self.silent_run >= self.silence_steps {
            Some(EndReason::Silence)
        } else {
            None
        }
    }

    /// Steps of speech in the current utterance.
    pub fn speech_steps(&self) -> u32 {
        self.speech_steps
    }

    /// Starts a new utterance.
    pub fn reset(&mut self) {
        self.steps = 0;
        self.silent_run = 0;
        self.speech_steps = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(trailing: f32, max: f32) -> Endpointer {
        let opts = EndpointOptions {
            trailing_silence: trailing,
            max_utterance: max,
            ..Default::default()
        };
        Endpointer::new(opts, 0.03).unwrap()
    }

    #[test]
    fn trailing_silence_ends_an_utterance() {
        let mut e = ep(0.3, 10.0);
        for _ in 0..20 {
            assert_eq!(e.step(-20.0, 0.5), None);
        }
        // Quiet steps and blank-certain loud steps both count as silence.
        let mut ended = None;
        for i in 0..10 {
            let (level, blank) = if i % 2 == 0 {
                (-80.0, 0.1)
            } else {
                (-20.0, 0.999)
            };
            if let Some(r) = e.step(level, blank) {
                ended = Some((i, r));
                break;
            }
        }
        assert_eq!(ended, Some((9, EndReason::Silence)));
        assert_eq!(e.speech_steps(), 20);
        e.reset();
        assert_eq!(e.speech_steps(), 0);
    }

    #[test]
    fn speech_resets_the_silence_run_and_length_is_capped() {
        let mut e = ep(0.3, 1.5);
        let mut n = 0;
        let reason = loop {
            n += 1;
            let speech = n % 5 != 0;
            if let Some(r) = e.step(if speech { -20.0 } else { -90.0 }, 0.2) {
                break r;
            }
        };
        assert_eq!(reason, EndReason::MaxLength);
        assert_eq!(n, 50);
    }

    #[test]
    fn bad_options_are_refused() {
        let bad = EndpointOptions {
            trailing_silence: 0.0,
            ..Default::default()
        };
        assert!(Endpointer::new(bad, 0.03).is_err());
        let bad = EndpointOptions {
            max_utterance: f32::NAN,
            ..Default::default()
        };
        assert!(Endpointer::new(bad, 0.03).is_err());
    }
}
