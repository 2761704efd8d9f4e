//! Command-line arguments and dispatch.

use crate::{demo, listen, speak};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use stentor_server::{Config, Server};

/// stentor: live audio Spaces for crowds.
#[derive(Debug, Parser)]
#[command(name = "stentor", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server with a live Space `demo` and a synthetic speaker.
    Demo(ServeArgs),
    /// Publish a tone or a file to a Space (you must be a speaker).
    Speak {
        /// Server base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// Space id.
        #[arg(long)]
        space: String,
        /// WAV or Ogg/Opus file to publish.
        #[arg(long, conflicts_with = "tone", required_unless_present = "tone")]
        file: Option<PathBuf>,
        /// Publish a sine tone at this frequency (Hz).
        #[arg(long)]
        tone: Option<f32>,
        /// Session token of a speaker's account.
        #[arg(long, env = "STENTOR_TOKEN")]
        token: Option<String>,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Record what a listener hears into an Ogg/Opus file.
    Listen {
        /// Server base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// Space id.
        #[arg(long)]
        space: String,
        /// How long to record.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Session token (needed where anonymous listening is off).
        #[arg(long, env = "STENTOR_TOKEN")]
        token: Option<String>,
    },
}

/// Flags of `serve` and `demo`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (flags and STENTOR_* variables override it).
    #[arg(long, env = "STENTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Settings.
    #[command(flatten)]
    pub settings: Config,
}

impl ServeArgs {
    fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        Ok(self.settings.over(file))
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Serve(args) => {
            let server = Server::bind(args.resolve()?).await?;
            println!("stentor listening on http://{}", server.local_addr());
            server.run(shutdown_signal()).await?;
        }
        Cmd::Demo(args) => {
            let server = Server::bind(args.resolve()?).await?;
            let (space, host) = demo::prepare(server.state()).await?;
            demo::spawn_speaker(space, host);
            let base = format!("http://{}", server.local_addr());
            println!("stentor demo is live");
            println!("  open in a browser:   {base}/s/demo");
            println!("  listen in a player:  ffplay {base}/spaces/demo/live.opus");
            println!("                       vlc {base}/spaces/demo/live.opus");
            println!(
                "  record 10 seconds:   stentor listen --server {base} --space demo --seconds 10 --out demo.ogg"
            );
            println!("  space state:         curl {base}/api/v1/spaces/demo");
            server.run(shutdown_signal()).await?;
        }
        Cmd::Speak {
            server,
            space,
            file,
            tone,
            token,
            seconds,
        } => {
            let source = match (file, tone) {
                (Some(f), _) => speak::Source::File(f),
                (None, Some(hz)) => speak::Source::Tone(hz),
                (None, None) => anyhow::bail!("give --file or --tone"),
            };
            speak::run(&server, &space, token, source, seconds).await?;
        }
        Cmd::Listen {
            server,
            space,
            seconds,
            out,
            token,
        } => {
            listen::run(&server, &space, token, seconds, &out).await?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
