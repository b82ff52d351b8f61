//! `bt`: make, publish, download and seed torrents; see what this machine's peers do.
//!
//! ```sh
//! bt create ./dir -o dir.torrent --tracker 10.0.0.1:7100 --ca <CA fingerprint>
//! bt publish dir.torrent --token <API token>
//! bt seed ./dir --tracker 10.0.0.1:7100 --ca <CA fingerprint> --token <API token>
//! bt get dir.torrent -o downloads/
//! bt status
//! ```

//!
//! This file only parses arguments; what each command does is in `peer::cli`.

use std::net::SocketAddr;
use std::path::PathBuf;

use certs::Fingerprint;
use clap::{Args, Parser, Subcommand};
use peer::cli::{self, Cluster, GetRequest, NetSettings};

#[derive(Parser)]
#[command(
    name = "bt",
    version,
    about = "ByteTorrent: move large files to many machines"
)]
struct Cli {
    /// Where this peer keeps its identity, resume files and status (default:
    /// $BT_STATE_DIR, else ~/.local/share/bytetorrent).
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make a torrent file of a file or directory.
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Where to write the torrent file.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Piece length in KiB (a power of two from 16 to 65536); chosen from the size
        /// if absent.
        #[arg(long)]
        piece_kib: Option<u32>,
        /// A comment for people.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Publish a torrent file on its tracker.
    Publish {
        /// The torrent file.
        torrent: PathBuf,
        #[command(flatten)]
        token: TokenArg,
    },
    /// Make a torrent of PATH, publish it and seed it until interrupted.
    Seed {
        /// The file or directory.
        path: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        token: TokenArg,
        /// Also write the torrent file here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Download a torrent (a torrent file, or an info hash with --tracker and --ca) and
    /// seed it afterwards until interrupted.
    Get {
        /// A torrent file, or an info hash (64 hex digits).
        torrent: String,
        /// The download directory.
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Tracker nodes and CA, needed only with an info hash.
        #[arg(long = "tracker")]
        trackers: Vec<SocketAddr>,
        /// The tracker cluster's CA fingerprint, needed only with an info hash.
        #[arg(long)]
        ca: Option<Fingerprint>,
        /// Exit once the download is complete instead of seeding.
        #[arg(long)]
        no_seed: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show what the `bt` processes of this state directory download and seed.
    Status,
}

#[derive(Args)]
struct ClusterArgs {
    /// A tracker node's peer address; repeat for each node.
    #[arg(long = "tracker", required = true)]
    trackers: Vec<SocketAddr>,
    /// The tracker cluster's CA fingerprint (printed by `bt-tracker certs ca` and
    /// `bt-tracker dev`).
    #[arg(long)]
    ca: Fingerprint,
}

#[derive(Args)]
struct TokenArg {
    /// An API token (from `bt-tracker token create` or the tracker's web site); default:
    /// $BT_TOKEN.
    #[arg(long, env = "BT_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Args)]
struct NetArgs {
    /// Where to accept other peers.
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// The address other peers should dial (default: the listening address).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Serve the dashboard (progress, rates, neighbours, piece map; pause, resume,
    /// remove) at this address, e.g. 127.0.0.1:8080. Loopback only unless --web-remote.
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Allow --web on a non-loopback address (anyone who reaches it controls this peer).
    #[arg(long, requires = "web")]
    web_remote: bool,
}

impl From<ClusterArgs> for Cluster {
    fn from(args: ClusterArgs) -> Cluster {
        Cluster {
            trackers: args.trackers,
            ca: args.ca,
        }
    }
}

impl NetArgs {
    fn settings(&self) -> anyhow::Result<NetSettings> {
        NetSettings::new(self.listen, self.advertise, self.web, self.web_remote)
    }
}

#[tokio::main]
async fn main() {
    cli::init_logging();
    let args = Cli::parse();
    let state = cli::state_dir(args.state);
    if let Err(e) = run(args.command, &state).await {
        eprintln!("error: {e:#}");
        std::process::exit(cli::exit_code(&e));
    }
}

async fn run(command: Cmd, state: &std::path::Path) -> anyhow::Result<()> {
    match command {
        Cmd::Create {
            path,
            output,
            cluster,
            piece_kib,
            comment,
        } => cli::create(&path, &output, &cluster.into(), piece_kib, comment).await,
        Cmd::Publish { torrent, token } => cli::publish(&torrent, &token.token).await,
        Cmd::Seed {
            path,
            cluster,
            token,
            output,
            net,
        } => {
            let net = net.settings()?;
            let cluster = cluster.into();
            cli::seed(
                state,
                &path,
                &cluster,
                &token.token,
                output.as_deref(),
                &net,
            )
            .await
        }
        Cmd::Get {
            torrent,
            output,
            trackers,
            ca,
            no_seed,
            net,
        } => {
            let net = net.settings()?;
            let request = GetRequest {
                torrent,
                output,
                trackers,
                ca,
                no_seed,
            };
            cli::get(state, &request, &net).await
        }
        Cmd::Status => {
            cli::status(state);
            Ok(())
        }
    }
}
