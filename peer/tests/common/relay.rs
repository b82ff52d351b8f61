//! A UDP relay in front of one QUIC endpoint, for one client (answers go to whoever wrote
//! last). It can limit the rate of what the endpoint sends and counts it, so that a test
//! can tell when a transfer from that endpoint is under way (and kill it right then); and
//! it can be cut, dropping everything both ways, as a network outage would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What went through from the peer.
#[derive(Clone, Copy, Debug)]
pub struct Relayed {
    /// Bytes of datagrams from the peer passed on.
    pub bytes: u64,
    /// When the last one was passed on.
    pub last: Option<Instant>,
}

/// A relay to `target`; dial [`ThrottledRelay::front`] instead.
pub struct ThrottledRelay {
    /// Where clients send.
    pub front: SocketAddr,
    relayed: Arc<Mutex<Relayed>>,
    cut: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ThrottledRelay {
    /// Relays to `target`, passing its answers on at most `bytes_per_sec`.
    pub async fn start(target: SocketAddr, bytes_per_sec: u64) -> ThrottledRelay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(target).await.unwrap();
        let relayed = Arc::new(Mutex::new(Relayed {
            bytes: 0,
            last: None,
        }));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let cut = Arc::new(AtomicBool::new(false));
        let to_target = {
            let (front, back, client, cut) =
                (front.clone(), back.clone(), client.clone(), cut.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let Ok((n, from)) = front.recv_from(&mut buf).await else {
                        continue;
                    };
                    if cut.load(Ordering::Relaxed) {
                        continue;
                    }
                    *client.lock().unwrap() = Some(from);
                    let _ = back.send(&buf[..n]).await;
                }
            })
        };
        let to_client = {
            let (front, relayed, cut) = (front.clone(), relayed.clone(), cut.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                let mut next = Instant::now();
                loop {
                    let Ok(n) = back.recv(&mut buf).await else {
                        continue;
                    };
                    if cut.load(Ordering::Relaxed) {
                        continue;
                    }
                    let now = Instant::now();
                    next = next.max(now)
                        + Duration::from_nanos(n as u64 * 1_000_000_000 / bytes_per_sec);
                    tokio::time::sleep_until(next).await;
                    let Some(to) = *client.lock().unwrap() else {
                        continue;
                    };
                    if front.send_to(&buf[..n], to).await.is_ok() {
                        let mut r = relayed.lock().unwrap();
                        r.bytes += n as u64;
                        r.last = Some(Instant::now());
                    }
                }
            })
        };
        ThrottledRelay {
            front: front.local_addr().unwrap(),
            relayed,
            cut,
            tasks: vec![to_target, to_client],
        }
    }

    /// Drops everything both ways (`true`) or relays again (`false`).
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    /// What went through from the peer so far.
    pub fn relayed(&self) -> Relayed {
        *self.relayed.lock().unwrap()
    }
}

impl Drop for ThrottledRelay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
