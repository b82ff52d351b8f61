//! Which torrent files this cluster accepts for publishing, checked before a file costs a
//! consensus round, by the QUIC service and the web site alike.
//!
//! A torrent must parse and pass the format's rules, and it must name this cluster's CA.
//! Peers dial the torrent's trackers expecting a certificate from the CA the torrent
//! names, so a torrent naming another cluster's CA could never be tracked here: its peers
//! would refuse every node of this cluster.
//!
//! The torrent's list of tracker addresses is not compared with this cluster's: one node
//! may be reached under several addresses (a public address, a load balancer, a NAT, a
//! name that resolves elsewhere), and a node cannot know them all. A torrent that names
//! this CA but unreachable addresses harms nobody but its own peers.

use certs::Fingerprint;

use crate::torrent::{Torrent, TorrentError};

/// Why a torrent file is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotAdmitted {
    /// The file is not a valid torrent.
    #[error("{0}")]
    Invalid(TorrentError),
    /// The torrent names another tracker cluster's CA.
    #[error(
        "the torrent was made for another tracker cluster: it names the tracker CA \
         {named}, but this cluster's CA is {ours}. Make the torrent again with \
         `bt create --ca {ours}` and this cluster's tracker addresses"
    )]
    ForeignCa {
        /// The CA the torrent names.
        named: Fingerprint,
        /// This cluster's CA.
        ours: Fingerprint,
    },
}

/// Parses `file` and checks it names `cluster_ca`.
pub(crate) fn admit(file: &[u8], cluster_ca: &Fingerprint) -> Result<Torrent, NotAdmitted> {
    let torrent = Torrent::parse(file).map_err(NotAdmitted::Invalid)?;
    let named = torrent.tracker_ca();
    if named != *cluster_ca {
        return Err(NotAdmitted::ForeignCa {
            named,
            ours: *cluster_ca,
        });
    }
    Ok(torrent)
}
