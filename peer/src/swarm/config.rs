//! The swarm core's settings, each default with the reason for it.

use std::time::Duration;

use backoff::Backoff;

/// How the swarm core picks neighbours, sizes its request pipelines, gives up on slow or
/// failing neighbours and paces what it tells the tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmConfig {
    /// Most neighbours connected or being connected at once. 8: the tracker hands out 5 at
    /// join, which leaves room for 3 more found by asking it for a rare piece, without
    /// dropping a neighbour that is still useful.
    pub max_neighbours: usize,
    /// Fewest requests kept in flight per neighbour. 2: one piece is being sent while the
    /// next is already queued at the sender, so the link never idles for a round trip.
    pub min_in_flight: usize,
    /// Most requests in flight per neighbour. 64: bounds the work that is re-queued (and
    /// the bookkeeping held) when a neighbour fails, while still covering a fast link's
    /// bandwidth-delay product at usual piece sizes.
    pub max_in_flight: usize,
    /// How much data, in time at the neighbour's measured rate, to keep requested from it.
    /// 1 s: longer than any sane round trip, so the pipeline covers the bandwidth-delay
    /// product, and short enough that a neighbour that stalls holds little work hostage.
    pub queue_time: Duration,
    /// A neighbour with requests in flight that delivers nothing for this long (or does not
    /// send its bitfield this long after connecting) is disengaged. 15 s: a usable
    /// neighbour delivers a piece in well under that; one that does not is slower than
    /// what a replacement is likely to offer.
    pub request_timeout: Duration,
    /// A connection attempt that neither succeeds nor fails within this is abandoned. 10 s:
    /// a QUIC handshake takes a couple of round trips, so a remote this slow is down or
    /// unreachable.
    pub connect_timeout: Duration,
    /// Endgame starts when this few pieces are missing (it also starts whenever every
    /// missing piece is already requested). 8: the last pieces are
    /// where one slow neighbour holds back completion, and duplicating a handful of
    /// requests costs little.
    pub endgame_threshold: u32,
    /// New pieces are reported to the tracker at most this often. 2 s: each report is a
    /// replicated write, so batching keeps the tracker's load to one write per peer per
    /// interval while its record of who has what lags by no more than this.
    pub report_interval: Duration,
    /// A batch of new pieces this large is reported at once, without waiting for the
    /// interval. 256: keeps a report's size bounded on fast links.
    pub report_batch_max: usize,
    /// A heartbeat is due this often. 10 s: the tracker's default time-to-live is 30 s,
    /// so two heartbeats can be lost before the peer is dropped from the swarm.
    pub heartbeat_interval: Duration,
    /// How often the tracker is asked for peers (more neighbours, or holders of a rare
    /// piece): after each round of asks the wait grows along this back-off, and an answer
    /// that brings a new peer starts it over. 1 to 2 s at first, since new answers are
    /// unlikely sooner; at most 60 s, so that a small swarm with nobody new to offer does
    /// not have every peer poll the tracker every few seconds.
    pub tracker_backoff: Backoff,
    /// Pieces nobody connected has that are asked about in one round. 4: enough to find
    /// new holders quickly without flooding the tracker when many pieces are rare.
    pub rare_piece_asks: usize,
    /// How long to wait before reconnecting to a neighbour that failed. The project's one
    /// back-off policy (see [`backoff::Backoff`]).
    pub backoff: Backoff,
    /// After this many consecutive failures a peer is forgotten (it may be offered again by
    /// the tracker). 8: the back-off has then reached its cap of about 30 s and the peer has
    /// been failing for about a minute; the tracker's time-to-live has likely removed it.
    pub max_failures: u32,
    /// Most peers remembered at once (connected or not). 256: bounds memory against a
    /// tracker (or a bug) offering endless peers; far more than a swarm core needs.
    pub max_known_peers: usize,
    /// Seed of the core's random choices (ties in rarest-first, which peer to dial). The
    /// runtime sets it from the operating system's randomness so that peers choose
    /// differently; tests and simulations set it to replay. 0 by default so that a
    /// default-built core is reproducible.
    pub seed: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            max_neighbours: 8,
            min_in_flight: 2,
            max_in_flight: 64,
            queue_time: Duration::from_secs(1),
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            endgame_threshold: 8,
            report_interval: Duration::from_secs(2),
            report_batch_max: 256,
            heartbeat_interval: Duration::from_secs(10),
            tracker_backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            rare_piece_asks: 4,
            backoff: Backoff::default(),
            max_failures: 8,
            max_known_peers: 256,
            seed: 0,
        }
    }
}
