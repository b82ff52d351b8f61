//! A peer driven by hand: a bare QUIC endpoint that speaks the peer protocol the way a
//! test wants, badly on purpose. It joins a swarm through the tracker like any peer,
//! keeps itself alive there with heartbeats, and logs what it was asked.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use certs::{Fingerprint, Identity};
use peer::wire::{ALPN_PEER, Control, PieceHeader, PieceRequest};
use tokio::task::JoinHandle;
use tracker::Bitfield;
use tracker::client::TrackerClient;
use tracker::torrent::{InfoHash, Torrent};
use transport::{
    ChannelReceiver, ChannelSender, ChunkResponder, Connection, Endpoint, EndpointConfig, Expect,
    InboundTrust, Received,
};

/// How the raw peer answers.
#[derive(Clone)]
pub enum Behaviour {
    /// Accepts connections and streams and never writes a byte, not even its `Hello`.
    Silent,
    /// Answers `Hello` with a full bitfield, then never answers a piece request.
    Stall,
    /// Answers `Hello` with a full bitfield, and every piece request, after `delay`, with
    /// bytes of the right length that are not the piece.
    Corrupt {
        /// How long to wait before answering (requests sent together are then answered
        /// together).
        delay: Duration,
    },
    /// Answers `Hello` with a full bitfield and serves the right bytes from `data`, one
    /// piece at a time, each after `delay`: a slow but honest seeder.
    Serve {
        /// The torrent's whole content.
        data: Arc<Vec<u8>>,
        /// Time to serve one piece.
        delay: Duration,
    },
}

/// What the raw peer saw.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Connections accepted.
    pub connections: usize,
    /// `Hello`s received.
    pub hellos: usize,
    /// Pieces requested, in order of arrival.
    pub requests: Vec<u32>,
    /// Why connections ended, as the remote said.
    pub closed: Vec<String>,
}

/// A raw peer of one torrent.
pub struct RawPeer {
    endpoint: Endpoint,
    torrent: Arc<Torrent>,
    log: Arc<Mutex<Log>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A loopback endpoint speaking the peer protocol, with a fresh identity named `name`.
fn peer_endpoint(name: &str) -> Endpoint {
    let mut config = EndpointConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        InboundTrust::Open,
        &[ALPN_PEER],
    );
    config.max_frame = peer::wire::MAX_FRAME_LEN;
    config.alpn_max_frames = vec![(
        tracker::api::ALPN_TRACKER.to_vec(),
        tracker::api::MAX_FRAME_LEN,
    )];
    Endpoint::bind(Identity::generate_self_signed(name).unwrap(), config).unwrap()
}

impl RawPeer {
    /// Binds an endpoint on loopback and starts answering as `behaviour` says.
    pub fn start(torrent: &Torrent, behaviour: Behaviour) -> RawPeer {
        let endpoint = peer_endpoint("raw-peer");
        let torrent = Arc::new(torrent.clone());
        let log = Arc::new(Mutex::new(Log::default()));
        let accept = tokio::spawn(accept_loop(
            endpoint.clone(),
            torrent.clone(),
            behaviour,
            log.clone(),
        ));
        RawPeer {
            endpoint,
            torrent,
            log,
            tasks: Mutex::new(vec![accept]),
        }
    }

    /// Joins the torrent's swarm saying it has `have`, and heartbeats from then on.
    pub async fn join(&self, have: Bitfield) {
        let client = super::client_for(&self.endpoint, &self.torrent);
        let joined = client
            .join(self.torrent.info_hash(), self.addr(), have, 8)
            .await
            .expect("the raw peer joins the swarm");
        let every = joined.ttl / 3;
        let beat = tokio::spawn(heartbeats(client, self.torrent.info_hash(), every));
        lock(&self.tasks).push(beat);
    }

    /// Its identity.
    pub fn fingerprint(&self) -> Fingerprint {
        self.endpoint.fingerprint()
    }

    /// Its address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.endpoint.local_addr()
    }

    /// What it saw so far.
    pub fn log(&self) -> Log {
        lock(&self.log).clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.log).requests.clear();
    }

    /// Closes the endpoint and stops heartbeating.
    pub fn close(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.endpoint.close();
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.close();
    }
}

async fn heartbeats(client: Arc<TrackerClient>, info_hash: InfoHash, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let _ = client.heartbeat(info_hash).await;
    }
}

async fn accept_loop(
    endpoint: Endpoint,
    torrent: Arc<Torrent>,
    behaviour: Behaviour,
    log: Arc<Mutex<Log>>,
) {
    // Serving is one piece at a time, so `Serve`'s delay sets the rate.
    let serving = Arc::new(tokio::sync::Mutex::new(()));
    while let Some(incoming) = endpoint.accept().await {
        let Ok(connection) = incoming else { continue };
        lock(&log).connections += 1;
        {
            let (connection, log) = (connection.clone(), log.clone());
            tokio::spawn(async move {
                let why = connection.closed().await;
                lock(&log).closed.push(why.to_string());
            });
        }
        let (torrent, behaviour, log, serving) = (
            torrent.clone(),
            behaviour.clone(),
            log.clone(),
            serving.clone(),
        );
        tokio::spawn(async move {
            while let Ok(stream) = connection.accept().await {
                let (torrent, behaviour, log, serving) = (
                    torrent.clone(),
                    behaviour.clone(),
                    log.clone(),
                    serving.clone(),
                );
                tokio::spawn(async move {
                    match stream.read::<PieceRequest>().await {
                        Ok(Received::Channel(send, recv)) => {
                            channel(&torrent, &behaviour, &log, send, recv).await;
                        }
                        Ok(Received::Chunk(request, responder)) => {
                            lock(&log).requests.push(request.piece);
                            answer(&torrent, &behaviour, &serving, request, responder).await;
                        }
                        _ => {}
                    }
                });
            }
        });
    }
}

/// A control channel: `Hello` answered (unless silent), then read until it ends while the
/// sending half stays open.
async fn channel(
    torrent: &Torrent,
    behaviour: &Behaviour,
    log: &Mutex<Log>,
    mut send: ChannelSender,
    mut recv: ChannelReceiver,
) {
    if matches!(behaviour, Behaviour::Silent) {
        std::future::pending::<()>().await;
    }
    let Ok(Some(Control::Hello { info_hash, .. })) = recv.recv::<Control>().await else {
        return;
    };
    lock(log).hellos += 1;
    let hello = Control::Hello {
        info_hash,
        bitfield: Bitfield::full(torrent.piece_count()),
    };
    if send.send(&hello).await.is_err() {
        return;
    }
    while let Ok(Some(_)) = recv.recv::<Control>().await {}
}

async fn answer(
    torrent: &Torrent,
    behaviour: &Behaviour,
    serving: &tokio::sync::Mutex<()>,
    request: PieceRequest,
    responder: ChunkResponder,
) {
    let Some(len) = torrent.piece_len(request.piece) else {
        let _ = responder.respond(&PieceHeader::NotHave, Bytes::new()).await;
        return;
    };
    match behaviour {
        Behaviour::Silent | Behaviour::Stall => {
            // Hold the stream open and say nothing.
            let _responder = responder;
            std::future::pending::<()>().await;
        }
        Behaviour::Corrupt { delay } => {
            tokio::time::sleep(*delay).await;
            let junk = vec![0xA5u8; len as usize];
            let _ = responder
                .respond(&PieceHeader::Data { len }, Bytes::from(junk))
                .await;
        }
        Behaviour::Serve { data, delay } => {
            let _turn = serving.lock().await;
            tokio::time::sleep(*delay).await;
            let start = request.piece as usize * torrent.piece_length() as usize;
            let bytes = Bytes::copy_from_slice(&data[start..start + len as usize]);
            let _ = responder.respond(&PieceHeader::Data { len }, bytes).await;
        }
    }
}

/// A neighbour's view of a peer: a connection with its control channel open.
pub struct Probe {
    /// The endpoint dialled from (kept so that the connection stays up).
    pub endpoint: Endpoint,
    /// The connection.
    pub connection: Connection,
    /// The pieces the peer said it has in its `Hello`.
    pub bitfield: Bitfield,
    /// The control channel.
    pub channel: (ChannelSender, ChannelReceiver),
}

/// Dials `peer` as a neighbour would and says `Hello` with an empty bitfield for
/// `torrent`.
pub async fn probe(peer: Fingerprint, addr: std::net::SocketAddr, torrent: &Torrent) -> Probe {
    let endpoint = peer_endpoint("probe");
    let connection = endpoint
        .connect(addr, &Expect::Fingerprint(peer), ALPN_PEER)
        .await
        .expect("dial the peer");
    let (mut send, mut recv) = connection.open_channel().await.unwrap();
    send.send(&Control::Hello {
        info_hash: torrent.info_hash(),
        bitfield: Bitfield::new(torrent.piece_count()),
    })
    .await
    .unwrap();
    match recv.recv::<Control>().await {
        Ok(Some(Control::Hello { bitfield, .. })) => Probe {
            endpoint,
            connection,
            bitfield,
            channel: (send, recv),
        },
        other => panic!("expected Hello from the peer, got {other:?}"),
    }
}
