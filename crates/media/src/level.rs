//! Per-speaker audio level (dBFS) for the "who is speaking" indicator.

/// Measures the level of a stream of frames with a fast attack and a slow release, the way
/// speaking indicators need it: it lights at once and fades smoothly.
#[derive(Debug, Clone)]
pub struct LevelMeter {
    level_db: f32,
}

/// The floor of the meter, in dBFS: silence reads as this.
pub const FLOOR_DB: f32 = -90.0;
/// Level above which a speaker is shown as speaking, in dBFS.
pub const SPEAKING_DB: f32 = -45.0;
/// How fast the level falls per frame when the input gets quieter, in dB.
const RELEASE_DB_PER_FRAME: f32 = 1.5;

impl Default for LevelMeter {
    fn default() -> Self {
        Self { level_db: FLOOR_DB }
    }
}

impl LevelMeter {
    /// Feeds one frame and returns the smoothed level in dBFS.
    pub fn update(&mut self, frame: &[f32]) -> f32 {
        let instant = to_db(crate::signal::rms(frame));
        self.level_db = if instant >= self.level_db {
            instant
        } else {
            (self.level_db - RELEASE_DB_PER_FRAME).max(instant)
        };
        self.level_db
    }

    /// The current smoothed level in dBFS.
    pub fn level_db(&self) -> f32 {
        self.level_db
    }

    /// Whether the level is above the speaking threshold.
    pub fn is_speaking(&self) -> bool {
        self.level_db > SPEAKING_DB
    }
}

fn to_db(rms: f32) -> f32 {
    if rms <= 1e-9 {
        FLOOR_DB
    } else {
        (20.0 * rms.log10()).max(FLOOR_DB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_rises_at_once_and_falls_slowly() {
        let mut meter = LevelMeter::default();
        let loud = [0.5f32; 960];
        let silent = [0f32; 960];
        let up = meter.update(&loud);
        assert!((up - (-6.02)).abs() < 0.1, "{up}");
        assert!(meter.is_speaking());
        let down = meter.update(&silent);
        assert!((down - (up - RELEASE_DB_PER_FRAME)).abs() < 1e-3);
        for _ in 0..100 {
            meter.update(&silent);
        }
        assert_eq!(meter.level_db(), FLOOR_DB);
        assert!(!meter.is_speaking());
    }
}
