//! Streaming equals batch: the resampling block path gives the same output for
//! input in random chunk sizes as for one-shot processing.

use proptest::prelude::*;
use reprise::audio::resample::{BlockPipeline, BlockResampler, resample_all};

fn signal(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32 * 0.031).sin() + (i as f32 * 0.177).cos() * 0.3) * 0.5)
        .collect()
}

const RATES: [(u32, u32); 5] = [
    (48_000, 16_000),
    (44_100, 16_000),
    (16_000, 48_000),
    (22_050, 16_000),
    (16_000, 16_000),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn chunked_resampling_equals_one_shot(
        rates in 0usize..RATES.len(),
        len in 0usize..20_000,
        chunks in prop::collection::vec(1usize..3000, 1..40),
    ) {
        let (from, to) = RATES[rates];
        let x = signal(len);
        let whole = resample_all(&x, from, to).unwrap();

        let mut resampler = BlockResampler::new(from, to).unwrap();
        let mut streamed = Vec::new();
        let mut rest = &x[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[i % chunks.len()].min(rest.len());
            resampler.process(&rest[..n], &mut |s| streamed.extend_from_slice(s));
            rest = &rest[n..];
            i += 1;
        }
        resampler.finish(&mut |s| streamed.extend_from_slice(s));
        prop_assert_eq!(&streamed, &whole);

        // Cut into fixed blocks, the same samples come out in blocks of the promised size.
        let mut pipeline = BlockPipeline::new(from, to, 160).unwrap();
        let mut blocks: Vec<Vec<f32>> = Vec::new();
        let mut rest = &x[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = chunks[(i + 7) % chunks.len()].min(rest.len());
            pipeline.push(&rest[..n], &mut |b| blocks.push(b.to_vec()));
            rest = &rest[n..];
            i += 1;
        }
        pipeline.finish(&mut |b| blocks.push(b.to_vec()));
        if let Some((_last, full)) = blocks.split_last() {
            prop_assert!(full.iter().all(|b| b.len() == 160));
        }
        prop_assert_eq!(blocks.concat(), whole);
    }
}
