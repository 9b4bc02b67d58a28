//! The one live loop: blocks from a microphone (or any [`BlockSource`]) through a
//! [`Recognizer`] to a consumer of its events. `reprise listen` and the daemon's live
//! microphone both run it, on a thread of their own.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{Event, Recognizer, SpeechError};
use crate::audio::{AudioError, BlockSource};

/// Why the live loop stopped before its source ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The device failed (or went silent past its stall timeout).
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The recognizer failed.
    #[error(transparent)]
    Speech(#[from] SpeechError),
}

/// Feeds `source` to `rec` until the source ends, `quit` is raised, `limit_seconds` of audio
/// have been heard, or `on_event` answers false. `on_event` gets each partial and final with
/// the stream time (seconds) at the start of the block that produced it. At the end, also
/// after a failure, the utterance in progress is flushed as a final, so nothing heard is
/// lost; a failure is then returned.
pub fn transcribe_live(
    source: &mut dyn BlockSource,
    rec: &mut Recognizer,
    quit: &AtomicBool,
    limit_seconds: Option<f64>,
    on_event: &mut dyn FnMut(Event<'_>, f64) -> bool,
) -> Result<(), LiveError> {
    let mut open = true;
    let result = loop {
        let block = match source.next_block() {
            Ok(Some(block)) => block,
            Ok(None) => break Ok(()),
            Err(e) => break Err(LiveError::from(e)),
        };
        let now = rec.seconds();
        if let Err(e) = rec.accept(block, &mut |e| open &= on_event(e, now)) {
            break Err(e.into());
        }
        if !open
            || quit.load(Ordering::Relaxed)
            || limit_seconds.is_some_and(|l| rec.seconds() >= l)
        {
            break Ok(());
        }
    };
    let now = rec.seconds();
    rec.flush(&mut |e| {
        on_event(e, now);
    });
    result
}
