//! The swarm core's settings, each default with the reason for it.

use std::time::Duration;

use backoff::Backoff;

/// How the swarm core picks neighbours, sizes its request pipelines, gives up on slow or
/// failing neighbours and paces what it tells the tracker.
///
/// Laid out in the order written (`repr(C)`): the settings read on every input, by the
/// pipelines and timeouts, come first and share a cache line (see [`Swarm`](super::Swarm)).
#[derive(Debug, Clone, PartialEq)]
#[repr(C)]
pub struct SwarmConfig {
    /// Most neighbours connected or being connected at once (also how many the tracker is
    /// asked for at join). 32, by measurement in the swarm simulator (`swarm-scale`, 300
    /// leechers, flash crowd, uplinks scarce): 16 neighbours kept 82 % of the swarm's
    /// uplink busy, 24 92 %, 32 95 % (p50 1.14 T*); the earlier 8 (with a 1 s queue) 47 %.
    /// Each neighbour costs a QUIC connection and its piece announcements, which is cheap
    /// next to idle uplinks.
    pub max_neighbours: usize,
    /// A neighbour with nothing we need is swapped for a waiting candidate only once it has
    /// been connected this long. At the start of a flash crowd every neighbour is empty,
    /// and without a tenure each one is swapped the moment it says so: in simulation
    /// (10,000 leechers) peers dialled about 260 times a second each and the first 4 s of
    /// swarm took 5 minutes to simulate; with 1 s, 88 dials per peer in the first 8 s and
    /// the whole run took 25 CPU-minutes (54 before this and the announcement batches). At
    /// 1,000 leechers 0 / 0.5 / 1 / 2 / 4 s finished at p50 1.150 / 1.209 / 1.133 / 1.212 /
    /// 1.274 T*. 1 s by default. It needs a seeder that spreads its copies evenly (see
    /// `upload`): before that, in the churn scenario (1,000 leechers arriving over 5
    /// minutes, 20 % leaving early, the seeder leaving after 2 copies' worth) a leecher
    /// left holding the last copy of 3 pieces and no leecher finished; the seeder had sent
    /// some pieces 14 times and others once. With the spreading, 1 to 7 times, and every
    /// leecher finishes.
    pub swap_tenure: Duration,
    /// Fewest requests kept in flight per neighbour. 2: one piece is being sent while the
    /// next is already queued at the sender, so the link never idles for a round trip.
    pub min_in_flight: usize,
    /// Most requests in flight per neighbour. 64: bounds the work that is re-queued (and
    /// the bookkeeping held) when a neighbour fails, while still covering a fast link's
    /// bandwidth-delay product at usual piece sizes.
    pub max_in_flight: usize,
    /// How much data, in time at the neighbour's measured rate, to keep requested from it.
    /// 300 ms: longer than usual round trips, so the pipeline covers the bandwidth-delay
    /// product, and short, so that few pieces are committed to one neighbour while others
    /// could deliver them sooner. In simulation (300 leechers, 16 neighbours) 300 ms
    /// reached p50 1.22 T* where 1 s reached 1.38 T* and 3 s 1.82 T*.
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
    /// New pieces are announced to neighbours at most this often: a piece gained after a
    /// quiet spell goes at once, those gained within the interval after it go together at
    /// its end. 100 ms: in simulation (1,000 leechers, flash crowd) 0 / 100 / 250 / 500 ms
    /// took 61.6 / 35.3 / 20.8 / 14.1 M events and finished at p50 1.135 / 1.150 / 1.162 /
    /// 1.164 T*: 100 ms halves the messages for 1 % of completion time, longer intervals
    /// save less and delay rare pieces more.
    pub announce_interval: Duration,
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
    /// Fewest uploads served at once. 2: one piece is sent while the next is read from
    /// disk, so the uplink never idles between pieces; more would only slow each piece
    /// down (see `upload`: in simulation, 2 slots reached 92 % uplink use, 8 slots 70 %).
    pub min_upload_slots: usize,
    /// Most uploads served at once. 8: the runtime's serving limit; reached only on fast
    /// links with small pieces, where reading pieces is what must overlap.
    pub max_upload_slots: usize,
    /// Slots are sized so that each piece is sent in about this long at an equal share of
    /// the measured uplink. 20 ms: a 1 Gbit/s uplink with 1 MiB pieces gets 2 slots, a
    /// loopback link with 256 KiB pieces all 8.
    pub upload_slot_time: Duration,
    /// A request that has waited this long for a slot goes before any other. 8 s: about
    /// half the requester's [`request_timeout`](Self::request_timeout), so that favouring
    /// needy neighbours never makes another give up on this peer; shorter waits undo the
    /// ordering (in simulation 2 s cost 0.3 T* at p99).
    pub upload_max_wait: Duration,
    /// Most requests waiting for a slot; beyond it the least urgent one is refused as
    /// "busy" and asked elsewhere. 512: only a first seeder facing hundreds of empty-handed
    /// leechers at once fills it (each keeps two requests with it); a small queue refused
    /// so much in simulation that uplink use fell from 87 % to 82 % at 64. Once the uplink
    /// is measured, the queue is also held to what it sends within
    /// [`upload_max_wait`](Self::upload_max_wait) (at least 16): a 20 Mbit/s peer with
    /// 1 MiB pieces keeps 19. Past that wait every request goes first whoever sent it, so a
    /// longer queue undid the precedence of the neediest neighbours: in a simulated flash
    /// crowd of 3,000, the slowest leechers got a piece every 5 s from each neighbour like
    /// everyone else, and the last finished at 1.394 T* (p99 1.201); with the limit 1.255
    /// T*, and uplink use rose from 86.1 % to 95.8 %.
    pub max_upload_queue: usize,
    /// A neighbour that answered "busy" is not asked again for this long. 1 s: its queue
    /// was full, which takes about that long to drain at usual piece times.
    pub busy_backoff: Duration,
    /// A complete peer whose uplink has had nothing to send for this long asks the tracker
    /// for peers that lack pieces and dials them, offering its uplink (they take it as a
    /// neighbour if they have room). 5 s: long enough that a seeder between two requests
    /// does not ask, short next to a download of any size. Asks are spaced by
    /// [`tracker_backoff`](Self::tracker_backoff).
    pub idle_uplink_after: Duration,
    /// A neighbour that answers "not have" to this many requests for pieces it announced
    /// is let go and backed off. 8: a peer whose disk lost a few pieces stays (it also
    /// says so unasked), while one that claims pieces it does not have stops costing a
    /// round trip per piece (in simulation, a liar drew 209 refused requests per peer).
    pub max_false_claims: u32,
    /// Seed of the core's random choices (ties in rarest-first, which peer to dial). The
    /// runtime sets it from the operating system's randomness so that peers choose
    /// differently; tests and simulations set it to replay. 0 by default so that a
    /// default-built core is reproducible.
    pub seed: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            max_neighbours: 32,
            swap_tenure: Duration::from_secs(1),
            min_in_flight: 2,
            max_in_flight: 64,
            queue_time: Duration::from_millis(300),
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            endgame_threshold: 8,
            report_interval: Duration::from_secs(2),
            report_batch_max: 256,
            announce_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_secs(10),
            tracker_backoff: Backoff {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(60),
            },
            rare_piece_asks: 4,
            backoff: Backoff::default(),
            max_failures: 8,
            max_known_peers: 256,
            min_upload_slots: 2,
            max_upload_slots: 8,
            upload_slot_time: Duration::from_millis(20),
            upload_max_wait: Duration::from_secs(8),
            max_upload_queue: 512,
            busy_backoff: Duration::from_secs(1),
            idle_uplink_after: Duration::from_secs(5),
            max_false_claims: 8,
            seed: 0,
        }
    }
}
