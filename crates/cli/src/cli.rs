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
        /// Certificate authority (PEM) that signed an `https://` server's certificate, or
        /// that self-signed certificate [default: the public roots].
        #[arg(long, env = "STENTOR_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Open many listeners against a server (or any Ogg stream) and report how they fared.
    Loadtest(LoadtestArgs),
    /// A cluster's nodes, their load and its Spaces, read from its NATS server.
    Cluster {
        /// What to show.
        #[command(subcommand)]
        what: ClusterCmd,
    },
    /// Attacks a server on this machine (loopback only), or probes it while others do: for
    /// benchmarks of the admission path (bench/attack.sh).
    Attack(AttackArgs),
    /// A burst of API requests, each as its own account, open-loop at a set rate: a like
    /// burst, timeline reads (bench/social.sh). Prints what it measured as JSON.
    #[command(name = "loadtest-requests")]
    LoadtestRequests(RequestsArgs),
    /// Runs one shard of a load test (started by `loadtest`).
    #[command(name = "loadtest-worker", hide = true)]
    LoadtestWorker {
        /// The shard, as JSON (`-`: read it from standard input).
        shard: String,
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
        /// Certificate authority (PEM) that signed an `https://` server's certificate, or
        /// that self-signed certificate [default: the public roots].
        #[arg(long, env = "STENTOR_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
}

/// Flags of `attack`.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    /// Server base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The Space attacked (and joined by the probe).
    #[arg(long, default_value = "demo")]
    pub space: String,
    /// forged-tickets, ticket-flood, slowloris, bad-frames, or probe (a host's command and a
    /// new listener's join timed twice a second).
    #[arg(long)]
    pub kind: stentor_loadtest::attack::Kind,
    /// Seconds to keep at it.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Connections (or loops) at once.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Loopback source addresses.
    #[arg(long, default_value = "127.66.6.1-127.66.6.254")]
    pub sources: String,
    /// Also write the tally as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What `stentor cluster` shows.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Nodes (role, address, listeners), and Spaces with their origin and audience.
    Status {
        /// The cluster's NATS server.
        #[arg(long, env = "STENTOR_NATS", default_value = "nats://127.0.0.1:4222")]
        nats: String,
        /// The cluster's name.
        #[arg(long = "cluster", env = "STENTOR_CLUSTER", default_value = "stentor")]
        name: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Flags of `loadtest-requests`.
#[derive(Debug, clap::Args)]
pub struct RequestsArgs {
    /// The server (loopback only): `127.0.0.1:8080`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// The method.
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// The path; `{i}` is the request's number.
    #[arg(long)]
    pub path: String,
    /// The bearer token; `{i}` is the request's number (`bench-{i}`: one account each).
    #[arg(long, default_value = "bench-{i}")]
    pub token: String,
    /// The first request's number.
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// Requests.
    #[arg(long)]
    pub count: u64,
    /// Requests a second.
    #[arg(long)]
    pub rate: f64,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Loopback source addresses, one per connection in turn.
    #[arg(long, default_value = "127.0.0.2-127.0.63.255")]
    pub sources: String,
    /// Write the report as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Flags of `loadtest`.
#[derive(Debug, clap::Args)]
pub struct LoadtestArgs {
    /// Server base URL (for `--transport ogg` without `--space`: the full URL of any
    /// Icecast-compatible Ogg/Opus stream).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Space id.
    #[arg(long, default_value = "")]
    pub space: String,
    /// Listeners to open.
    #[arg(long)]
    pub listeners: usize,
    /// `ws` (the Space WebSocket), `ogg` (the Ogg/Opus HTTP stream) or `hls` (LL-HLS:
    /// blocking playlist reloads and parts, as a low-latency player asks).
    #[arg(long, default_value = "ws", value_parser = ["ws", "ogg", "hls"])]
    pub transport: String,
    /// Arrivals per second (a ramp); without it, everyone joins at once (a spike).
    #[arg(long, conflicts_with = "at")]
    pub rate: Option<f64>,
    /// Everyone joins at this Unix time in seconds (a waiting crowd at a scheduled start).
    #[arg(long)]
    pub at: Option<f64>,
    /// With `--at`: each listener asks for the Space's status before the start, as a waiting
    /// client does, and joins at a moment drawn from the join window it announces.
    #[arg(long, requires = "at")]
    pub follow_window: bool,
    /// Seconds every listener stays after the last has joined.
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
    /// Loopback source addresses to spread connections over: by default 64 networks of 254
    /// addresses, so that the crowd looks like many people, not one network.
    #[arg(long, default_value = "127.0.0.2-127.0.63.255")]
    pub sources: String,
    /// Worker processes [default: one per core, and at least one per 15 000 listeners].
    #[arg(long)]
    pub workers: Option<usize>,
    /// A frame later than this after its earliest delivery is not on time (ms).
    #[arg(long, default_value_t = 1000.0)]
    pub allowance_ms: f64,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the run over time as an SVG chart here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// In a cluster: ask `--url` where to join (`GET /api/v1/spaces/{id}/edges`) and spread
    /// the listeners over the edges it lists; a listener whose edge goes away moves to the
    /// next.
    #[arg(long)]
    pub edges: bool,
    /// The base URLs of the nodes to spread listeners over, comma-separated (as `--edges`
    /// finds them, given by hand).
    #[arg(long, value_delimiter = ',', conflicts_with = "edges")]
    pub nodes: Vec<String>,
    /// Where a listener whose node goes away moves, in turn, comma-separated [default: the
    /// next of the nodes].
    #[arg(long, value_delimiter = ',')]
    pub fallback: Vec<String>,
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
            println!("stentor listening on {}", server.base_url());
            server.run(stentor_server::shutdown_signal()).await?;
        }
        Cmd::Demo(args) => {
            let config = args.resolve()?;
            if config.role() == stentor_server::config::Role::Edge {
                anyhow::bail!(
                    "the demo Space is mixed by an origin: run `stentor demo --role origin --nats URL` \
                     and serve it with `stentor serve --role edge --nats URL --bind ADDR`"
                );
            }
            let role = config.role();
            let (nats, key) = (config.cluster.nats.clone(), config.ticket_key_path());
            let server = Server::bind(config).await?;
            let (space, host) = demo::prepare(server.state()).await?;
            demo::spawn_speaker(space, host);
            let base = server.base_url();
            println!("stentor demo is live");
            println!("  open in a browser:   {base}/s/demo");
            println!("  listen in a player:  ffplay {base}/spaces/demo/live.opus");
            println!("                       vlc {base}/spaces/demo/live.opus");
            println!(
                "  record 10 seconds:   stentor listen --server {base} --space demo --seconds 10 --out demo.ogg"
            );
            println!("  space state:         curl {base}/api/v1/spaces/demo");
            if let (stentor_server::config::Role::Origin, Some(nats)) = (role, nats) {
                println!(
                    "  an edge serving it:  stentor serve --role edge --nats {nats} --bind 127.0.0.1:8081 --ticket-key-file {}",
                    key.display()
                );
            }
            server.run(stentor_server::shutdown_signal()).await?;
        }
        Cmd::Speak {
            server,
            space,
            file,
            tone,
            token,
            seconds,
            ca_file,
        } => {
            let api = crate::client::Api::for_cli(&server, ca_file.as_deref())?.with_token(token);
            let source = match (file, tone) {
                (Some(f), _) => speak::Source::File(f),
                (None, Some(hz)) => speak::Source::Tone(hz),
                (None, None) => anyhow::bail!("give --file or --tone"),
            };
            speak::run(&api, &space, source, seconds).await?;
        }
        Cmd::Loadtest(args) => loadtest(args).await?,
        Cmd::Cluster {
            what: ClusterCmd::Status { nats, name, json },
        } => {
            let status = crate::cluster::status(&nats, &name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.table());
            }
        }
        Cmd::Attack(args) => attack(args).await?,
        Cmd::LoadtestRequests(args) => requests(args).await?,
        Cmd::LoadtestWorker { shard } => stentor_loadtest::run::worker_main(&shard)?, // normally run by main
        Cmd::Listen {
            server,
            space,
            seconds,
            out,
            token,
            ca_file,
        } => {
            let api = crate::client::Api::for_cli(&server, ca_file.as_deref())?.with_token(token);
            listen::run(&api, &space, seconds, &out).await?;
        }
    }
    Ok(())
}

async fn attack(args: AttackArgs) -> anyhow::Result<()> {
    use stentor_loadtest::attack::{Attack, run};
    let attack = Attack {
        url: args.url,
        space: args.space,
        kind: args.kind,
        seconds: args.seconds,
        connections: args.connections,
        sources: stentor_loadtest::plan::parse_sources(&args.sources)
            .map_err(anyhow::Error::msg)?,
    };
    let tally = run(attack).await?;
    let json = serde_json::to_string_pretty(&tally)?;
    println!("{json}");
    if let Some(path) = args.json {
        std::fs::write(&path, &json)?;
    }
    Ok(())
}

async fn requests(args: RequestsArgs) -> anyhow::Result<()> {
    if !args.addr.ip().is_loopback() {
        anyhow::bail!("loadtest-requests sends to this machine only (127.0.0.0/8)");
    }
    if !args.rate.is_finite() || args.rate <= 0.0 || args.connections == 0 {
        anyhow::bail!("--rate and --connections must be above 0");
    }
    let burst = stentor_loadtest::requests::Burst {
        addr: args.addr,
        method: args.method,
        path: args.path,
        token: args.token,
        first: args.first,
        count: args.count,
        rate: args.rate,
        connections: args.connections,
        sources: stentor_loadtest::plan::parse_sources(&args.sources)
            .map_err(anyhow::Error::msg)?,
        timeout: std::time::Duration::from_secs(30),
    };
    let report = stentor_loadtest::requests::run(burst).await;
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(path) = args.json {
        std::fs::write(&path, &json)?;
    }
    Ok(())
}

/// The edges a node lists for Space `space`, the one with the most room first.
async fn discover_edges(url: &str, space: &str) -> anyhow::Result<Vec<String>> {
    let where_to: serde_json::Value = reqwest::get(format!("{url}/api/v1/spaces/{space}/edges"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let edges: Vec<String> = where_to["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["url"].as_str().map(str::to_owned))
        .collect();
    if edges.is_empty() {
        anyhow::bail!("{url} lists no edges for {space}: is it a node of a cluster?");
    }
    Ok(edges)
}

async fn loadtest(args: LoadtestArgs) -> anyhow::Result<()> {
    use stentor_loadtest::{Plan, Profile, Transport, plan::parse_sources};
    let transport = match args.transport.as_str() {
        "ogg" => Transport::Ogg,
        "hls" => Transport::Hls,
        _ => Transport::Ws,
    };
    if transport != Transport::Ogg && args.space.is_empty() {
        anyhow::bail!("--space is needed for WebSocket and LL-HLS listeners");
    }
    let profile = match (args.rate, args.at) {
        (Some(per_second), _) => Profile::Ramp { per_second },
        (None, Some(at)) => Profile::Crowd {
            at_unix_ms: (at * 1000.0) as i64,
            follow_window: args.follow_window,
        },
        (None, None) => Profile::Spike,
    };
    let plan = Plan {
        url: args.url,
        space: args.space,
        transport,
        listeners: args.listeners,
        profile,
        hold_secs: args.hold,
        sources: parse_sources(&args.sources).map_err(anyhow::Error::msg)?,
        workers: args
            .workers
            .unwrap_or_else(|| stentor_loadtest::plan::default_workers(args.listeners))
            .max(1),
        nodes: args.nodes,
        fallback: args.fallback,
    };
    let mut plan = plan;
    if args.edges {
        plan.nodes = discover_edges(&plan.url, &plan.space).await?;
        eprintln!("edges: {}", plan.nodes.join(" "));
    }
    eprintln!(
        "{} listeners over {:?}, {:?}, {} worker(s), {} source addresses",
        plan.listeners,
        plan.transport,
        plan.profile,
        plan.workers,
        plan.sources.len()
    );
    let report = stentor_loadtest::run::run(plan, args.allowance_ms, true).await?;
    println!("{}", report.table());
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = args.plot {
        stentor_loadtest::plot::svg(&report, &path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
