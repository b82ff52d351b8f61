//! Two ByteTorrent endpoints on loopback: a pinned QUIC dial, a typed request, and one
//! 256 MiB chunk moved as raw bytes. Run with `cargo run --release -p transport --example hello`.

use std::time::Instant;

use bytes::Bytes;
use certs::Identity;
use transport::{ALPN_PEER, Endpoint, EndpointConfig, Expect, InboundTrust, Received};

const CHUNK: usize = 256 << 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local = "127.0.0.1:0".parse()?;
    let server = Endpoint::bind(
        Identity::generate_self_signed("seeder")?,
        EndpointConfig::new(local, InboundTrust::Open, &[ALPN_PEER]),
    )?;
    let client = Endpoint::bind(
        Identity::generate_self_signed("leecher")?,
        EndpointConfig::new(local, InboundTrust::Open, &[]),
    )?;
    println!(
        "seeder  {} at {}",
        server.fingerprint(),
        server.local_addr()
    );
    println!("leecher {}", client.fingerprint());

    let (addr, fingerprint) = (server.local_addr(), server.fingerprint());
    tokio::spawn(async move {
        let Some(Ok(connection)) = server.accept().await else {
            return;
        };
        println!("seeder: accepted {}", connection.remote_fingerprint());
        let body = Bytes::from(vec![7u8; CHUNK]);
        while let Ok(stream) = connection.accept().await {
            match stream.read::<String>().await {
                Ok(Received::Request(text, responder)) => {
                    let _ = responder.respond(&format!("hello, {text}")).await;
                }
                Ok(Received::Chunk(_, responder)) => {
                    let _ = responder.respond(&CHUNK, body.clone()).await;
                }
                Ok(Received::Message(_) | Received::Channel(..)) => {}
                Err(e) => eprintln!("seeder: bad stream: {e}"),
            }
        }
    });

    let connection = client
        .connect(addr, &Expect::Fingerprint(fingerprint), ALPN_PEER)
        .await?;
    println!(
        "leecher: connected, seeder proved {}",
        connection.remote_fingerprint()
    );
    let reply: String = connection.request("leecher").await?;
    println!("leecher: {reply}");

    let started = Instant::now();
    let (len, mut body) = connection.request_chunk::<_, usize>("chunk").await?;
    let mut received = 0usize;
    while let Some(bytes) = body.next().await? {
        received += bytes.len();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(received, len);
    println!(
        "leecher: received {} MiB in {:.2} s: {:.0} MB/s",
        received >> 20,
        secs,
        received as f64 / secs / 1e6
    );
    let path = connection.quinn().stats().path;
    println!(
        "leecher: path MTU {} bytes, {} UDP datagrams sent, {} lost",
        path.current_mtu, path.sent_packets, path.lost_packets
    );
    connection.close(0, "done");
    Ok(())
}
