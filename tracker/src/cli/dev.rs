//! `bt-tracker dev`: a local cluster on loopback until Ctrl-C, and what to type to use it.

use std::path::{Path, PathBuf};

use super::{CliError, ctrl_c, flush_stdout};
use crate::dev::{DevCluster, DevOptions};

/// Runs `nodes` nodes with certificates and data in `dir` (a temporary directory, removed
/// afterwards, if none) and prints their addresses, the CA fingerprint and the dev user's
/// API token.
pub async fn run(nodes: usize, dir: Option<PathBuf>) -> Result<(), CliError> {
    let (dir, _temp) = crate::dev::dir_or_temp(dir, "bt-tracker-dev-")
        .map_err(CliError::io("creating a temporary directory"))?;
    let options = DevOptions {
        nodes,
        ..DevOptions::default()
    };
    let cluster = DevCluster::start(&dir, options).await?;
    print_cluster(&cluster, &dir);
    flush_stdout()?;
    ctrl_c().await?;
    cluster.shutdown();
    Ok(())
}

fn print_cluster(cluster: &DevCluster, dir: &Path) {
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
}
