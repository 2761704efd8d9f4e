//! Known test signals (tones) and their analysis (RMS, Goertzel), for demos and tests.

use crate::SAMPLE_RATE;
use std::f32::consts::TAU;

/// A sine tone generator that keeps its phase across frames.
#[derive(Debug, Clone)]
pub struct Tone {
    step: f32,
    phase: f32,
    amplitude: f32,
}

impl Tone {
    /// A tone at `hz` with peak `amplitude` (0 to 1).
    pub fn new(hz: f32, amplitude: f32) -> Self {
        Self {
            step: TAU * hz / SAMPLE_RATE as f32,
            phase: 0.0,
            amplitude,
        }
    }

    /// Changes the frequency without a phase jump.
    pub fn set_frequency(&mut self, hz: f32) {
        self.step = TAU * hz / SAMPLE_RATE as f32;
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [f32]) {
        for s in out {
            *s = self.amplitude * self.phase.sin();
            self.phase = (self.phase + self.step) % TAU;
        }
    }
}

/// Root mean square of `samples` (0 for an empty slice).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Power of the component at `hz` in `samples` (Goertzel), normalised so that a sine of
/// amplitude `a` gives about `a² / 4` whatever the length.
pub fn goertzel_power(samples: &[f32], hz: f32) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (TAU * hz / SAMPLE_RATE as f32).cos();
    let (mut s1, mut s2) = (0f64, 0f64);
    for &x in samples {
        let s0 = x as f64 + coeff as f64 * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff as f64 * s1 * s2;
    let n = samples.len() as f64;
    (power / (n * n)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_and_not_its_neighbour() {
        let mut buf = vec![0f32; 48_000];
        Tone::new(440.0, 0.5).fill(&mut buf);
        let on = goertzel_power(&buf, 440.0);
        let off = goertzel_power(&buf, 1000.0);
        assert!((on - 0.0625).abs() < 0.01, "on {on}");
        assert!(off < on / 1000.0, "off {off}");
        assert!((rms(&buf) - 0.5 / 2f32.sqrt()).abs() < 0.01);
    }
}
