//! Flags turned into settings, checked once, before anything is started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::dashboard::{self, DashboardOptions, DashboardState};
use crate::runtime::{Peer, PeerConfig, TorrentHandle};

/// Where the peer keeps its identity, resume files and status: the flag, else
/// `$BT_STATE_DIR`, else `~/.local/share/bytetorrent`, else `.bytetorrent`.
pub fn state_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("BT_STATE_DIR").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".local/share/bytetorrent"))
        })
        .unwrap_or_else(|| PathBuf::from(".bytetorrent"))
}

/// How a seeding or downloading peer meets the network.
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// Where to accept other peers.
    pub listen: SocketAddr,
    /// The address other peers should dial, if not the listening one.
    pub advertise: Option<SocketAddr>,
    /// Where to serve the dashboard, if at all.
    dashboard: Option<(SocketAddr, DashboardOptions)>,
}

impl NetSettings {
    /// Checks the flags: a dashboard address off loopback needs `web_remote`.
    pub fn new(
        listen: SocketAddr,
        advertise: Option<SocketAddr>,
        web: Option<SocketAddr>,
        web_remote: bool,
    ) -> anyhow::Result<Self> {
        let dashboard = match web {
            Some(addr) => {
                let options = DashboardOptions {
                    allow_remote: web_remote,
                };
                dashboard::check_address(addr, &options)?;
                Some((addr, options))
            }
            None => None,
        };
        Ok(NetSettings {
            listen,
            advertise,
            dashboard,
        })
    }

    /// Starts a peer with these settings and its state in `state`.
    pub(crate) async fn start_peer(&self, state: &Path) -> anyhow::Result<Peer> {
        let mut config = PeerConfig::new(self.listen, state.to_path_buf());
        config.advertise = self.advertise;
        Peer::start(config)
            .await
            .with_context(|| format!("starting the peer (state in {})", state.display()))
    }

    /// Serves the dashboard of `handles` if one was asked for.
    pub(crate) async fn serve_dashboard(&self, handles: &[TorrentHandle]) -> anyhow::Result<()> {
        let Some((addr, options)) = &self.dashboard else {
            return Ok(());
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the dashboard to {addr}"))?;
        let bound = listener.local_addr()?;
        let state = DashboardState::new(options.clone());
        for handle in handles {
            state.add(handle.clone());
        }
        tokio::spawn(async move {
            if let Err(e) = dashboard::serve(listener, state).await {
                eprintln!("dashboard stopped: {e}");
            }
        });
        eprintln!("dashboard: http://{bound}/");
        Ok(())
    }
}

/// Refuses a download directory that exists but is not a directory, before anything
/// else is done.
pub(crate) fn check_download_dir(output: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(output) {
        Ok(meta) if !meta.is_dir() => bail!(
            "-o {} is a file, but -o names the directory to download into (the torrent's \
             files or folder are created inside it); give a directory",
            output.display()
        ),
        _ => Ok(()),
    }
}
