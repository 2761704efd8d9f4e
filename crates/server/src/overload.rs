//! Measures overload (runtime lag, fan-out backlog, CPU) a few times a second and feeds the
//! shedding policy (shed.rs); the door and the HTTP routes ask it before admitting work.

use crate::metrics::Metrics;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stentor_gate::shed::{Class, Level, Limits, Shedder, Signals};

/// How often the runtime's lag is probed.
const PROBE: Duration = Duration::from_millis(100);
/// Probes per measurement handed to the policy.
const PROBES_PER_SAMPLE: u32 = 5;

/// The server's view of its own load, shared by every handler.
pub struct Overload {
    shedder: Mutex<Shedder>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Overload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overload")
            .field("shedder", &*self.shedder.lock())
            .finish_non_exhaustive()
    }
}

impl Overload {
    /// Nothing shed yet; the level and mode are shown in `metrics`.
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            shedder: Mutex::new(Shedder::new(limits, Instant::now())),
            metrics,
        }
    }

    /// Whether work of `class` is refused now.
    pub fn sheds(&self, class: Class) -> bool {
        self.shedder.lock().sheds(class)
    }

    /// Whether new tickets cost a proof of work now.
    pub fn under_attack(&self) -> bool {
        self.shedder.lock().under_attack()
    }

    /// The last pressure measured (1 = at the limit of some signal).
    pub fn pressure(&self) -> f64 {
        self.shedder.lock().pressure()
    }

    /// What is being shed.
    pub fn level(&self) -> Level {
        self.shedder.lock().level()
    }

    /// Whether the operator has turned under-attack mode on.
    pub fn under_attack_forced(&self) -> bool {
        self.shedder.lock().forced()
    }

    /// The operator turns under-attack mode on (or leaves it to the measurements).
    pub fn force_attack_mode(&self, on: bool) {
        let mut shedder = self.shedder.lock();
        shedder.force_attack_mode(on);
        self.show(&shedder);
    }

    /// Hands a measurement to the policy.
    pub fn observe(&self, signals: Signals) {
        let mut shedder = self.shedder.lock();
        shedder.observe(signals, Instant::now());
        self.metrics
            .loop_lag_ms
            .set(signals.loop_lag_ms.round() as i64);
        self.show(&shedder);
    }

    fn show(&self, shedder: &Shedder) {
        self.metrics.shed_level.set(shedder.level() as i64);
        self.metrics
            .under_attack
            .set(i64::from(shedder.under_attack()));
    }
}

/// CPU time this process has used, if the platform says (Linux: `/proc/self/stat`).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) closed by ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // The kernel reports clock ticks; USER_HZ is 100 on every Linux target we build for.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The operator's switch: while this file exists in the data directory, the server is in
/// under-attack mode whatever it measures.
pub const ATTACK_FLAG: &str = "under-attack";

/// Measures until the server shuts down: the mean lag of the runtime's timers, how late the
/// fan-out writers run (`writers_late`, milliseconds), and the process's share of all cores.
/// Under-attack mode is forced while `forced` says so or the file `flag` exists.
pub async fn watch(
    overload: Arc<Overload>,
    writers_late: impl Fn() -> f64 + Send + 'static,
    forced: bool,
    flag: std::path::PathBuf,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let mut cpu_then = process_cpu();
    let mut wall_then = Instant::now();
    loop {
        let mut lag = Duration::ZERO;
        for _ in 0..PROBES_PER_SAMPLE {
            let asked = Instant::now();
            tokio::select! {
                () = tokio::time::sleep(PROBE) => {}
                _ = shutdown.changed() => return,
            }
            lag += asked.elapsed().saturating_sub(PROBE);
        }
        let cpu_now = process_cpu();
        let wall_now = Instant::now();
        let cpu = match (cpu_then, cpu_now) {
            (Some(a), Some(b)) => {
                b.saturating_sub(a).as_secs_f64()
                    / (wall_now - wall_then).as_secs_f64().max(1e-3)
                    / cores
            }
            _ => 0.0,
        };
        (cpu_then, wall_then) = (cpu_now, wall_now);
        let flagged = tokio::fs::try_exists(&flag).await.unwrap_or(false);
        if overload.under_attack_forced() != (forced || flagged) {
            tracing::warn!(
                on = forced || flagged,
                "under-attack mode set by the operator"
            );
            overload.force_attack_mode(forced || flagged);
        }
        overload.observe(Signals {
            loop_lag_ms: lag.as_secs_f64() * 1000.0 / f64::from(PROBES_PER_SAMPLE),
            writers_late_ms: writers_late(),
            cpu,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_cpu_time_is_read_and_grows() {
        let before = process_cpu().expect("/proc/self/stat is readable");
        let mut x = 0u64;
        let until = Instant::now() + Duration::from_millis(60);
        while Instant::now() < until {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(process_cpu().unwrap() > before);
    }
}
