//! The `stentor` binary: parses the command line and hands over to the library.

use clap::Parser;
use stentor::cli::{Cli, Cmd};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "stentor=info,stentor_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A load test worker is one single-threaded event loop of its own.
    if let Cmd::LoadtestWorker { shard } = &cli.command {
        return stentor_loadtest::run::worker_main(shard);
    }
    tokio::runtime::Runtime::new()?.block_on(stentor::cli::run(cli))
}
