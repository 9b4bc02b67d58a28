//! Reverb and chorus on the send buses of all parts together.
//!
//! The reverb is Freeverb with the tuning rustysynth uses (room 0.5, damping 0.5,
//! full wet, full width, input gain 0.015), so SoundFont renders sound as rustysynth's
//! own effects would make them; the chorus is rustysynth's (2 ms delay, 1.9 ms depth,
//! 0.4 Hz). Running them once on the summed buses, rather than in each part, keeps
//! their cost from growing with the thread count. The eight comb filters of a side
//! are stepped together so their feedback chains overlap in the processor.

/// Comb and all-pass lengths at 44.1 kHz (Freeverb); the right side adds
/// [`STEREO_SPREAD`].
const COMBS: [usize; 8] = [1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617];
const ALLPASSES: [usize; 4] = [556, 441, 341, 225];
const STEREO_SPREAD: usize = 23;
const FEEDBACK: f32 = 0.84;
const DAMP: f32 = 0.2;
const ALLPASS_FEEDBACK: f32 = 0.5;
/// Reverb input gain (Freeverb's fixed gain).
pub(crate) const REVERB_INPUT_GAIN: f32 = 0.015;

/// A delay line read and written at one position.
struct Delay {
    buf: Vec<f32>,
    pos: usize,
}

impl Delay {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; len.max(1)],
            pos: 0,
        }
    }

    #[inline(always)]
    fn read(&self) -> f32 {
        self.buf[self.pos]
    }

    #[inline(always)]
    fn write_advance(&mut self, v: f32) {
        self.buf[self.pos] = v;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
    }
}

struct Side {
    combs: [Delay; 8],
    stores: [f32; 8],
    allpasses: [Delay; 4],
}

impl Side {
    fn new(rate: u32, spread: usize) -> Self {
        let scale = |n: usize| ((n + spread) as f64 * rate as f64 / 44_100.0).round() as usize;
        Self {
            combs: COMBS.map(|n| Delay::new(scale(n))),
            stores: [0.0; 8],
            allpasses: ALLPASSES.map(|n| Delay::new(scale(n))),
        }
    }

    #[inline(always)]
    fn process(&mut self, input: f32) -> f32 {
        let mut out = 0.0;
        for (comb, store) in self.combs.iter_mut().zip(self.stores.iter_mut()) {
            let y = comb.read();
            *store = y * (1.0 - DAMP) + *store * DAMP;
            comb.write_advance(input + *store * FEEDBACK);
            out += y;
        }
        for ap in &mut self.allpasses {
            let delayed = ap.read();
            ap.write_advance(out + delayed * ALLPASS_FEEDBACK);
            out = delayed - out;
        }
        out
    }
}

/// Freeverb: mono in, stereo out.
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

    /// Adds the reverb of `input` (before the input gain) to `left` and `right`.
    pub(crate) fn process_add(&mut self, input: &[f32], left: &mut [f32], right: &mut [f32]) {
        for ((x, l), r) in input.iter().zip(left.iter_mut()).zip(right.iter_mut()) {
            let x = x * REVERB_INPUT_GAIN;
            *l += self.left.process(x);
            *r += self.right.process(x);
        }
    }
}

/// A stereo chorus: each side reads its delay line at a sinusoidally moving delay
/// (the right side a quarter period behind).
pub(crate) struct Chorus {
    left: Vec<f32>,
    right: Vec<f32>,
    delays: Vec<f32>,
    pos: usize,
    table_left: usize,
    table_right: usize,
}

impl Chorus {
    pub(crate) fn new(rate: u32) -> Self {
        let (delay, depth, frequency) = (0.002f64, 0.0019f64, 0.4f64);
        let rate = rate as f64;
        let len = (rate * (delay + depth)) as usize + 2;
        let table_len = (rate / frequency).round() as usize;
        let delays = (0..table_len)
            .map(|t| {
                let phase = std::f64::consts::TAU * t as f64 / table_len as f64;
                (rate * (delay + depth * phase.sin())) as f32
            })
            .collect();
        Self {
            left: vec![0.0; len],
            right: vec![0.0; len],
            delays,
            pos: 0,
            table_left: 0,
            table_right: table_len / 4,
        }
    }

    #[inline(always)]
    fn tap(buf: &[f32], pos: usize, delay: f32) -> f32 {
        let len = buf.len();
        let mut p = pos as f32 - delay;
        if p < 0.0 {
            p += len as f32;
        }
        let i1 = (p as usize).min(len - 1);
        let i2 = if i1 + 1 == len { 0 } else { i1 + 1 };
        let a = p - i1 as f32;
        buf[i1] + a * (buf[i2] - buf[i1])
    }

    /// Adds the chorus of the stereo input to `left` and `right`.
    pub(crate) fn process_add(
        &mut self,
        in_left: &[f32],
        in_right: &[f32],
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let n = left.len();
        for i in 0..n {
            left[i] += Self::tap(&self.left, self.pos, self.delays[self.table_left]);
            right[i] += Self::tap(&self.right, self.pos, self.delays[self.table_right]);
            self.table_left += 1;
            if self.table_left == self.delays.len() {
                self.table_left = 0;
            }
            self.table_right += 1;
            if self.table_right == self.delays.len() {
                self.table_right = 0;
            }
            self.left[self.pos] = in_left[i];
            self.right[self.pos] = in_right[i];
            self.pos += 1;
            if self.pos == self.left.len() {
                self.pos = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverb_impulse_rings_and_decays() {
        let mut reverb = Reverb::new(44_100);
        let n = 44_100 * 6;
        let mut input = vec![0.0f32; n];
        input[0] = 1.0;
        let (mut l, mut r) = (vec![0.0f32; n], vec![0.0f32; n]);
        reverb.process_add(&input, &mut l, &mut r);
        let energy = |s: &[f32]| s.iter().map(|v| v * v).sum::<f32>();
        let early = energy(&l[..44_100]) + energy(&r[..44_100]);
        let late = energy(&l[5 * 44_100..]) + energy(&r[5 * 44_100..]);
        assert!(early > 1e-6, "the reverb rings: {early}");
        assert!(late < early * 1e-3, "and decays: {late} vs {early}");
        assert_ne!(l, r, "the two sides differ");
        assert!(
            l[..1000].iter().all(|&v| v == 0.0),
            "first echo after the shortest comb"
        );
    }

    #[test]
    fn chorus_delays_by_about_its_delay() {
        let rate = 44_100;
        let mut chorus = Chorus::new(rate);
        let mut input = vec![0.0f32; 2000];
        input[0] = 1.0;
        let (mut l, mut r) = (vec![0.0f32; 2000], vec![0.0f32; 2000]);
        chorus.process_add(&input, &input, &mut l, &mut r);
        let peak_at = |s: &[f32]| {
            (0..s.len())
                .max_by(|&a, &b| s[a].abs().total_cmp(&s[b].abs()))
                .unwrap_or(0)
        };
        // Left starts at the centre delay (2 ms = 88 samples), right a quarter period on.
        assert!((peak_at(&l) as i64 - 88).abs() <= 2, "{}", peak_at(&l));
        assert!(peak_at(&r) > 88, "{}", peak_at(&r));
    }
}
