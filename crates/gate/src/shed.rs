//! Load shedding by priority, decided from measured overload (no I/O, no clock: `now` is an
//! argument): the API and status go first, then new joins, then listeners already in; the
//! host and speakers are never shed. Sustained overload turns under-attack mode on.

use std::time::{Duration, Instant};

/// What a request or connection is, in the order it is shed (last first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The host and speakers: never shed.
    Stage,
    /// A listener already receiving audio.
    Listener,
    /// A new listener joining (ticket or media connection).
    Join,
    /// Everything else: the API, status, pages.
    Api,
}

/// How overloaded the server is, from what it measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    /// How late the runtime ran a timer that should have fired, milliseconds.
    pub loop_lag_ms: f64,
    /// How late the fan-out writers ran, milliseconds (0 while they keep up).
    pub writers_late_ms: f64,
    /// CPU the process used, as a share of all cores (0 to 1).
    pub cpu: f64,
}

/// Where overload starts, per signal: at these values the pressure is 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Runtime lag (default 50 ms: a join waiting that long per step misses its budget).
    pub loop_lag_ms: f64,
    /// Writers' lateness (default 500 ms: half of what a frame may be late by).
    pub writers_late_ms: f64,
    /// CPU share at which the CPU starts to count (default 0.8): a busy server that keeps up
    /// is not overloaded.
    pub cpu_busy: f64,
    /// CPU share at which its pressure is 1 (default 0.95).
    pub cpu: f64,
    /// Overload lasting this long turns under-attack mode on (default 10 s).
    pub attack_after: Duration,
    /// Under-attack mode ends after this long without overload (default 60 s).
    pub calm_after: Duration,
    /// A level is kept at least this long before it is lowered (default 3 s).
    pub hold: Duration,
    /// Pressure must last this long before a level is raised (default 1 s): a hiccup (a
    /// burst of password hashing, a pause of the machine) is not overload.
    pub sustain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            loop_lag_ms: 50.0,
            writers_late_ms: 500.0,
            cpu_busy: 0.8,
            cpu: 0.95,
            attack_after: Duration::from_secs(10),
            calm_after: Duration::from_secs(60),
            hold: Duration::from_secs(3),
            sustain: Duration::from_secs(1),
        }
    }
}

/// What is being shed: every class above the level's cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing is shed.
    Normal,
    /// The API and status are shed.
    Api,
    /// New joins are shed too.
    Joins,
    /// Listeners already in are shed too (the stage never is).
    Listeners,
}

impl Level {
    /// The levels above normal, lowest first.
    const RAISED: [Level; 3] = [Level::Api, Level::Joins, Level::Listeners];

    /// The level for a pressure (1 = at the limit of some signal).
    fn of(pressure: f64) -> Self {
        match pressure {
            p if p >= 1.5 => Level::Listeners,
            p if p >= 1.0 => Level::Joins,
            p if p >= 0.7 => Level::Api,
            _ => Level::Normal,
        }
    }

    /// Whether `class` is shed at this level.
    pub fn sheds(self, class: Class) -> bool {
        match class {
            Class::Stage => false,
            Class::Listener => self >= Level::Listeners,
            Class::Join => self >= Level::Joins,
            Class::Api => self >= Level::Api,
        }
    }

    /// A name for metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Api => "api",
            Level::Joins => "joins",
            Level::Listeners => "listeners",
        }
    }
}

/// The shedding state: fed signals, asked about requests.
#[derive(Debug, Clone)]
pub struct Shedder {
    limits: Limits,
    level: Level,
    /// When the level was last raised or confirmed.
    level_since: Instant,
    /// Per raised level (api, joins, listeners): since when the pressure has been at or above
    /// it without a break, if it is.
    above_since: [Option<Instant>; 3],
    /// Since when the server has been overloaded (pressure ≥ 1), if it is.
    overloaded_since: Option<Instant>,
    /// Since when it has been calm (pressure < 1), if it is.
    calm_since: Option<Instant>,
    attack: bool,
    /// Set by the operator: under-attack mode whatever the signals say.
    forced: bool,
    pressure: f64,
}

impl Shedder {
    /// A shedder with `limits`, starting at `now` with nothing shed.
    pub fn new(limits: Limits, now: Instant) -> Self {
        Self {
            limits,
            level: Level::Normal,
            level_since: now,
            above_since: [None; 3],
            overloaded_since: None,
            calm_since: Some(now),
            attack: false,
            forced: false,
            pressure: 0.0,
        }
    }

    /// The pressure of `signals`: the most loaded signal, 1 at its limit.
    pub fn pressure_of(&self, s: Signals) -> f64 {
        let l = &self.limits;
        let cpu = (s.cpu - l.cpu_busy) / (l.cpu - l.cpu_busy).max(1e-3);
        (s.loop_lag_ms / l.loop_lag_ms)
            .max(s.writers_late_ms / l.writers_late_ms)
            .max(cpu)
            .max(0.0)
    }

    /// Takes a measurement at `now`. A higher level applies once its pressure has lasted
    /// [`Limits::sustain`]; a lower one only once the current has been held for
    /// [`Limits::hold`], so shedding does not flap.
    pub fn observe(&mut self, signals: Signals, now: Instant) {
        let pressure = self.pressure_of(signals);
        self.pressure = pressure;
        let mut level = Level::Normal;
        for (since, raised) in self.above_since.iter_mut().zip(Level::RAISED) {
            if Level::of(pressure) >= raised {
                let since = *since.get_or_insert(now);
                if now.duration_since(since) >= self.limits.sustain {
                    level = raised;
                }
            } else {
                *since = None;
            }
        }
        if level >= self.level {
            self.level = level;
            self.level_since = now;
        } else if now.duration_since(self.level_since) >= self.limits.hold {
            // One step down at a time.
            self.level = match self.level {
                Level::Listeners => Level::Joins,
                Level::Joins => Level::Api,
                _ => Level::Normal,
            }
            .max(level);
            self.level_since = now;
        }
        if pressure >= 1.0 {
            self.calm_since = None;
            let since = *self.overloaded_since.get_or_insert(now);
            if now.duration_since(since) >= self.limits.attack_after {
                self.attack = true;
            }
        } else {
            self.overloaded_since = None;
            let since = *self.calm_since.get_or_insert(now);
            if now.duration_since(since) >= self.limits.calm_after {
                self.attack = false;
            }
        }
    }

    /// Whether a request of `class` is shed now.
    pub fn sheds(&self, class: Class) -> bool {
        self.level.sheds(class)
    }

    /// What is being shed.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The last pressure measured.
    pub fn pressure(&self) -> f64 {
        self.pressure
    }

    /// Whether new tickets cost a proof of work: after sustained overload, or when the
    /// operator says so.
    pub fn under_attack(&self) -> bool {
        self.attack || self.forced
    }

    /// Whether the operator has turned under-attack mode on.
    pub fn forced(&self) -> bool {
        self.forced
    }

    /// The operator turns under-attack mode on or off (off leaves it to the signals).
    pub fn force_attack_mode(&mut self, on: bool) {
        self.forced = on;
    }
}

/// Share of the listeners already in that are let go each second while they are shed
/// (level 3): the newest first, a few at a time, so that the load falls smoothly and the
/// level can drop before many are gone.
pub const LISTENERS_SHED_PER_SEC: f64 = 0.05;

/// How many of `held` listeners to let go after `elapsed` at level 3, carrying the fraction
/// over in `credit` (reset it to 0 when the level drops).
pub fn listeners_to_shed(held: usize, elapsed: Duration, credit: &mut f64) -> usize {
    *credit += held as f64 * LISTENERS_SHED_PER_SEC * elapsed.as_secs_f64().min(1.0);
    let n = (credit.floor() as usize).min(held);
    *credit -= n as f64;
    n
}

/// Seconds a shed client of `class` is told to wait, spread by `jitter` (uniform in [0, 1))
/// so that the refused do not all come back in the same second.
pub fn retry_after(class: Class, jitter: f64) -> u64 {
    let (base, spread) = match class {
        Class::Stage | Class::Api => (1.0, 2.0),
        Class::Join => (2.0, 8.0),
        Class::Listener => (5.0, 10.0),
    };
    (base + spread * jitter.clamp(0.0, 1.0)).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    fn lag(ms: f64) -> Signals {
        Signals {
            loop_lag_ms: ms,
            ..Signals::default()
        }
    }

    #[test]
    fn classes_are_shed_in_order_and_the_stage_never() {
        for (level, shed) in [
            (Level::Normal, vec![]),
            (Level::Api, vec![Class::Api]),
            (Level::Joins, vec![Class::Join, Class::Api]),
            (
                Level::Listeners,
                vec![Class::Listener, Class::Join, Class::Api],
            ),
        ] {
            let got: Vec<Class> = [Class::Stage, Class::Listener, Class::Join, Class::Api]
                .into_iter()
                .filter(|c| level.sheds(*c))
                .collect();
            assert_eq!(got, shed, "{level:?}");
        }
    }

    #[test]
    fn pressure_is_the_most_loaded_signal() {
        let s = Shedder::new(Limits::default(), Instant::now());
        let p = s.pressure_of(Signals {
            loop_lag_ms: 10.0,
            writers_late_ms: 750.0,
            cpu: 0.9,
        });
        assert!((p - 1.5).abs() < 1e-9, "{p}");
        // The CPU counts only when the server is nearly out of it.
        let busy = |cpu| {
            s.pressure_of(Signals {
                cpu,
                ..Signals::default()
            })
        };
        assert_eq!(busy(0.7), 0.0);
        assert!((busy(0.95) - 1.0).abs() < 1e-9);
        assert!(busy(0.9) < 0.7, "the API is shed only above about 90 %");
    }

    #[test]
    fn shedding_rises_once_pressure_lasts_and_falls_a_step_at_a_time_after_the_hold() {
        let t0 = Instant::now();
        let mut s = Shedder::new(Limits::default(), t0);
        s.observe(lag(100.0), at(t0, 0.0)); // pressure 2
        s.observe(lag(100.0), at(t0, 0.5));
        assert_eq!(s.level(), Level::Normal, "half a second is a hiccup");
        s.observe(lag(100.0), at(t0, 1.0));
        assert_eq!(s.level(), Level::Listeners);
        assert!(!s.sheds(Class::Stage));
        s.observe(lag(0.0), at(t0, 2.0));
        assert_eq!(s.level(), Level::Listeners, "lowered before the hold");
        s.observe(lag(0.0), at(t0, 4.0));
        assert_eq!(s.level(), Level::Joins);
        s.observe(lag(0.0), at(t0, 7.0));
        assert_eq!(s.level(), Level::Api);
        s.observe(lag(40.0), at(t0, 7.5)); // pressure 0.8
        s.observe(lag(40.0), at(t0, 8.5)); // lasted 1 s: api level confirmed
        s.observe(lag(0.0), at(t0, 10.0));
        assert_eq!(s.level(), Level::Api, "confirmed at 8.5 s");
        s.observe(lag(0.0), at(t0, 11.5));
        assert_eq!(s.level(), Level::Normal);
    }

    #[test]
    fn a_burst_shorter_than_the_sustain_is_never_shed() {
        let t0 = Instant::now();
        let mut s = Shedder::new(Limits::default(), t0);
        for i in 0..40 {
            // Overloaded for half a second out of every second and a half.
            let ms = if i % 3 == 0 { 500.0 } else { 0.0 };
            s.observe(lag(ms), at(t0, f64::from(i) * 0.5));
            assert_eq!(s.level(), Level::Normal, "sample {i}");
        }
        // A pressure that changes level but stays high counts from when it rose.
        s.observe(lag(40.0), at(t0, 30.0)); // api
        s.observe(lag(60.0), at(t0, 30.5)); // joins
        s.observe(lag(40.0), at(t0, 31.0)); // api again: lasted 1 s at api or above
        assert_eq!(s.level(), Level::Api);
    }

    #[test]
    fn sustained_overload_turns_under_attack_mode_on_and_calm_turns_it_off() {
        let t0 = Instant::now();
        let mut s = Shedder::new(Limits::default(), t0);
        for i in 0..=9 {
            s.observe(lag(60.0), at(t0, f64::from(i)));
        }
        assert!(!s.under_attack(), "9 s is not sustained");
        s.observe(lag(60.0), at(t0, 10.0));
        assert!(s.under_attack());
        // A short calm does not end it; a minute does.
        s.observe(lag(0.0), at(t0, 11.0));
        s.observe(lag(60.0), at(t0, 12.0));
        s.observe(lag(0.0), at(t0, 13.0));
        s.observe(lag(0.0), at(t0, 72.0));
        assert!(s.under_attack());
        s.observe(lag(0.0), at(t0, 73.0));
        assert!(!s.under_attack());
        // An overload that comes and goes never adds up to sustained.
        for i in 0..30 {
            let ms = if i % 2 == 0 { 60.0 } else { 0.0 };
            s.observe(lag(ms), at(t0, 100.0 + f64::from(i)));
        }
        assert!(!s.under_attack());
    }

    #[test]
    fn the_operator_can_force_under_attack_mode() {
        let t0 = Instant::now();
        let mut s = Shedder::new(Limits::default(), t0);
        s.force_attack_mode(true);
        s.observe(lag(0.0), at(t0, 100.0));
        assert!(s.under_attack());
        s.force_attack_mode(false);
        assert!(!s.under_attack());
    }

    #[test]
    fn listeners_are_let_go_a_few_a_second() {
        let mut credit = 0.0;
        // 1 000 listeners, passes every 100 ms: 5 a pass, 50 a second.
        let per_pass: Vec<usize> = (0..10)
            .map(|_| listeners_to_shed(1000, Duration::from_millis(100), &mut credit))
            .collect();
        assert_eq!(per_pass.iter().sum::<usize>(), 50);
        // 30 listeners, passes every 250 ms: 1.5 a second, carried over between passes.
        let mut credit = 0.0;
        let shed: usize = (0..8)
            .map(|_| listeners_to_shed(30, Duration::from_millis(250), &mut credit))
            .sum();
        assert_eq!(shed, 3);
        // Never more than there are.
        let mut credit = 100.0;
        assert_eq!(listeners_to_shed(3, Duration::ZERO, &mut credit), 3);
    }

    #[test]
    fn retry_after_is_spread_and_longer_for_those_already_in() {
        assert_eq!(retry_after(Class::Join, 0.0), 2);
        assert_eq!(retry_after(Class::Join, 0.999), 10);
        assert!(retry_after(Class::Listener, 0.0) > retry_after(Class::Api, 0.0));
        let spread: std::collections::BTreeSet<u64> = (0..100)
            .map(|i| retry_after(Class::Join, f64::from(i) / 100.0))
            .collect();
        assert!(spread.len() >= 8, "{spread:?}");
    }
}
