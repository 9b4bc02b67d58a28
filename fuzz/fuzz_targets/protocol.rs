//! The speech protocol's parsing: any text message, and any binary message as PCM, must give
//! a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprise::daemon::protocol::{
    AlternativeResult, ClientText, FinalResult, ResultStyle, decode_pcm16, parse_text,
    phrase_words, result_json,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(ClientText::Config(config)) = parse_text(text)
    {
        let words = phrase_words(config.phrase_list.as_deref().unwrap_or(&[]));
        let timed: Vec<_> = words.iter().map(|w| (w.clone(), 0.0, 1.0, 0.5)).collect();
        // As many alternatives as asked for, each one of the phrases.
        let k = config.max_alternatives.unwrap_or(0) as usize;
        let result = FinalResult {
            text: words.join(" "),
            words: timed.clone(),
            alternatives: words
                .iter()
                .zip(&timed)
                .take(k)
                .map(|(w, t)| AlternativeResult {
                    text: w.clone(),
                    confidence: 1.0 / k as f32,
                    words: vec![t.clone()],
                })
                .collect(),
        };
        let style = ResultStyle {
            words: config.words.unwrap_or(true),
            alternatives: config.max_alternatives.unwrap_or(0) > 0,
        };
        let json = result_json(&[result], style);
        assert!(serde_json_is_object(&json));
    }
    // Binary messages of any length, split anywhere, decode to the same samples.
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let (mut carry, mut out, mut all) = (None, Vec::new(), Vec::new());
    for part in [&data[..split], &data[split..]] {
        decode_pcm16(part, &mut carry, &mut out);
        all.extend_from_slice(&out);
    }
    assert_eq!(all.len(), data.len() / 2);
    assert!(all.iter().all(|s| (-1.0..1.0).contains(s)));
});

fn serde_json_is_object(text: &str) -> bool {
    text.starts_with('{') && text.ends_with('}')
}
