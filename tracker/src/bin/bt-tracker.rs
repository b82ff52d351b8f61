//! `bt-tracker`: run and manage a ByteTorrent tracker cluster.
//!
//! ```sh
//! bt-tracker dev --nodes 3                      # a local cluster to try things out
//! bt-tracker certs ca --dir certs               # the cluster CA and the operator cert
//! bt-tracker certs node node1 --dir certs       # one per node
//! bt-tracker run --config node1.toml            # or with flags, see `run --help`
//! bt-tracker user add alice --certs certs --tracker 10.0.0.1:7000
//! bt-tracker token create alice --certs certs --tracker 10.0.0.1:7000
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tracker::admin::{self, AdminClient};
use tracker::api::{AdminRequest, AdminResponse};
use tracker::dev::{DevCluster, DevOptions};
use tracker::node::{CertPaths, MemberConfig, NodeConfig};
use tracker::state::StateConfig;

#[derive(Parser)]
#[command(
    name = "bt-tracker",
    version,
    about = "Run and manage a ByteTorrent tracker cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the cluster CA or a node's certificate.
    #[command(subcommand)]
    Certs(CertsCmd),
    /// Run one tracker node.
    Run(RunArgs),
    /// Run a local cluster on loopback with generated certificates until interrupted.
    Dev {
        /// Number of nodes.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
        nodes: u64,
        /// Where to keep certificates and data (a temporary directory if absent).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Create the cluster CA (ca.crt, ca.key) and the operator certificate (admin.crt,
    /// admin.key) in DIR, and print the CA fingerprint that torrent files carry.
    Ca {
        /// Directory for the files.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
    /// Issue node NAME's certificate (NAME.crt, NAME.key) with the CA in DIR.
    Node {
        /// The node's name (its certificate's DNS name).
        name: String,
        /// Directory holding the CA.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    /// A TOML file with the node's settings (the flags below override nothing: use one or
    /// the other).
    #[arg(long, conflicts_with_all = ["id", "member", "data", "certs"])]
    config: Option<PathBuf>,
    /// This node's id.
    #[arg(long, required_unless_present = "config")]
    id: Option<u64>,
    /// A cluster member, repeated for each: ID=NAME,CLUSTER_ADDR,PEER_ADDR
    /// (e.g. 1=node1,10.0.0.1:7000,10.0.0.1:7100).
    #[arg(long = "member", value_parser = parse_member, required_unless_present = "config")]
    member: Vec<(u64, MemberConfig)>,
    /// Data directory (durable log and snapshots).
    #[arg(long, required_unless_present = "config")]
    data: Option<PathBuf>,
    /// Directory with ca.crt and NAME.crt/NAME.key for this node.
    #[arg(long, required_unless_present = "config")]
    certs: Option<PathBuf>,
    /// HTTP address for /health and /metrics.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// A peer not heard from for this many seconds leaves its swarms.
    #[arg(long, default_value_t = StateConfig::default().peer_ttl_ms / 1000)]
    peer_ttl_secs: u64,
}

#[derive(Args)]
struct AdminArgs {
    /// Directory with ca.crt and the operator certificate (admin.crt, admin.key).
    #[arg(long, default_value = "certs")]
    certs: PathBuf,
    /// A node's cluster address; repeat to list several (tried in turn).
    #[arg(long = "tracker", required = true)]
    trackers: Vec<SocketAddr>,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input (one line) or from the
    /// environment variable BT_TRACKER_PASSWORD.
    Add {
        /// The user's name.
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        cluster: AdminArgs,
    },
    /// Disable a user (their tokens stop working) or, with --enable, enable them again.
    Disable {
        /// The user's name.
        name: String,
        /// Enable instead.
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        cluster: AdminArgs,
    },
    /// List the users.
    List {
        #[command(flatten)]
        cluster: AdminArgs,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create an API token for USER (for `bt publish` and `bt seed`) and print it.
    Create {
        /// The owner.
        user: String,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
        #[command(flatten)]
        cluster: AdminArgs,
    },
}

fn parse_member(text: &str) -> Result<(u64, MemberConfig), String> {
    let shape =
        "expected ID=NAME,CLUSTER_ADDR,PEER_ADDR (e.g. 1=node1,10.0.0.1:7000,10.0.0.1:7100)";
    let (id, rest) = text.split_once('=').ok_or(shape)?;
    let id = id
        .parse()
        .map_err(|e| format!("bad node id {id:?}: {e}; {shape}"))?;
    let parts: Vec<&str> = rest.split(',').collect();
    let [name, cluster, peer] = parts[..] else {
        return Err(shape.to_string());
    };
    let addr = |a: &str| {
        a.parse::<SocketAddr>()
            .map_err(|e| format!("bad address {a:?}: {e}; {shape}"))
    };
    Ok((
        id,
        MemberConfig {
            name: name.to_string(),
            cluster_addr: addr(cluster)?,
            peer_addr: addr(peer)?,
        },
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run_cli().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes for a person: "Error: WHAT" and one "Caused by: WHY" line per
/// cause, leaving out a cause whose message the lines above already include (many error
/// types put their source's message in their own).
fn error_report(error: &anyhow::Error) -> String {
    let mut report = format!("Error: {error}");
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !report.contains(&text) {
            report.push_str("\nCaused by: ");
            report.push_str(&text);
        }
    }
    report
}

async fn run_cli() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Certs(CertsCmd::Ca { dir }) => {
            let fingerprint = admin::create_ca(&dir)?;
            println!(
                "created the cluster CA and the operator certificate in {}",
                dir.display()
            );
            println!("CA fingerprint: {fingerprint}");
            Ok(())
        }
        Cmd::Certs(CertsCmd::Node { name, dir }) => {
            admin::create_node_cert(&dir, &name)?;
            println!("issued {0}.crt and {0}.key in {1}", name, dir.display());
            Ok(())
        }
        Cmd::Run(args) => run(args).await,
        Cmd::Dev { nodes, dir } => dev(nodes, dir).await,
        Cmd::User(UserCmd::Add {
            name,
            admin,
            cluster,
        }) => {
            let password = read_password()?;
            let mut client = AdminClient::new(&cluster.certs, cluster.trackers)?;
            let id = client.next_id();
            expect_done(
                client
                    .call(&AdminRequest::AddUser {
                        id,
                        name: name.clone(),
                        password,
                        admin,
                    })
                    .await?,
            )?;
            println!("added user {name}");
            Ok(())
        }
        Cmd::User(UserCmd::Disable {
            name,
            enable,
            cluster,
        }) => {
            let mut client = AdminClient::new(&cluster.certs, cluster.trackers)?;
            let id = client.next_id();
            expect_done(
                client
                    .call(&AdminRequest::SetUserDisabled {
                        id,
                        name: name.clone(),
                        disabled: !enable,
                    })
                    .await?,
            )?;
            println!(
                "{} user {name}",
                if enable { "enabled" } else { "disabled" }
            );
            Ok(())
        }
        Cmd::User(UserCmd::List { cluster }) => {
            let client = AdminClient::new(&cluster.certs, cluster.trackers)?;
            match client.call(&AdminRequest::Users).await? {
                AdminResponse::Users(users) => {
                    for user in users {
                        let mut flags = Vec::new();
                        if user.admin {
                            flags.push("admin");
                        }
                        if user.disabled {
                            flags.push("disabled");
                        }
                        println!("{}\t{}", user.name, flags.join(","));
                    }
                    Ok(())
                }
                other => bail!("unexpected answer: {other:?}"),
            }
        }
        Cmd::Token(TokenCmd::Create {
            user,
            label,
            cluster,
        }) => {
            let mut client = AdminClient::new(&cluster.certs, cluster.trackers)?;
            let token = admin::new_token();
            let id = client.next_id();
            expect_done(
                client
                    .call(&AdminRequest::CreateToken {
                        id,
                        user,
                        label,
                        token: token.clone(),
                    })
                    .await?,
            )?;
            println!("{token}");
            Ok(())
        }
    }
}

fn expect_done(response: AdminResponse) -> anyhow::Result<()> {
    match response {
        AdminResponse::Done => Ok(()),
        other => bail!("unexpected answer: {other:?}"),
    }
}

/// The password from `BT_TRACKER_PASSWORD`, else one line of standard input; the prompt is
/// shown only when standard input is a terminal, so a piped password is read silently.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("BT_TRACKER_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password given: type one, pipe one in, or set BT_TRACKER_PASSWORD");
    }
    Ok(password)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<NodeConfig>(&text)
                .with_context(|| format!("{} is not a valid node configuration", path.display()))?
        }
        None => {
            let (Some(id), Some(data), Some(certs)) = (args.id, args.data, args.certs) else {
                bail!("--id, --member, --data and --certs are needed without --config");
            };
            let members: BTreeMap<u64, MemberConfig> = args.member.into_iter().collect();
            let Some(me) = members.get(&id) else {
                bail!("--id {id} is not one of the --member ids");
            };
            let certs = CertPaths::in_dir(&certs, &me.name);
            let mut config = NodeConfig::new(id, members, data, certs);
            config.http_listen = args.http;
            config.peer_ttl_ms = args.peer_ttl_secs * 1000;
            config
        }
    };
    let node = tracker::node::start(config.clone()).await?;
    println!(
        "node {} ready: peers {} cluster {}{}",
        config.id,
        node.peer_addr(),
        node.cluster_addr(),
        node.http_addr()
            .map(|a| format!(" http http://{a}"))
            .unwrap_or_default()
    );
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    node.shutdown();
    Ok(())
}

async fn dev(nodes: u64, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (dir, _temp) = match dir {
        Some(dir) => (dir, None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("bt-tracker-dev-")
                .tempdir()
                .context("creating a temporary directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let options = DevOptions {
        nodes: nodes as usize,
        ..DevOptions::default()
    };
    let cluster = DevCluster::start(&dir, options).await?;
    let http = cluster.http_addrs();
    for (i, id) in cluster.ids().into_iter().enumerate() {
        let web = http
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, a)| format!("  http http://{a}"))
            .unwrap_or_default();
        println!(
            "node {id}: peers {}  cluster {}{web}",
            cluster.peer_addrs()[i],
            cluster.cluster_addrs()[i]
        );
    }
    println!("CA fingerprint: {}", cluster.ca_fingerprint());
    println!("API token of user dev: {}", cluster.token());
    println!(
        "trackers for `bt create`: {}",
        cluster
            .peer_addrs()
            .iter()
            .map(|a| format!("--tracker {a}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("certificates and data in {}", dir.display());
    println!("ready; press Ctrl-C to stop");
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    cluster.shutdown();
    Ok(())
}
