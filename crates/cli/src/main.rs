//! The `stentor` binary: parses the command line and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "stentor=info,stentor_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    stentor::cli::run(stentor::cli::Cli::parse()).await
}
