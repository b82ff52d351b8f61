//! One torrent's task: drives the swarm core with real links, the piece store and the
//! tracker, and publishes the torrent's status.
//!
//! Everything slow runs in tasks of its own (dials, piece transfers, disk writes, tracker
//! requests); they report back as [`Event`]s, so the loop only ever waits for the next
//! event or the core's next timeout.
//!
//! This module holds the task's state and its loop; each concern is a file of its own:
//! [`handle`] feeds events to the core, [`actions`] carries out the core's decisions,
//! [`dial`] keeps the links to neighbours, [`download`] fetches pieces, [`announce`]
//! talks to the tracker, [`checkpoint`] makes progress durable and [`publish`] publishes
//! the status.

mod actions;
mod announce;
mod checkpoint;
mod dial;
mod download;
mod handle;
mod publish;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::Fingerprint;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracker::Bitfield;
use tracker::client::{Joined, TrackerClient};

use super::events::Event;
use super::link::Link;
use super::status::TorrentStatus;
use super::{AddOptions, Entry, Shared};
use crate::swarm::{PieceLayout, Swarm, SwarmConfig};

use publish::Rates;
pub(crate) use publish::initial_status;

/// How often the status is refreshed and the progress checkpointed if due.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// One torrent's task: its state, and the loop that feeds events to the swarm core.
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
    /// Requests from neighbours waiting for the core to grant or refuse an upload slot.
    upload_grants: HashMap<(Fingerprint, u32), tokio::sync::oneshot::Sender<bool>>,
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
        swarm.handle_peers_offered(joined.neighbours, now);
        let events = entry.events.clone();
        TorrentTask {
            shared,
            entry,
            tracker,
            swarm,
            links: HashMap::new(),
            replaced: HashMap::new(),
            fetches: HashMap::new(),
            upload_grants: HashMap::new(),
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
                    self.publish_phase_change();
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if !self.paused {
                        self.swarm.handle_timeout(Instant::now());
                    }
                }
                _ = status_tick.tick() => {
                    self.checkpoint_if_due(false);
                    self.publish_status();
                }
            }
        }
    }
}
