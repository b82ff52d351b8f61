//! One torrent's task: drives the swarm core with real links, the piece store and the
//! tracker, and publishes the torrent's status.
//!
//! Everything slow runs in tasks of its own (dials, piece transfers, disk writes, tracker
//! requests); they report back as [`Event`]s, so the loop only ever waits for the next
//! event or the core's next timeout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use certs::Fingerprint;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracker::Bitfield;
use tracker::api::{ApiError, PeerInfo};
use tracker::client::{Joined, TrackerClient, TrackerError};
use tracker::torrent::Torrent;

use super::link::{self, Link};
use super::status::{NeighbourStatus, Phase, TorrentStatus};
use super::{AddOptions, Entry, Shared};
use crate::storage::StorageError;
use crate::swarm::{Action, LinkState, PieceLayout, Swarm, SwarmConfig};
use crate::wire::{Control, PieceHeader, PieceRequest};

/// What the torrent's helpers and handles tell its task.
pub(crate) enum Event {
    /// A dial asked for by the core succeeded.
    Connected {
        info: PeerInfo,
        link: Link,
        bitfield: Bitfield,
        recv: transport::ChannelReceiver,
    },
    /// A dial failed.
    ConnectFailed { peer: Fingerprint, why: String },
    /// A peer dialled us for this torrent.
    Incoming {
        info: PeerInfo,
        link: Link,
        bitfield: Bitfield,
    },
    /// A neighbour announced a piece.
    Have { peer: Fingerprint, piece: u32 },
    /// A neighbour lost a piece.
    Lost { peer: Fingerprint, piece: u32 },
    /// A neighbour's control channel ended.
    LinkLost { peer: Fingerprint, link: u64 },
    /// A piece transfer ended.
    Fetched {
        peer: Fingerprint,
        piece: u32,
        outcome: Fetch,
    },
    /// The tracker offered peers.
    PeersOffered(Vec<PeerInfo>),
    /// A report to the tracker failed; these pieces are to be reported again, after
    /// joining the swarm again if the tracker said this peer is not in it.
    ReportFailed { have: Vec<u32>, rejoin: bool },
    /// Joining the swarm again succeeded, with these neighbours.
    Rejoined(Vec<PeerInfo>),
    /// Joining the swarm again failed; the next heartbeat tries again.
    RejoinFailed,
    /// Serving found one of our pieces lost or changed on disk.
    LocalPieceLost(u32),
    /// Saving progress to our own disk failed: the torrent stops with this error.
    StorageFailed(String),
    /// Pause (true) or resume (false).
    Pause(bool),
    /// Leave the swarm and stop.
    Remove,
}

/// How a piece transfer ended.
pub(crate) enum Fetch {
    /// Verified and written.
    Verified(u64),
    /// Failed its BLAKE3 check: the sender is banned.
    Corrupt,
    /// The neighbour does not have it.
    NotHave,
    /// The transfer failed (the neighbour is backed off).
    Failed(String),
    /// Writing to our own disk failed: the torrent stops with this error.
    LocalFailure(String),
}

/// The status a torrent starts with.
pub(crate) fn initial_status(torrent: &Torrent, path: &Path) -> TorrentStatus {
    TorrentStatus {
        info_hash: torrent.info_hash().to_string(),
        name: torrent.name().to_string(),
        path: path.display().to_string(),
        phase: Phase::Checking,
        pieces_have: 0,
        pieces_total: torrent.piece_count(),
        bytes_have: 0,
        bytes_total: torrent.total_length(),
        download_rate: 0.0,
        upload_rate: 0.0,
        downloaded: 0,
        uploaded: 0,
        piece_map: String::new(),
        neighbours: Vec::new(),
        tracker: None,
        tracker_failovers: 0,
        banned: 0,
    }
}

/// How often the status is refreshed and the progress checkpointed if due.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// Progress is made durable at least this often while pieces arrive, so a crash costs
/// at most this much re-hashing (never a re-download: unrecorded pieces are re-hashed).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

pub(crate) struct TorrentTask {
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    tracker: Arc<TrackerClient>,
    swarm: Swarm,
    /// Every neighbour with an open control channel, and its pieces as it last said. A
    /// link outlives the core's interest in downloading from it: the neighbour may be
    /// downloading from us, and closing the channel would tell it we are gone.
    links: HashMap<Fingerprint, (Link, Bitfield)>,
    /// Links replaced by a newer one from the same neighbour (both sides dialled at once),
    /// kept open until they end: dropping one would close the channel its other side may
    /// be keeping.
    replaced: HashMap<u64, Link>,
    fetches: HashMap<(Fingerprint, u32), JoinHandle<()>>,
    options: AddOptions,
    status: watch::Sender<TorrentStatus>,
    path: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    /// Pieces whose report to the tracker failed, to send with the next one.
    unreported: Vec<u32>,
    /// Whether the tracker has this peer in the swarm, as far as we know: false from the
    /// moment it answers [`ApiError::NotInSwarm`] (it expired us, say after the process
    /// was stopped for longer than the time to live) until a join succeeds again.
    in_swarm: bool,
    /// A join is under way.
    rejoining: bool,
    paused: bool,
    failed: Option<String>,
    downloaded: u64,
    rates: Rates,
    banned: u32,
    last_checkpoint: Instant,
}

impl TorrentTask {
    pub(crate) fn new(
        shared: Arc<Shared>,
        entry: Arc<Entry>,
        tracker: Arc<TrackerClient>,
        joined: Joined,
        options: AddOptions,
        status: watch::Sender<TorrentStatus>,
        path: PathBuf,
    ) -> Self {
        let now = Instant::now();
        let torrent = &entry.torrent;
        let layout = PieceLayout {
            piece_len: u64::from(torrent.piece_length()),
            total_len: torrent.total_length(),
        };
        let mut config: SwarmConfig = shared.config.swarm.clone();
        if config.seed == 0 {
            config.seed = rand::random();
        }
        // Heartbeat well within the tracker's time to live.
        config.heartbeat_interval = config.heartbeat_interval.min(joined.ttl / 3);
        let mut swarm = Swarm::new(
            config,
            shared.endpoint.fingerprint(),
            layout,
            entry.store.have(),
            now,
        );
        swarm.peers_offered(joined.neighbours, now);
        let events = entry.events.clone();
        TorrentTask {
            shared,
            entry,
            tracker,
            swarm,
            links: HashMap::new(),
            replaced: HashMap::new(),
            fetches: HashMap::new(),
            options,
            status,
            path,
            events,
            unreported: Vec::new(),
            in_swarm: true,
            rejoining: false,
            paused: false,
            failed: None,
            downloaded: 0,
            rates: Rates::new(now),
            banned: 0,
            last_checkpoint: now,
        }
    }

    pub(crate) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Event>) {
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.carry_out_actions();
            let deadline = self
                .swarm
                .next_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                event = inbox.recv() => {
                    let Some(event) = event else { return };
                    if !self.handle(event) {
                        self.publish_status();
                        return;
                    }
                    // Take every event already queued before acting on the core's output.
                    while let Ok(event) = inbox.try_recv() {
                        if !self.handle(event) {
                            self.publish_status();
                            return;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if !self.paused {
                        self.swarm.tick(Instant::now());
                    }
                }
                _ = status_tick.tick() => {
                    self.checkpoint_if_due(false);
                    self.publish_status();
                }
            }
        }
    }

    /// Feeds one event to the core. Returns false when the task should end.
    fn handle(&mut self, event: Event) -> bool {
        let now = Instant::now();
        match event {
            Event::Connected {
                info,
                link,
                bitfield,
                recv,
            } => {
                let peer = info.fingerprint;
                link::spawn_reader(recv, peer, link.id, self.piece_count(), self.events.clone());
                tokio::spawn(super::serve::serve_connection(
                    self.shared.clone(),
                    link.connection.clone(),
                ));
                self.add_link(peer, link, bitfield.clone());
                self.swarm.connected(peer, now);
                self.swarm.bitfield_received(peer, bitfield, now);
            }
            Event::ConnectFailed { peer, why } => {
                tracing::debug!(%peer, "cannot reach neighbour: {why}");
                self.swarm.connect_failed(peer, now);
            }
            Event::Incoming {
                info,
                link,
                bitfield,
            } => {
                let peer = info.fingerprint;
                if self.swarm.is_banned(&peer) {
                    link.connection.close(1, "banned: sent corrupt data");
                    return true;
                }
                self.add_link(peer, link, bitfield.clone());
                self.swarm.peers_offered(vec![info], now);
                self.swarm.connected(peer, now);
                self.swarm.bitfield_received(peer, bitfield, now);
            }
            Event::Have { peer, piece } => {
                if let Some((_, bitfield)) = self.links.get_mut(&peer) {
                    bitfield.set(piece);
                }
                self.swarm.have_received(peer, piece, now);
            }
            Event::Lost { peer, piece } => {
                if let Some((_, bitfield)) = self.links.get_mut(&peer) {
                    bitfield.clear(piece);
                }
                self.swarm.not_have(peer, piece, now);
            }
            Event::LinkLost { peer, link } => {
                if self.replaced.remove(&link).is_none()
                    && self.links.get(&peer).is_some_and(|(l, _)| l.id == link)
                {
                    self.links.remove(&peer);
                    self.abort_fetches_of(peer);
                    self.swarm.disconnected(peer, now);
                }
            }
            Event::Fetched {
                peer,
                piece,
                outcome,
            } => {
                self.fetches.remove(&(peer, piece));
                match outcome {
                    Fetch::Verified(len) => {
                        self.downloaded += len;
                        self.swarm.piece_received(peer, piece, true, now);
                        self.checkpoint_if_due(false);
                    }
                    Fetch::Corrupt => {
                        // Pieces already in flight from it may fail too: count it once.
                        if !self.swarm.is_banned(&peer) {
                            tracing::warn!(%peer, piece, "neighbour sent a corrupt piece: banned");
                            self.banned += 1;
                        }
                        self.shared.ban(peer);
                        self.swarm.piece_received(peer, piece, false, now);
                    }
                    Fetch::NotHave => self.swarm.not_have(peer, piece, now),
                    Fetch::Failed(why) => {
                        tracing::debug!(%peer, piece, "piece request failed: {why}");
                        self.swarm.request_failed(peer, piece, now);
                    }
                    Fetch::LocalFailure(why) => {
                        self.fail(why);
                    }
                }
            }
            Event::PeersOffered(peers) => self.swarm.peers_offered(peers, now),
            Event::ReportFailed { have, rejoin } => {
                self.unreported.extend(have);
                if rejoin {
                    self.rejoin();
                }
            }
            Event::Rejoined(neighbours) => {
                tracing::info!(torrent = %self.entry.torrent.name(), "back in the swarm");
                self.rejoining = false;
                self.in_swarm = true;
                self.swarm.peers_offered(neighbours, now);
            }
            Event::RejoinFailed => self.rejoining = false,
            Event::StorageFailed(why) => self.fail(why),
            Event::LocalPieceLost(piece) => {
                // The store cleared the piece when reading it failed verification.
                self.swarm.local_piece_lost(piece, now);
                self.broadcast(Control::Lost(piece));
            }
            Event::Pause(pause) => {
                self.paused = pause;
                self.entry
                    .serving
                    .store(!pause && self.serves_when_complete(), Ordering::Relaxed);
                if pause {
                    for (_, task) in self.fetches.drain() {
                        task.abort();
                    }
                    for (peer, _) in self.links.drain() {
                        self.swarm.disconnected(peer, now);
                    }
                }
            }
            Event::Remove => {
                for (_, task) in self.fetches.drain() {
                    task.abort();
                }
                self.entry.serving.store(false, Ordering::Relaxed);
                self.checkpoint_if_due(true);
                let tracker = self.tracker.clone();
                let info_hash = self.entry.torrent.info_hash();
                tokio::spawn(async move {
                    let _ = tracker.leave(info_hash).await;
                });
                return false;
            }
        }
        true
    }

    /// Makes `link` the neighbour's current link; an older one is kept until it ends.
    fn add_link(&mut self, peer: Fingerprint, link: Link, bitfield: Bitfield) {
        if let Some((old, _)) = self.links.insert(peer, (link, bitfield)) {
            self.replaced.insert(old.id, old);
        }
    }

    fn serves_when_complete(&self) -> bool {
        self.options.seed || !self.swarm.is_complete()
    }

    fn piece_count(&self) -> u32 {
        self.entry.torrent.piece_count()
    }

    fn fail(&mut self, why: String) {
        tracing::error!("{}: {why}", self.entry.torrent.name());
        self.failed = Some(why);
        self.paused = true;
        for (_, task) in self.fetches.drain() {
            task.abort();
        }
    }

    /// Carries out what the core decided.
    fn carry_out_actions(&mut self) {
        while let Some(action) = self.swarm.poll_output() {
            tracing::trace!(me = %self.shared.advertise, "action {action:?}");
            if self.paused && !matches!(action, Action::ReportNotHave(_)) {
                continue;
            }
            match action {
                Action::Connect(info) => self.connect(info),
                Action::Disconnect { peer, banned } => {
                    self.abort_fetches_of(peer);
                    // The core stops downloading from it; the link stays up unless the
                    // neighbour is hostile, since it may be downloading from us.
                    if banned && let Some((link, _)) = self.links.remove(&peer) {
                        link.connection.close(1, "banned: sent corrupt data");
                    }
                }
                Action::Request { peer, piece } => self.request(peer, piece),
                Action::Cancel { peer, piece } => {
                    if let Some(task) = self.fetches.remove(&(peer, piece)) {
                        task.abort();
                    }
                }
                Action::AskTrackerForPeers { exclude, want } => {
                    let tracker = self.tracker.clone();
                    let events = self.events.clone();
                    let info_hash = self.entry.torrent.info_hash();
                    tokio::spawn(async move {
                        match tracker.more_peers(info_hash, exclude, want).await {
                            Ok(peers) => {
                                let _ = events.send(Event::PeersOffered(peers));
                            }
                            Err(e) => tracing::debug!("asking the tracker for peers: {e}"),
                        }
                    });
                }
                Action::AskTrackerForPiece(piece) => {
                    let tracker = self.tracker.clone();
                    let events = self.events.clone();
                    let info_hash = self.entry.torrent.info_hash();
                    tokio::spawn(async move {
                        match tracker.peers_with_piece(info_hash, piece, 5).await {
                            Ok(peers) => {
                                let _ = events.send(Event::PeersOffered(peers));
                            }
                            Err(e) => tracing::debug!("asking the tracker for piece {piece}: {e}"),
                        }
                    });
                }
                Action::ReportHave(mut pieces) => {
                    pieces.append(&mut self.unreported);
                    self.report(pieces);
                }
                Action::ReportNotHave(pieces) => {
                    let tracker = self.tracker.clone();
                    let info_hash = self.entry.torrent.info_hash();
                    tokio::spawn(async move {
                        if let Err(e) = tracker.not_have(info_hash, pieces).await {
                            tracing::warn!("telling the tracker of a lost piece: {e}");
                        }
                    });
                }
                Action::Heartbeat => {
                    let tracker = self.tracker.clone();
                    let events = self.events.clone();
                    let pending = std::mem::take(&mut self.unreported);
                    let info_hash = self.entry.torrent.info_hash();
                    tokio::spawn(async move {
                        if let Err(e) = tracker.heartbeat(info_hash).await {
                            if not_in_swarm(&e) {
                                // Expired: join again at once, with every piece held
                                // (which covers the pending ones, kept all the same).
                                tracing::warn!("{e}");
                                let _ = events.send(Event::ReportFailed {
                                    have: pending,
                                    rejoin: true,
                                });
                                return;
                            }
                            tracing::warn!("heartbeat to the tracker failed: {e}");
                        }
                        if !pending.is_empty()
                            && let Err(e) = tracker.have(info_hash, pending.clone()).await
                        {
                            // Kept for the next report whatever the failure; a peer the
                            // tracker expired joins again first.
                            let _ = events.send(Event::ReportFailed {
                                have: pending,
                                rejoin: not_in_swarm(&e),
                            });
                        }
                    });
                }
                Action::Advertise(piece) => self.broadcast(Control::Have(piece)),
                Action::Complete => {
                    self.checkpoint_if_due(true);
                    self.entry
                        .serving
                        .store(self.options.seed && !self.paused, Ordering::Relaxed);
                }
            }
        }
    }

    fn broadcast(&self, message: Control) {
        for (link, _) in self.links.values() {
            let _ = link.control.send(message.clone());
        }
    }

    fn report(&mut self, pieces: Vec<u32>) {
        if pieces.is_empty() {
            return;
        }
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        tokio::spawn(async move {
            match tracker.have(info_hash, pieces.clone()).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!("reporting pieces to the tracker: {e}");
                    // Expired from the swarm (for example after a long partition): join
                    // again, then report.
                    let _ = events.send(Event::ReportFailed {
                        have: pieces,
                        rejoin: not_in_swarm(&e),
                    });
                }
            }
        });
    }

    /// Joins the swarm again (once at a time), saying every piece held.
    fn rejoin(&mut self) {
        self.in_swarm = false;
        if self.rejoining {
            return;
        }
        self.rejoining = true;
        let tracker = self.tracker.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        let have = self.entry.store.have();
        let addr = self.shared.advertise;
        let want = self.shared.config.swarm.max_neighbours as u32;
        tokio::spawn(async move {
            let event = match tracker.join(info_hash, addr, have, want).await {
                Ok(joined) => Event::Rejoined(joined.neighbours),
                Err(e) => {
                    tracing::warn!("joining the swarm again: {e}");
                    Event::RejoinFailed
                }
            };
            let _ = events.send(event);
        });
    }

    fn connect(&mut self, info: PeerInfo) {
        let peer = info.fingerprint;
        if let Some((_, bitfield)) = self.links.get(&peer) {
            // Already linked (it dialled us, or an earlier link is still up).
            let bitfield = bitfield.clone();
            let now = Instant::now();
            self.swarm.connected(peer, now);
            self.swarm.bitfield_received(peer, bitfield, now);
            return;
        }
        if self.shared.is_banned(&peer) {
            self.swarm.connect_failed(peer, Instant::now());
            return;
        }
        let shared = self.shared.clone();
        let events = self.events.clone();
        let info_hash = self.entry.torrent.info_hash();
        let have = self.entry.store.have();
        tokio::spawn(async move {
            let event = match link::dial(&shared, &info, info_hash, have).await {
                Ok((link, bitfield, recv)) => Event::Connected {
                    info,
                    link,
                    bitfield,
                    recv,
                },
                Err(why) => Event::ConnectFailed { peer, why },
            };
            let _ = events.send(event);
        });
    }

    fn request(&mut self, peer: Fingerprint, piece: u32) {
        let Some((link, _)) = self.links.get(&peer) else {
            self.swarm.request_failed(peer, piece, Instant::now());
            return;
        };
        let Some(len) = self.entry.torrent.piece_len(piece) else {
            return;
        };
        let connection = link.connection.clone();
        let entry = self.entry.clone();
        let events = self.events.clone();
        let budget = self.shared.download_buffer.clone();
        let budget_kib = u32::try_from(self.shared.config.download_buffer >> 10)
            .unwrap_or(u32::MAX)
            .max(1);
        let task = tokio::spawn(async move {
            let outcome = fetch(&connection, &entry, (&budget, budget_kib), piece, len).await;
            let _ = events.send(Event::Fetched {
                peer,
                piece,
                outcome,
            });
        });
        if let Some(old) = self.fetches.insert((peer, piece), task) {
            old.abort();
        }
    }

    fn abort_fetches_of(&mut self, peer: Fingerprint) {
        self.fetches.retain(|(p, _), task| {
            if *p == peer {
                task.abort();
                false
            } else {
                true
            }
        });
    }

    fn checkpoint_if_due(&mut self, force: bool) {
        let store = &self.entry.store;
        if store.unsaved_changes() == 0 {
            return;
        }
        if !force && self.last_checkpoint.elapsed() < CHECKPOINT_INTERVAL {
            return;
        }
        self.last_checkpoint = Instant::now();
        let store = store.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.checkpoint() {
                let _ = events.send(Event::StorageFailed(format!("saving progress: {e}")));
            }
        });
    }

    fn publish_status(&mut self) {
        let now = Instant::now();
        let uploaded = self.entry.uploaded.load(Ordering::Relaxed);
        self.rates.update(now, self.downloaded, uploaded);
        let progress = self.swarm.progress();
        let phase = if let Some(why) = &self.failed {
            Phase::Failed(why.clone())
        } else if self.paused {
            Phase::Paused
        } else if !self.in_swarm {
            // Not seeding or downloading while the tracker does not list us.
            Phase::Joining
        } else if progress.complete {
            if self.options.seed {
                Phase::Seeding
            } else {
                Phase::Complete
            }
        } else {
            Phase::Downloading
        };
        let mut neighbours: Vec<NeighbourStatus> = self
            .swarm
            .peers()
            .into_iter()
            .filter(|p| p.state != LinkState::Idle)
            .map(|p| NeighbourStatus {
                fingerprint: p.peer.to_string(),
                addr: p.addr,
                state: match p.state {
                    LinkState::Idle => "idle",
                    LinkState::BackedOff(_) => "backed off",
                    LinkState::Connecting => "connecting",
                    LinkState::Connected => "connected",
                }
                .to_string(),
                rate: p.rate,
                in_flight: p.in_flight,
                pieces: p.pieces,
            })
            .collect();
        // The core counts only the neighbours it downloads from; a link it does not use
        // (every link of a seeder, which downloads nothing) is still a neighbour that
        // downloads from us.
        for (peer, (link, bitfield)) in &self.links {
            let fingerprint = peer.to_string();
            match neighbours.iter_mut().find(|n| n.fingerprint == fingerprint) {
                Some(n) => n.state = "connected".into(),
                None => neighbours.push(NeighbourStatus {
                    fingerprint,
                    addr: link.connection.remote_address(),
                    state: "connected".into(),
                    rate: 0.0,
                    in_flight: 0,
                    pieces: bitfield.count(),
                }),
            }
        }
        let status = TorrentStatus {
            phase,
            pieces_have: progress.pieces_have,
            pieces_total: progress.pieces_total,
            bytes_have: progress.bytes_have,
            bytes_total: progress.bytes_total,
            download_rate: self.rates.down,
            upload_rate: self.rates.up,
            downloaded: self.downloaded,
            uploaded,
            piece_map: piece_map(self.swarm.have()),
            neighbours,
            tracker: self.tracker.current_node(),
            tracker_failovers: self.tracker.failovers(),
            banned: self.banned,
            ..initial_status(&self.entry.torrent, &self.path)
        };
        self.status.send_replace(status);
    }
}

/// Whether the tracker said this peer is not in the swarm, so it must join again.
fn not_in_swarm(e: &TrackerError) -> bool {
    matches!(e, TrackerError::Refused(ApiError::NotInSwarm(_)))
}

/// Downloads one piece from a neighbour, verifies it and writes it.
async fn fetch(
    connection: &transport::Connection,
    entry: &Arc<Entry>,
    (budget, budget_kib): (&Arc<tokio::sync::Semaphore>, u32),
    piece: u32,
    len: u64,
) -> Fetch {
    // A piece larger than the whole budget is fetched alone.
    let kib = u32::try_from(len.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(budget_kib);
    let Ok(_permit) = budget.clone().acquire_many_owned(kib).await else {
        return Fetch::Failed("shutting down".into());
    };
    let request = PieceRequest {
        info_hash: entry.torrent.info_hash(),
        piece,
    };
    tracing::trace!(piece, remote = %connection.remote_address(), "requesting");
    let (header, mut body) = match connection.request_chunk::<_, PieceHeader>(&request).await {
        Ok(answer) => answer,
        Err(e) => return Fetch::Failed(e.to_string()),
    };
    match header {
        PieceHeader::Data { len: sent } if sent == len => {}
        PieceHeader::Data { len: sent } => {
            return Fetch::Failed(format!("announced {sent} bytes for a piece of {len}"));
        }
        PieceHeader::NotHave => return Fetch::NotHave,
        PieceHeader::UnknownTorrent => return Fetch::Failed("does not serve this torrent".into()),
        PieceHeader::Busy => return Fetch::Failed("busy".into()),
    }
    let Ok(expected) = usize::try_from(len) else {
        return Fetch::Failed("piece too large for this machine".into());
    };
    // One copy out of QUIC's buffers into a reused piece buffer: the hash then runs over
    // contiguous memory at full speed and the piece is written with one call per file,
    // covering whole pages (partial-page writes make the file system zero the rest).
    let mut buffer = entry.buffers.take(expected);
    if let Err(e) = body.read_exact_body(&mut buffer).await {
        return Fetch::Failed(e.to_string());
    }
    tracing::trace!(piece, "received");
    let store = entry.store.clone();
    let written = tokio::task::spawn_blocking(move || store.write_piece(piece, &buffer)).await;
    match written {
        Ok(Ok(())) => Fetch::Verified(len),
        Ok(Err(StorageError::HashMismatch { .. } | StorageError::WrongLength { .. })) => {
            Fetch::Corrupt
        }
        Ok(Err(e)) => Fetch::LocalFailure(e.to_string()),
        Err(e) => Fetch::LocalFailure(format!("writing piece {piece}: {e}")),
    }
}

/// A piece map of at most 1,024 characters: `#` held, `.` missing, `+` partly held when
/// several pieces share one character.
fn piece_map(have: &Bitfield) -> String {
    let count = have.len();
    if count == 0 {
        return String::new();
    }
    let width = count.min(1024);
    (0..width)
        .map(|i| {
            let start = u64::from(i) * u64::from(count) / u64::from(width);
            let end = (u64::from(i) + 1) * u64::from(count) / u64::from(width);
            let held = (start..end).filter(|&p| have.get(p as u32)).count() as u64;
            if held == end - start {
                '#'
            } else if held == 0 {
                '.'
            } else {
                '+'
            }
        })
        .collect()
}

/// Download and upload rates, smoothed over a few seconds.
struct Rates {
    last: Instant,
    last_down: u64,
    last_up: u64,
    down: f64,
    up: f64,
}

impl Rates {
    fn new(now: Instant) -> Self {
        Rates {
            last: now,
            last_down: 0,
            last_up: 0,
            down: 0.0,
            up: 0.0,
        }
    }

    fn update(&mut self, now: Instant, down: u64, up: u64) {
        let dt = now.duration_since(self.last).as_secs_f64();
        if dt < 0.2 {
            return;
        }
        // An exponential moving average with a time constant of about 2 s.
        let alpha = (dt / 2.0).min(1.0);
        let down_now = (down - self.last_down) as f64 / dt;
        let up_now = up.saturating_sub(self.last_up) as f64 / dt;
        self.down += alpha * (down_now - self.down);
        self.up += alpha * (up_now - self.up);
        self.last = now;
        self.last_down = down;
        self.last_up = up;
    }
}
