//! The stored torrents: each file byte for byte, the facts the web site and search show,
//! and the torrent's swarm.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use crate::api::{ApiError, TorrentSummary};
use crate::torrent::{InfoHash, Torrent};

use super::Output;
use super::swarms::Swarm;

/// A stored torrent.
#[derive(Clone, Debug)]
pub(crate) struct TorrentEntry {
    /// The file as uploaded.
    pub(crate) file: Vec<u8>,
    /// Its name as in the file.
    pub(crate) name: String,
    /// Total bytes.
    pub(crate) size: u64,
    /// Pieces.
    pub(crate) piece_count: u32,
    /// The user who published it.
    pub(crate) uploader: String,
    /// When it was published (the proposer's clock).
    pub(crate) added_ms: u64,
    /// Downloads completed, each peer counted once per stay in the swarm. Kept here, not
    /// in the swarm, so that it survives the swarm emptying.
    pub(crate) completed: u64,
    /// The peers; `None` while nobody is in the swarm, so that an idle torrent costs no
    /// per-piece memory.
    pub(crate) swarm: Option<Swarm>,
}

impl TorrentEntry {
    /// The summary shown in lists.
    pub(crate) fn summary(&self, info_hash: InfoHash) -> TorrentSummary {
        let (seeders, leechers) = self
            .swarm
            .as_ref()
            .map_or((0, 0), |s| (s.seeders(), s.leechers()));
        TorrentSummary {
            info_hash,
            name: self.name.clone(),
            size: self.size,
            piece_count: self.piece_count,
            seeders,
            leechers,
            completed: self.completed,
            added_ms: self.added_ms,
            uploader: self.uploader.clone(),
        }
    }
}

/// Search order: newest first, then by info hash so that torrents published in the same
/// millisecond still come out in one order on every replica.
pub(crate) type NewestKey = (Reverse<u64>, InfoHash);

/// Every torrent, by info hash, with the search index.
///
/// A hash map serves the hot path (`Have` looks its torrent up ~100,000 times a second);
/// nothing iterates it where order could leak out. The `newest` B-tree holds every torrent
/// in search order with its lower-case name, so a search scans short strings in order and
/// never touches torrent files, and snapshots walk it for a replica-independent order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Torrents {
    pub(crate) by_hash: HashMap<InfoHash, TorrentEntry>,
    pub(crate) newest: BTreeMap<NewestKey, Box<str>>,
}

impl Torrents {
    /// Parses and stores a torrent file published by `uploader`: [`Output::Published`];
    /// a torrent already stored is left as it is: [`Output::AlreadyPublished`].
    pub(crate) fn publish(
        &mut self,
        file: &[u8],
        uploader: &str,
        now_ms: u64,
    ) -> Result<Output, ApiError> {
        let torrent = Torrent::parse(file).map_err(|e| ApiError::InvalidTorrent(e.to_string()))?;
        let info_hash = torrent.info_hash();
        if self.by_hash.contains_key(&info_hash) {
            return Ok(Output::AlreadyPublished(info_hash));
        }
        let entry = TorrentEntry {
            file: file.to_vec(),
            name: torrent.name().to_owned(),
            size: torrent.total_length(),
            piece_count: torrent.piece_count(),
            uploader: uploader.to_owned(),
            added_ms: now_ms,
            completed: 0,
            swarm: None,
        };
        self.insert(info_hash, entry);
        Ok(Output::Published(info_hash))
    }

    /// Stores an entry and indexes it (also used by restore).
    pub(crate) fn insert(&mut self, info_hash: InfoHash, entry: TorrentEntry) {
        self.newest.insert(
            (Reverse(entry.added_ms), info_hash),
            entry.name.to_lowercase().into_boxed_str(),
        );
        self.by_hash.insert(info_hash, entry);
    }

    /// A torrent.
    pub(crate) fn get(&self, info_hash: &InfoHash) -> Option<&TorrentEntry> {
        self.by_hash.get(info_hash)
    }

    /// A torrent, to change its swarm.
    pub(crate) fn get_mut(&mut self, info_hash: &InfoHash) -> Option<&mut TorrentEntry> {
        self.by_hash.get_mut(info_hash)
    }

    /// A torrent a request names, or the error that it is not known here.
    pub(crate) fn known(&self, info_hash: &InfoHash) -> Result<&TorrentEntry, ApiError> {
        self.get(info_hash)
            .ok_or(ApiError::UnknownTorrent(*info_hash))
    }

    /// [`Torrents::known`], to change its swarm.
    pub(crate) fn known_mut(
        &mut self,
        info_hash: &InfoHash,
    ) -> Result<&mut TorrentEntry, ApiError> {
        self.get_mut(info_hash)
            .ok_or(ApiError::UnknownTorrent(*info_hash))
    }

    /// Number of torrents.
    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Every torrent in search order (newest first), for snapshots and totals.
    pub(crate) fn iter_newest(&self) -> impl Iterator<Item = (InfoHash, &TorrentEntry)> {
        self.newest
            .keys()
            .filter_map(|(_, h)| self.by_hash.get(h).map(|e| (*h, e)))
    }
}
