//! The settings of a peer and of each torrent it adds.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::swarm::SwarmConfig;

/// Settings of a peer.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Where to accept connections from other peers (and dial from). Port 0 picks one.
    pub listen: SocketAddr,
    /// The address other peers should dial, as told to the tracker; the bound address if
    /// absent (an unspecified IP is then replaced by 127.0.0.1).
    pub advertise: Option<SocketAddr>,
    /// The peer's identity and the torrents' resume files.
    pub state_dir: PathBuf,
    /// The swarm core's settings (its seed is drawn at random when 0).
    pub swarm: SwarmConfig,
    /// Most bytes of piece data being downloaded at once, over all torrents. 16 MiB: at
    /// 256 KiB pieces that is 64 requests in flight, at 2 MiB pieces 8 (a 10 Gbit/s link
    /// with 10 ms of round trip holds 12.5 MB), and with the rest of the process a leecher
    /// stays near 40 MiB of memory. 24 MiB was no faster on loopback and cost 2-7 MiB more
    /// at the peak.
    pub download_buffer: usize,
    /// Most pieces being read and sent at once. 8: each is held in memory while it is
    /// sent; eight keep several neighbours busy without letting them claim unbounded
    /// memory.
    pub max_serving: usize,
}

impl PeerConfig {
    /// Defaults with the state in `state_dir`, listening on `listen`.
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> Self {
        PeerConfig {
            listen,
            advertise: None,
            state_dir,
            swarm: SwarmConfig::default(),
            download_buffer: 16 << 20,
            max_serving: 8,
        }
    }
}

/// How to add a torrent.
#[derive(Clone, Debug)]
pub struct AddOptions {
    /// The files already exist complete (a seeder's own data): verify every piece, create
    /// nothing, change nothing.
    pub existing: bool,
    /// Keep serving after the download completes (the default), or stop.
    pub seed: bool,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            existing: false,
            seed: true,
        }
    }
}
