//! Where a torrent comes from: a torrent file on disk, or an info hash whose torrent file
//! the tracker serves.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use certs::Fingerprint;
use tracker::client::TrackerClient;
use tracker::torrent::{InfoHash, Torrent};
use transport::{Endpoint, EndpointConfig, InboundTrust};

/// Reads and checks the torrent file at `path`.
pub(crate) fn read_torrent_file(path: &Path) -> anyhow::Result<(Torrent, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let torrent = Torrent::parse(&bytes)
        .with_context(|| format!("{} is not a valid torrent file", path.display()))?;
    Ok((torrent, bytes))
}

/// The torrent `arg` names: a torrent file, or an info hash fetched from `trackers`
/// (which then need `ca`).
pub(crate) async fn load_torrent(
    arg: &str,
    trackers: &[SocketAddr],
    ca: Option<Fingerprint>,
    endpoint: &Endpoint,
) -> anyhow::Result<Torrent> {
    let path = Path::new(arg);
    if path.exists() {
        return Ok(read_torrent_file(path)?.0);
    }
    let Ok(info_hash) = arg.parse::<InfoHash>() else {
        if arg.contains(std::path::MAIN_SEPARATOR) || arg.ends_with(".torrent") {
            bail!("no such torrent file: {arg}");
        }
        bail!("{arg} is neither a torrent file nor an info hash (64 hexadecimal digits)");
    };
    let Some(ca) = ca else {
        bail!("with an info hash, give the tracker's --ca fingerprint and --tracker addresses");
    };
    if trackers.is_empty() {
        bail!("with an info hash, give at least one --tracker address");
    }
    let client = TrackerClient::new(endpoint.clone(), trackers.to_vec(), ca);
    let bytes = client.get_torrent(info_hash).await.with_context(|| {
        format!(
            "fetching torrent {info_hash} from the tracker (tried {})",
            list(trackers)
        )
    })?;
    let torrent = Torrent::parse(&bytes).context("the tracker sent an invalid torrent file")?;
    if torrent.info_hash() != info_hash {
        bail!("the tracker sent a torrent with another info hash");
    }
    Ok(torrent)
}

/// An endpoint for talking to trackers only (a fresh identity; nothing is served).
pub(crate) fn client_endpoint() -> anyhow::Result<Endpoint> {
    let identity = certs::Identity::generate_self_signed("bt")?;
    let mut config = EndpointConfig::new("0.0.0.0:0".parse()?, InboundTrust::Open, &[]);
    config.max_frame = tracker::api::MAX_FRAME_LEN;
    Ok(Endpoint::bind(identity, config)?)
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
