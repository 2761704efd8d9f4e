//! Benchmark: latency from a speaker's frame arriving at the server to the mixed frame leaving
//! for a WebSocket listener, on loopback. Run by bench/latency.sh against a release server.

use clap::Parser;
use stentor::client::Api;

/// Options.
#[derive(Parser)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How long to measure.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Frames between markers.
    #[arg(long, default_value_t = 10)]
    every: u32,
    /// Extra WebSocket listeners receiving the mix meanwhile.
    #[arg(long, default_value_t = 100)]
    listeners: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut host = Api::new(&args.url);
    let handle = format!("bench_{}", std::process::id());
    host.sign_up(&handle, "benchmark-password").await?;
    let space = host.create_space("latency benchmark").await?;
    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await?;
    let r =
        stentor::latency::measure(&host, &space, args.seconds, args.every, args.listeners).await?;
    let ms = |q: f64| r.quantile(q).as_secs_f64() * 1000.0;
    println!("markers sent {}, received {}", r.sent, r.samples.len());
    println!(
        "latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(1.0)
    );
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await?;
    Ok(())
}
