//! `bt-tracker`: run and manage a ByteTorrent tracker cluster.
//!
//! ```sh
//! bt-tracker dev --nodes 3                      # a local cluster to try things out
//! bt-tracker certs ca --dir certs               # the cluster CA and the operator cert
//! bt-tracker certs node node1 --dir certs       # one per node
//! bt-tracker run --config node1.toml            # or with flags, see `run --help`
//! bt-tracker user add alice --certs certs --tracker 10.0.0.1:7000
//! bt-tracker token create alice --certs certs --tracker 10.0.0.1:7000
//! bt-tracker member list --certs certs --tracker 10.0.0.1:7000
//! bt-tracker member add 4=node4,10.0.0.4:7000,10.0.0.4:7100 --certs certs --tracker 10.0.0.1:7000
//! bt-tracker member remove 3 --certs certs --tracker 10.0.0.1:7000
//! bt-tracker leader transfer --to 2 --certs certs --tracker 10.0.0.1:7000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracker::cli::{self, operator::ClusterFlags, run::RunFlags};

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
    Run(RunFlags),
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
    /// Show or change the cluster's members.
    #[command(subcommand)]
    Member(MemberCmd),
    /// Move the leadership.
    #[command(subcommand)]
    Leader(LeaderCmd),
}

#[derive(Subcommand)]
enum MemberCmd {
    /// List voters, learners and removed ids, with each member's lag behind the leader.
    List {
        #[command(flatten)]
        cluster: ClusterFlags,
    },
    /// Add a node: as a learner, then (once caught up) as a voter. Start it with
    /// `bt-tracker run --join`, an empty data directory and a certificate from the CA.
    Add {
        /// The new node: ID=NAME,CLUSTER_ADDR,PEER_ADDR, with an id never used before.
        #[arg(value_parser = cli::run::parse_member)]
        member: (u64, tracker::node::MemberConfig),
        /// Leave it a learner (not voting).
        #[arg(long, conflicts_with = "replacing")]
        learner: bool,
        /// Make it a voter in place of this (dead) voter, in one change: the number of
        /// voters, and the quorum, stay as they were.
        #[arg(long, value_name = "ID")]
        replacing: Option<u64>,
        #[command(flatten)]
        cluster: ClusterFlags,
    },
    /// Remove a node for good (a voter or a learner); its id is never used again.
    Remove {
        /// The node's id.
        id: u64,
        #[command(flatten)]
        cluster: ClusterFlags,
    },
}

#[derive(Subcommand)]
enum LeaderCmd {
    /// Hand the leadership to another voter (before maintenance of the leader's machine).
    Transfer {
        /// The successor (default: the most up-to-date other voter).
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        cluster: ClusterFlags,
    },
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
        cluster: ClusterFlags,
    },
    /// Disable a user (their tokens stop working) or, with --enable, enable them again.
    Disable {
        /// The user's name.
        name: String,
        /// Enable instead.
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        cluster: ClusterFlags,
    },
    /// List the users.
    List {
        #[command(flatten)]
        cluster: ClusterFlags,
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
        cluster: ClusterFlags,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_logging();
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", cli::error_report(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Cmd) -> Result<(), cli::CliError> {
    match command {
        Cmd::Certs(CertsCmd::Ca { dir }) => cli::certs::create_ca(&dir),
        Cmd::Certs(CertsCmd::Node { name, dir }) => cli::certs::create_node_cert(&dir, &name),
        Cmd::Run(flags) => cli::run::run(flags).await,
        Cmd::Dev { nodes, dir } => cli::dev::run(nodes as usize, dir).await,
        Cmd::User(UserCmd::Add {
            name,
            admin,
            cluster,
        }) => cli::operator::add_user(&cluster, &name, admin).await,
        Cmd::User(UserCmd::Disable {
            name,
            enable,
            cluster,
        }) => cli::operator::set_user_disabled(&cluster, &name, enable).await,
        Cmd::User(UserCmd::List { cluster }) => cli::operator::list_users(&cluster).await,
        Cmd::Token(TokenCmd::Create {
            user,
            label,
            cluster,
        }) => cli::operator::create_token(&cluster, &user, &label).await,
        Cmd::Member(MemberCmd::List { cluster }) => cli::members::list(&cluster).await,
        Cmd::Member(MemberCmd::Add {
            member,
            learner,
            replacing,
            cluster,
        }) => cli::members::add(&cluster, member, learner, replacing).await,
        Cmd::Member(MemberCmd::Remove { id, cluster }) => cli::members::remove(&cluster, id).await,
        Cmd::Leader(LeaderCmd::Transfer { to, cluster }) => {
            cli::members::transfer_leader(&cluster, to).await
        }
    }
}
