//! Loopback ports for local clusters and tests, picked so that no other socket can take
//! them between the pick and the bind.
//!
//! A cluster's configuration names every node's address before any node binds it, so the
//! usual trick (bind port 0, read the port, close, bind it again later) leaves a window in
//! which any socket of the process that binds port 0 (a client endpoint, another test) may
//! get the same port from the kernel, and the node then fails with "address in use". The
//! kernel only hands out ports from its ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default), so this module
//! picks ports below it: a process-wide counter from a random start, each candidate
//! checked free for both UDP and TCP on loopback. Two pickers in one process never get
//! the same port; pickers in different processes start far apart and still check.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out: well above the registered services a test machine runs.
const LOWEST: u16 = 10_000;

/// A loopback address whose port was free for UDP and TCP a moment ago and lies outside
/// the kernel's ephemeral range, so only another explicit pick could take it.
pub fn unused_loopback_addr() -> std::io::Result<SocketAddr> {
    let (low, high) = range();
    if low >= high {
        // No room below the ephemeral range: fall back to asking the kernel.
        return UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr();
    }
    let span = u32::from(high - low);
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new(rand::random::<u32>() % span));
    for _ in 0..span {
        let port = low + (next.fetch_add(1, Ordering::Relaxed) % span) as u16;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("every loopback port from {low} to {high} is in use"),
    ))
}

/// The ports to pick from: from [`LOWEST`] up to the start of the ephemeral range.
fn range() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32_768);
        (LOWEST, ephemeral_start)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_distinct_free_and_below_the_ephemeral_range() {
        let (_, ephemeral_start) = range();
        let picks: Vec<SocketAddr> = (0..50).map(|_| unused_loopback_addr().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = picks.iter().collect();
        assert_eq!(distinct.len(), picks.len(), "{picks:?}");
        for addr in &picks {
            assert!(
                addr.port() >= LOWEST && addr.port() < ephemeral_start,
                "{addr}"
            );
            UdpSocket::bind(addr).expect("the picked port binds");
        }
    }

    #[test]
    fn a_port_taken_by_another_socket_is_skipped() {
        let first = unused_loopback_addr().unwrap();
        let (low, high) = range();
        // Take the port the counter hands out next, then pick.
        let span = u32::from(high - low);
        let next = low + ((u32::from(first.port() - low) + 1) % span) as u16;
        let _held = UdpSocket::bind((Ipv4Addr::LOCALHOST, next));
        let second = unused_loopback_addr().unwrap();
        assert_ne!(second.port(), next);
        assert_ne!(second, first);
    }
}
