//! A small Freeverb-style reverb (mono in, stereo out) for the built-in synthesizer:
//! four damped comb filters and two all-pass filters per side.

/// Comb and all-pass lengths at 44.1 kHz (Freeverb's tuning); the right side is
/// offset by [`STEREO_SPREAD`] samples.
const COMBS: [usize; 4] = [1116, 1188, 1277, 1356];
const ALLPASSES: [usize; 2] = [556, 441];
const STEREO_SPREAD: usize = 23;
const FEEDBACK: f32 = 0.82;
const DAMP: f32 = 0.25;
const ALLPASS_FEEDBACK: f32 = 0.5;
/// Input gain (Freeverb's fixed gain).
const INPUT_GAIN: f32 = 0.03;

struct Comb {
    buf: Vec<f32>,
    pos: usize,
    store: f32,
}

impl Comb {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; len.max(1)],
            pos: 0,
            store: 0.0,
        }
    }

    #[inline]
    fn process(&mut self, input: f32) -> f32 {
        let out = self.buf[self.pos];
        self.store = out * (1.0 - DAMP) + self.store * DAMP;
        self.buf[self.pos] = input + self.store * FEEDBACK;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        out
    }
}

struct Allpass {
    buf: Vec<f32>,
    pos: usize,
}

impl Allpass {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; len.max(1)],
            pos: 0,
        }
    }

    #[inline]
    fn process(&mut self, input: f32) -> f32 {
        let delayed = self.buf[self.pos];
        self.buf[self.pos] = input + delayed * ALLPASS_FEEDBACK;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        delayed - input
    }
}

struct Side {
    combs: Vec<Comb>,
    allpasses: Vec<Allpass>,
}

impl Side {
    fn new(rate: u32, spread: usize) -> Self {
        let scale = |n: usize| (n + spread) * rate as usize / 44_100;
        Self {
            combs: COMBS.iter().map(|&n| Comb::new(scale(n))).collect(),
            allpasses: ALLPASSES.iter().map(|&n| Allpass::new(scale(n))).collect(),
        }
    }

    #[inline]
    fn process(&mut self, input: f32) -> f32 {
        let mut out = 0.0;
        for c in &mut self.combs {
            out += c.process(input);
        }
        for a in &mut self.allpasses {
            out = a.process(out);
        }
        out
    }
}

/// The reverb's state.
pub(crate) struct Reverb {
    left: Side,
    right: Side,
}

impl Reverb {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            left: Side::new(rate, 0),
            right: Side::new(rate, STEREO_SPREAD),
        }
    }

    /// Adds the reverb of `input` to `left` and `right`.
    pub(crate) fn process_add(&mut self, input: &[f32], left: &mut [f32], right: &mut [f32]) {
        for ((x, l), r) in input.iter().zip(left.iter_mut()).zip(right.iter_mut()) {
            let x = x * INPUT_GAIN;
            *l += self.left.process(x);
            *r += self.right.process(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impulse_rings_and_decays() {
        let mut reverb = Reverb::new(44_100);
        let n = 44_100 * 4;
        let mut input = vec![0.0f32; n];
        input[0] = 1.0;
        let (mut l, mut r) = (vec![0.0f32; n], vec![0.0f32; n]);
        reverb.process_add(&input, &mut l, &mut r);
        let energy = |s: &[f32]| s.iter().map(|v| v * v).sum::<f32>();
        let early = energy(&l[..44_100]) + energy(&r[..44_100]);
        let late = energy(&l[3 * 44_100..]) + energy(&r[3 * 44_100..]);
        assert!(early > 1e-4, "the reverb rings: {early}");
        assert!(late < early * 1e-3, "and decays: {late} vs {early}");
        assert_ne!(l, r, "the two sides differ");
    }
}
