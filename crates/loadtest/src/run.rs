//! Runs a plan: shards in worker processes (or in this process), progress on the terminal,
//! one report at the end.

use crate::account::Outcome;
use crate::plan::{Plan, Shard};
use crate::report::Report;
use crate::worker::{Tick, now_us, run_shard};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// The subcommand of the `stentor` binary that runs one shard (internal).
pub const WORKER_SUBCOMMAND: &str = "loadtest-worker";

/// What a worker process writes on its standard output, one JSON object per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Tick(Box<Tick>),
    Done(Vec<Outcome>),
}

/// The server's fan-out cadence in milliseconds, from its metrics (stentor servers only).
async fn server_cadence_ms(client: &reqwest::Client, plan: &Plan) -> Option<f64> {
    if plan.space.is_empty() {
        return None;
    }
    let url = format!("{}/metrics", plan.url.trim_end_matches('/'));
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("stentor_cadence_ms "))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `plan`; a frame is on time within `allowance_ms` plus the server's cadence (read
/// from its metrics during the run, when the server is stentor).
pub async fn run(plan: Plan, allowance_ms: f64, progress: bool) -> anyhow::Result<Report> {
    // Start a moment from now, so that every worker process is up before the first join.
    let start_unix_ms = now_us() / 1000 + if plan.workers == 0 { 100 } else { 1500 };
    let shards = plan.shards(start_unix_ms);
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Line)>();
    let mut children = Vec::new();
    for (w, shard) in shards.iter().cloned().enumerate() {
        let tx = tx.clone();
        if plan.workers == 0 {
            tokio::spawn(async move {
                let ticks = tx.clone();
                let outcomes = run_shard(shard, move |t| {
                    let _ = ticks.send((w, Line::Tick(Box::new(t))));
                })
                .await;
                let _ = tx.send((w, Line::Done(outcomes)));
            });
        } else {
            children.push(spawn_worker(w, &shard, tx)?);
        }
    }
    drop(tx);

    let bar = progress.then(|| {
        let bar = ProgressBar::new(plan.listeners as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} receiving  {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    });
    let mut latest = vec![Tick::default(); shards.len()];
    let mut outcomes = Vec::with_capacity(plan.listeners);
    let mut done = 0;
    let mut timeline = Vec::new();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let metrics = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let mut cadence_ms: f64 = 0.0;
    while done < shards.len() {
        tokio::select! {
            line = rx.recv() => match line {
                None => bail!("a worker ended without reporting"),
                Some((w, Line::Tick(t))) => latest[w] = *t,
                Some((_, Line::Done(o))) => {
                    outcomes.extend(o);
                    done += 1;
                }
            },
            _ = second.tick() => {
                if let Some(c) = server_cadence_ms(&metrics, &plan).await {
                    cadence_ms = cadence_ms.max(c);
                }
                let sum = sum(&latest);
                timeline.push(sum);
                if let Some(bar) = &bar {
                    bar.set_position(sum.connected);
                    bar.set_message(format!("joined {}  failed {}  frames {}", sum.joined, sum.failed, sum.frames));
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for mut child in children {
        let _ = child.wait().await;
    }
    let mut report = Report::new(
        plan.listeners,
        &outcomes,
        &timeline,
        allowance_ms + cadence_ms,
    );
    report.cadence_ms = cadence_ms;
    let start = match plan.profile {
        crate::Profile::Crowd { at_unix_ms, .. } => at_unix_ms,
        _ => start_unix_ms,
    };
    report.admitted_99_s = Report::time_to_share(&outcomes, plan.listeners, 0.99, start);
    Ok(report)
}

fn sum(ticks: &[Tick]) -> Tick {
    ticks.iter().fold(Tick::default(), |a, t| Tick {
        joined: a.joined + t.joined,
        connected: a.connected + t.connected,
        failed: a.failed + t.failed,
        retries: a.retries + t.retries,
        frames: a.frames + t.frames,
        late: std::array::from_fn(|i| a.late[i] + t.late[i]),
    })
}

fn spawn_worker(
    w: usize,
    shard: &Shard,
    tx: mpsc::UnboundedSender<(usize, Line)>,
) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe().context("finding the stentor binary for workers")?;
    // The shard goes on stdin: with thousands of source addresses it is too long for an
    // argument.
    let mut child = tokio::process::Command::new(exe)
        .arg(WORKER_SUBCOMMAND)
        .arg("-")
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a worker process")?;
    let mut stdin = child.stdin.take().expect("piped");
    let json = serde_json::to_vec(shard)?;
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&json).await;
    });
    let stdout = child.stdout.take().expect("piped");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<Line>(&line) {
                Ok(l) => {
                    if tx.send((w, l)).is_err() {
                        break;
                    }
                }
                Err(e) => eprintln!("worker {w}: {e}: {line:.200}"),
            }
        }
    });
    Ok(child)
}

/// The body of a worker process: runs one shard (JSON, or `-` for standard input) on a
/// single-threaded event loop and writes progress and outcomes as JSON lines on standard
/// output.
pub fn worker_main(shard_json: &str) -> anyhow::Result<()> {
    let shard: Shard = if shard_json == "-" {
        serde_json::from_reader(std::io::stdin().lock())
    } else {
        serde_json::from_str(shard_json)
    }
    .context("reading the shard")?;
    // Each listener is a socket: take every file the system allows this process.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcomes = runtime.block_on(run_shard(shard, |t| {
        println!(
            "{}",
            serde_json::to_string(&Line::Tick(Box::new(t))).expect("serializes")
        );
    }));
    println!("{}", serde_json::to_string(&Line::Done(outcomes))?);
    Ok(())
}
