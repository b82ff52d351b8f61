//! `bt-tracker run`: one tracker node, configured by flags or a TOML file, until Ctrl-C.
//!
//! [`RunFlags::node_config`] is the one place where the raw flags (or the file) become a
//! validated [`NodeConfig`]; whatever the flags leave out takes [`NodeConfig::new`]'s
//! defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::{CliError, ctrl_c, flush_stdout};
use crate::node::{CertPaths, MemberConfig, NodeConfig};
use crate::state::StateConfig;

/// The flags of `bt-tracker run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunFlags {
    /// A TOML file with the node's settings (the flags below override nothing: use one or
    /// the other).
    #[arg(long, conflicts_with_all = ["id", "member", "data", "certs"])]
    pub config: Option<PathBuf>,
    /// This node's id.
    #[arg(long, required_unless_present = "config")]
    pub id: Option<u64>,
    /// A cluster member, repeated for each: ID=NAME,CLUSTER_ADDR,PEER_ADDR
    /// (e.g. 1=node1,10.0.0.1:7000,10.0.0.1:7100).
    #[arg(long = "member", value_parser = parse_member, required_unless_present = "config")]
    pub member: Vec<(u64, MemberConfig)>,
    /// Join a running cluster: this node was added with `bt-tracker member add`, and the
    /// --member flags list it and the current members; it fetches the data from them.
    #[arg(long)]
    pub join: bool,
    /// Data directory (durable log and snapshots).
    #[arg(long, required_unless_present = "config")]
    pub data: Option<PathBuf>,
    /// Directory with ca.crt and NAME.crt/NAME.key for this node.
    #[arg(long, required_unless_present = "config")]
    pub certs: Option<PathBuf>,
    /// HTTP address for /health and /metrics.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// A peer not heard from for this many seconds leaves its swarms.
    #[arg(long, default_value_t = StateConfig::default().peer_ttl_ms / 1000)]
    pub peer_ttl_secs: u64,
    /// Peer requests answered at once; more are answered "busy" and retried by the
    /// client after a back-off.
    #[arg(long, default_value_t = crate::service::DEFAULT_MAX_IN_FLIGHT)]
    pub max_requests_in_flight: usize,
    /// Tests only: the replica's clock follows the rate and time-of-day steps written to
    /// this file, so that a fault-injection harness can skew this node's clock.
    #[arg(long, hide = true, conflicts_with = "config")]
    pub clock_control: Option<PathBuf>,
}

impl RunFlags {
    /// The node's configuration: read from the `--config` file, or made from the flags.
    pub fn node_config(self) -> Result<NodeConfig, CliError> {
        if let Some(path) = self.config {
            let text = std::fs::read_to_string(&path).map_err(|error| CliError::ReadConfig {
                path: path.clone(),
                error,
            })?;
            return toml::from_str(&text).map_err(|error| CliError::BadConfig { path, error });
        }
        let (Some(id), Some(data), Some(certs)) = (self.id, self.data, self.certs) else {
            return Err(CliError::Flags(
                "--id, --member, --data and --certs are needed without --config".into(),
            ));
        };
        let members: BTreeMap<u64, MemberConfig> = self.member.into_iter().collect();
        let Some(me) = members.get(&id) else {
            return Err(CliError::Flags(format!(
                "--id {id} is not one of the --member ids"
            )));
        };
        let certs = CertPaths::in_dir(&certs, &me.name);
        let mut config = NodeConfig::new(id, members, data, certs);
        config.http_listen = self.http;
        config.join = self.join;
        config.max_requests_in_flight = self.max_requests_in_flight;
        config.clock_control = self.clock_control;
        config.peer_ttl_ms = self.peer_ttl_secs.checked_mul(1000).ok_or_else(|| {
            CliError::Flags(format!(
                "--peer-ttl-secs {} is too large",
                self.peer_ttl_secs
            ))
        })?;
        Ok(config)
    }
}

/// A `--member` value (and `member add`'s argument): `ID=NAME,CLUSTER_ADDR,PEER_ADDR`.
pub fn parse_member(text: &str) -> Result<(u64, MemberConfig), String> {
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

/// Starts the node of `flags`, prints its addresses, and serves until Ctrl-C.
pub async fn run(flags: RunFlags) -> Result<(), CliError> {
    let config = flags.node_config()?;
    let node = crate::node::start(config.clone()).await?;
    println!(
        "node {} ready: peers {} cluster {}{}",
        config.id,
        node.peer_addr(),
        node.cluster_addr(),
        node.http_addr()
            .map(|a| format!(" http http://{a}"))
            .unwrap_or_default()
    );
    flush_stdout()?;
    // The replica stops for good once the cluster confirms its removal.
    let paxos = node.service().node().clone();
    tokio::select! {
        signal = ctrl_c() => signal?,
        () = paxos.stopped() => {
            // Whoever started the node may no longer read its output: not an error.
            use std::io::Write;
            let _ = writeln!(
                std::io::stdout(),
                "node {} was removed from the cluster; stopping",
                config.id
            );
        }
    }
    node.shutdown_and_notify().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> RunFlags {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunFlags,
        }
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .unwrap()
            .run
    }

    #[test]
    fn flags_become_a_node_config_with_the_node_defaults() {
        let config = flags(&[
            "--id",
            "2",
            "--member",
            "1=node1,127.0.0.1:7000,127.0.0.1:7100",
            "--member",
            "2=node2,127.0.0.1:7001,127.0.0.1:7101",
            "--data",
            "d",
            "--certs",
            "c",
        ])
        .node_config()
        .unwrap();
        let defaults = NodeConfig::new(
            2,
            config.members.clone(),
            "d".into(),
            CertPaths::in_dir("c".as_ref(), "node2"),
        );
        assert_eq!(config, defaults);
        assert_eq!(config.members.len(), 2);
    }

    /// The nemesis skews a node's clock through this hidden flag.
    #[test]
    fn a_clock_control_file_reaches_the_node_config() {
        let config = flags(&[
            "--id",
            "1",
            "--member",
            "1=node1,127.0.0.1:7000,127.0.0.1:7100",
            "--data",
            "d",
            "--certs",
            "c",
            "--clock-control",
            "clock1",
        ])
        .node_config()
        .unwrap();
        assert_eq!(config.clock_control, Some(PathBuf::from("clock1")));
    }

    #[test]
    fn an_id_that_is_no_member_is_refused() {
        let err = flags(&[
            "--id",
            "3",
            "--member",
            "1=node1,127.0.0.1:7000,127.0.0.1:7100",
            "--data",
            "d",
            "--certs",
            "c",
        ])
        .node_config()
        .unwrap_err();
        assert!(err.to_string().contains("--id 3"), "{err}");
    }
}
