//! The result of a load test: who got in, how fast audio started, how late and how complete
//! it was, and how that went over time.

use crate::account::Outcome;
use crate::worker::{LATE_BUCKET_US, LATE_BUCKETS, Tick};
use serde::Serialize;
use std::collections::BTreeMap;

/// One second of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    /// Seconds since the start.
    pub t: u64,
    /// Listeners receiving audio.
    pub connected: u64,
    /// Joins in this second.
    pub joins: u64,
    /// Frames received in this second, all listeners together.
    pub frames: u64,
    /// Share of this second's frames that arrived within the allowance of the earliest
    /// delivery of the same frame (1 when no frame arrived).
    pub on_time: f64,
    /// 99th percentile of this second's lateness, milliseconds (to the 50 ms bucket).
    pub late_p99_ms: f64,
}

/// On-time share and 99th-percentile lateness (ms) of frames counted by lateness bucket. A
/// bucket counts as on time only if all of it is within the allowance.
pub fn lateness(late: &[u64; LATE_BUCKETS], allowance_ms: f64) -> (f64, f64) {
    let width_ms = LATE_BUCKET_US as f64 / 1000.0;
    let total: u64 = late.iter().sum();
    if total == 0 {
        return (1.0, 0.0);
    }
    let on_time: u64 = late
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i + 1) as f64 * width_ms <= allowance_ms)
        .map(|(_, n)| n)
        .sum();
    let mut seen = 0;
    let mut p99 = LATE_BUCKETS as f64 * width_ms;
    for (i, n) in late.iter().enumerate() {
        seen += n;
        if seen as f64 >= 0.99 * total as f64 {
            p99 = (i + 1) as f64 * width_ms;
            break;
        }
    }
    (on_time as f64 / total as f64, p99)
}

/// Quantiles of a measure, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    fn of_us(values: impl Iterator<Item = i64>) -> Self {
        Self::of(values.map(|us| us as f64 / 1000.0).collect())
    }

    fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Self {
            p50: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Listeners planned.
    pub listeners: usize,
    /// Listeners that received audio.
    pub admitted: usize,
    /// Failures, by reason.
    pub failures: BTreeMap<String, usize>,
    /// Share of all planned listeners that got every frame within the allowance.
    pub on_time_share: f64,
    /// The allowance: lateness within which a frame is on time, milliseconds (1 s plus the
    /// server's cadence, by default).
    pub allowance_ms: f64,
    /// The largest fan-out cadence the server reported during the run, milliseconds.
    pub cadence_ms: f64,
    /// Time to a join ticket (WebSocket listeners ask for one first; zero otherwise).
    pub ticket_ms: Spread,
    /// Time to first audio (the ticket included).
    pub first_audio_ms: Spread,
    /// Each listener's worst lateness against the earliest delivery of the same frame.
    pub worst_late_ms: Spread,
    /// Frames received, all listeners together.
    pub frames: u64,
    /// Frames missed, all listeners together.
    pub missed: u64,
    /// Pauses of more than a second.
    pub stalls: u64,
    /// "Come back later" answers (503 with Retry-After) followed, all listeners together.
    pub retries: u64,
    /// Listeners that got in after being told to come back later at least once.
    pub admitted_after_retry: usize,
    /// Moves to another node after audio (a node gone or sending listeners elsewhere).
    pub moves: u64,
    /// Listeners that moved at least once.
    pub moved: usize,
    /// Each listener's longest time between two frames: the gap in its audio.
    pub longest_gap_ms: Spread,
    /// Seconds from the start (a crowd's scheduled instant, the run's start otherwise) until
    /// 99 % of the planned listeners had audio; `None` if they never did.
    pub admitted_99_s: Option<f64>,
    /// One point a second.
    pub timeline: Vec<Point>,
}

impl Report {
    /// Builds the report from every listener's outcome and the summed ticks of the run.
    pub fn new(listeners: usize, outcomes: &[Outcome], ticks: &[Tick], allowance_ms: f64) -> Self {
        let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_none()).collect();
        let base = ok.iter().map(|o| o.min_offset_us).min().unwrap_or(0);
        let allowance_us = (allowance_ms * 1000.0) as i64;
        let mut failures = BTreeMap::new();
        for o in outcomes {
            if let Some(f) = &o.failure {
                *failures.entry(short(f)).or_insert(0) += 1;
            }
        }
        let on_time = ok.iter().filter(|o| o.on_time(base, allowance_us)).count();
        let mut timeline = Vec::with_capacity(ticks.len());
        for (t, tick) in ticks.iter().enumerate() {
            let prev = t.checked_sub(1).map(|p| ticks[p]).unwrap_or_default();
            let late: [u64; LATE_BUCKETS] =
                std::array::from_fn(|i| tick.late[i].saturating_sub(prev.late[i]));
            let (on_time, late_p99_ms) = lateness(&late, allowance_ms);
            timeline.push(Point {
                t: t as u64,
                connected: tick.connected,
                joins: tick.joined - prev.joined,
                frames: tick.frames - prev.frames,
                on_time,
                late_p99_ms,
            });
        }
        Self {
            listeners,
            admitted: ok.len(),
            failures,
            on_time_share: on_time as f64 / listeners.max(1) as f64,
            allowance_ms,
            cadence_ms: 0.0,
            ticket_ms: Spread::of_us(ok.iter().filter_map(|o| o.ticket_us)),
            first_audio_ms: Spread::of_us(ok.iter().filter_map(|o| o.first_audio_us)),
            worst_late_ms: Spread::of(
                ok.iter()
                    .map(|o| o.worst_late_us(base) as f64 / 1000.0)
                    .collect(),
            ),
            frames: outcomes.iter().map(|o| o.frames).sum(),
            missed: outcomes.iter().map(|o| o.missed).sum(),
            stalls: outcomes.iter().map(|o| o.stalls).sum(),
            retries: outcomes.iter().map(|o| o.retries).sum(),
            admitted_after_retry: ok.iter().filter(|o| o.retries > 0).count(),
            moves: outcomes.iter().map(|o| o.moves).sum(),
            moved: outcomes.iter().filter(|o| o.moves > 0).count(),
            longest_gap_ms: Spread::of_us(ok.iter().map(|o| o.longest_gap_us)),
            admitted_99_s: None,
            timeline,
        }
    }

    /// Seconds from `start_unix_ms` until `share` of `listeners` had their first audio.
    pub fn time_to_share(
        outcomes: &[Outcome],
        listeners: usize,
        share: f64,
        start_unix_ms: i64,
    ) -> Option<f64> {
        let needed = ((listeners as f64 * share).ceil() as usize).max(1);
        let mut heard: Vec<i64> = outcomes
            .iter()
            .filter(|o| o.failure.is_none())
            .filter_map(|o| o.first_audio_at_us)
            .collect();
        if heard.len() < needed {
            return None;
        }
        heard.sort_unstable();
        Some((heard[needed - 1] - start_unix_ms * 1000).max(0) as f64 / 1e6)
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, k: &str, v: String| s.push_str(&format!("  {k:<28} {v}\n"));
        row(
            &mut s,
            "listeners",
            format!(
                "{} planned, {} received audio",
                self.listeners, self.admitted
            ),
        );
        row(
            &mut s,
            "on time (all frames)",
            format!(
                "{:.3}% within {:.0} ms (server cadence {:.0} ms)",
                100.0 * self.on_time_share,
                self.allowance_ms,
                self.cadence_ms
            ),
        );
        let spread =
            |x: &Spread| format!("p50 {:.1}  p99 {:.1}  max {:.1} ms", x.p50, x.p99, x.max);
        if self.ticket_ms.max > 0.0 {
            row(&mut s, "time to ticket", spread(&self.ticket_ms));
        }
        row(&mut s, "time to first audio", spread(&self.first_audio_ms));
        row(
            &mut s,
            "worst lateness per listener",
            spread(&self.worst_late_ms),
        );
        row(
            &mut s,
            "frames",
            format!(
                "{} received, {} missed, {} stalls",
                self.frames, self.missed, self.stalls
            ),
        );
        if let Some(secs) = self.admitted_99_s {
            row(&mut s, "99 % had audio after", format!("{secs:.2} s"));
        }
        row(
            &mut s,
            "longest gap per listener",
            spread(&self.longest_gap_ms),
        );
        if self.moves > 0 {
            row(
                &mut s,
                "moved to another node",
                format!("{} times; {} listeners", self.moves, self.moved),
            );
        }
        if self.retries > 0 {
            row(
                &mut s,
                "told to come back later",
                format!(
                    "{} times; {} listeners got in after it",
                    self.retries, self.admitted_after_retry
                ),
            );
        }
        for (reason, n) in &self.failures {
            row(&mut s, "failed", format!("{n} × {reason}"));
        }
        s
    }
}

/// Failure reasons grouped: the first line, without the variable parts of addresses.
fn short(reason: &str) -> String {
    let first = reason.lines().next().unwrap_or(reason);
    first.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_on_time_listeners_against_the_earliest_delivery() {
        let good = Outcome {
            frames: 100,
            min_offset_us: 1_000,
            max_offset_us: 5_000,
            first_audio_us: Some(10_000),
            ..Outcome::default()
        };
        let late = Outcome {
            max_offset_us: 2_000_000,
            ..good.clone()
        };
        let failed = Outcome {
            failure: Some("HTTP 503".into()),
            ..Outcome::default()
        };
        let r = Report::new(3, &[good, late, failed], &[], 1000.0);
        assert_eq!(r.admitted, 2);
        assert!((r.on_time_share - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.failures["HTTP 503"], 1);
        assert!((r.worst_late_ms.max - 1999.0).abs() < 1e-9);
    }

    #[test]
    fn each_second_gets_its_on_time_share_and_p99_lateness() {
        let mut late = [0u64; LATE_BUCKETS];
        late[0] = 900; // within 50 ms
        late[3] = 95; // 150–200 ms
        late[25] = 5; // 1.25–1.3 s
        let (on_time, p99) = lateness(&late, 1000.0);
        assert!((on_time - 0.995).abs() < 1e-9, "{on_time}");
        assert_eq!(p99, 200.0);
        let (on_time, _) = lateness(&late, 1300.0);
        assert_eq!(on_time, 1.0);
        assert_eq!(lateness(&[0; LATE_BUCKETS], 1000.0), (1.0, 0.0));
    }
}
