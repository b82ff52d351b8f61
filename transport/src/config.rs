//! Endpoint configuration and the QUIC transport parameters chosen for bulk transfer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::frame::DEFAULT_MAX_FRAME;
use crate::trust::InboundTrust;

/// ALPN of the peer-to-peer protocol (piece exchange).
pub const ALPN_PEER: &[u8] = b"bytetorrent/peer/2";
/// ALPN of the consensus protocol between tracker nodes.
///
/// Version 2: fingerprints and digests inside commands are `bin`, addresses `"ip:port"`
/// text. A node offering only version 1 fails the handshake with
/// `no_application_protocol`; a cluster is upgraded all at once (its log and snapshots
/// written by version 1 are still read).
pub const ALPN_PAXOS: &[u8] = b"bytetorrent/paxos/2";

/// How an [`Endpoint`](crate::Endpoint) listens, dials and whom it trusts.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// UDP address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Which clients are accepted.
    pub inbound: InboundTrust,
    /// The protocols (ALPNs) this endpoint serves; a client offering none of them is
    /// refused during the handshake. Empty means the endpoint only dials.
    pub alpns: Vec<Vec<u8>>,
    /// Largest frame body accepted or sent, in bytes, on a connection whose protocol has
    /// no entry in `alpn_max_frames`.
    pub max_frame: usize,
    /// Largest frame body per protocol (ALPN), for an endpoint that speaks protocols with
    /// different maximums (a peer serves `bytetorrent/peer/2` and dials trackers, whose
    /// frames carry whole torrent files). See [`EndpointConfig::max_frame_for`].
    pub alpn_max_frames: Vec<(Vec<u8>, usize)>,
    /// How long a dial may take before it counts as failed. 5 s: a handshake on a LAN
    /// takes about one round trip; five seconds leaves room for loss and slow CPUs while
    /// still moving on from a dead remote quickly.
    pub connect_timeout: Duration,
    /// QUIC flow-control and socket tuning.
    pub tuning: Tuning,
}

impl EndpointConfig {
    /// A configuration that binds `bind`, serves `alpns` and accepts clients per `inbound`,
    /// with the default limits and tuning.
    pub fn new(bind: SocketAddr, inbound: InboundTrust, alpns: &[&[u8]]) -> Self {
        EndpointConfig {
            bind,
            inbound,
            alpns: alpns.iter().map(|a| a.to_vec()).collect(),
            max_frame: DEFAULT_MAX_FRAME,
            alpn_max_frames: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            tuning: Tuning::default(),
        }
    }

    /// The largest frame body on a connection speaking `alpn`: its entry in
    /// `alpn_max_frames`, or else `max_frame`.
    pub fn max_frame_for(&self, alpn: &[u8]) -> usize {
        self.alpn_max_frames
            .iter()
            .find(|(a, _)| a == alpn)
            .map_or(self.max_frame, |(_, max)| *max)
    }
}

/// QUIC parameters for moving large files.
///
/// The windows come from the bandwidth-delay product we design for: 10 Gbit/s at 10 ms
/// RTT is 12.5 MB in flight per connection. quinn's defaults (1.25 MB per stream) cap a
/// single stream at 100 Mbit/s per 100 ms of RTT, which is too little for one big chunk
/// stream on a fast LAN. The transport benchmark (`cargo bench -p transport`) compares
/// these values with quinn's defaults.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Per-stream receive window: 16 MiB, so one stream alone can fill the BDP above.
    pub stream_receive_window: u32,
    /// Per-connection receive window: 64 MiB, room for several chunk streams at once.
    pub receive_window: u32,
    /// Per-connection send buffer: 64 MiB, matching the receive window.
    pub send_window: u64,
    /// Concurrent bidirectional streams the remote may open: 1,024. Each chunk request is
    /// a stream, and a peer keeps tens of requests in flight per neighbour.
    pub max_concurrent_bidi_streams: u32,
    /// Keep-alive: 5 s, well inside the idle timeout and NAT binding lifetimes.
    pub keep_alive_interval: Duration,
    /// Idle timeout: 30 s without any packet closes the connection.
    pub idle_timeout: Duration,
    /// UDP socket send and receive buffers: 512 KiB (Linux caps them at
    /// `net.core.{r,w}mem_max`; its default is 208 KiB), about 0.8 ms of traffic at
    /// 5 Gbit/s, so short bursts are not dropped by the kernel.
    ///
    /// Measured with `cargo bench -p transport --bench throughput` (1 GiB over loopback,
    /// 2 cores shared with other work, two back-to-back A/B pairs of 3 rounds each):
    /// with 4 MiB our transport spent 2.2–2.3 CPU s per GiB where bare quinn spent
    /// 1.8–2.2, and reached only 69–79 % of bare quinn's throughput on one stream (76–106 %
    /// on 16 × 4 MiB streams); with 512 KiB it spent 1.8–2.0 CPU s, as bare quinn did, and
    /// reached 124–128 % on one stream and 100 % on 16 streams (probably because deep queues
    /// let the sender run far ahead of a descheduled receiver, which then reads packets that
    /// have left the cache). Only loopback was measured: a real network whose receivers
    /// stall for longer may want more.
    pub socket_buffer: usize,
    /// Round-robin between streams of equal priority. Off: each stream is sent to the end
    /// before the next, so chunks complete one after another (earliest completion) instead
    /// of all finishing late together.
    pub send_fairness: bool,
    /// Largest UDP payload probed for by path MTU discovery: 1,452 bytes (quinn's own
    /// bound: a 1,500-byte Ethernet frame less IPv6 and UDP headers). Jumbo packets
    /// (8,952) looked cheaper while pieces were written to disk in one call per QUIC
    /// buffer; with whole-piece writes they are not, and on a 2-core machine the
    /// transport benchmark moved one stream at 359 MB/s with them against 657 MB/s
    /// without (2.98 against 2.67 CPU seconds per GiB under the same load), and a
    /// 4-leecher swarm used 5 % less CPU without them.
    pub max_udp_payload: u16,
    /// Whether a connection may hand the kernel up to 10 packets in one send
    /// (segmentation offload): on by default, it is what lets one core move chunk streams
    /// at full speed. Each connection then keeps a send buffer of 10 packets (about
    /// 15 KiB) for its life. A server of many connections that each send a few small
    /// messages, like a tracker node's peer endpoint, gains nothing from it and turns it
    /// off to keep that memory.
    pub segmentation_offload: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            stream_receive_window: 16 << 20,
            receive_window: 64 << 20,
            send_window: 64 << 20,
            max_concurrent_bidi_streams: 1024,
            keep_alive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            socket_buffer: 512 << 10,
            send_fairness: false,
            max_udp_payload: 1452,
            segmentation_offload: true,
        }
    }
}

impl Tuning {
    /// The quinn transport configuration for these values.
    pub(crate) fn transport_config(&self) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.stream_receive_window(self.stream_receive_window.into())
            .receive_window(self.receive_window.into())
            .send_window(self.send_window)
            .max_concurrent_bidi_streams(self.max_concurrent_bidi_streams.into())
            .max_concurrent_uni_streams(0u32.into())
            .keep_alive_interval(Some(self.keep_alive_interval))
            .max_idle_timeout(quinn::IdleTimeout::try_from(self.idle_timeout).ok())
            .send_fairness(self.send_fairness)
            .enable_segmentation_offload(self.segmentation_offload);
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(self.max_udp_payload);
        t.mtu_discovery_config(Some(mtu));
        Arc::new(t)
    }
}
