//! The server side of the key-value service: turns client requests into Paxos proposals
//! and reads on the local [`Node`], batching what arrives together on a channel.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

use paxos::runtime::{Node, RequestError};
use paxos::{ClientError, Command};
use transport::{ChannelReceiver, ChannelSender, Connection, Endpoint, Received, StreamKind};

use super::protocol::{KvRequest, KvResponse};
use super::state_machine::{Kv, KvCommand, KvOutput, KvQuery};

/// How long the server waits for a proposal or read before telling the client to retry.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves key-value clients on `endpoint` until it closes.
pub async fn serve_clients(endpoint: Endpoint, node: Node<Kv>) {
    while let Some(incoming) = endpoint.accept().await {
        let Ok(connection) = incoming else { continue };
        tokio::spawn(serve_connection(connection, node.clone()));
    }
}

async fn serve_connection(connection: Connection, node: Node<Kv>) {
    while let Ok(stream) = connection.accept().await {
        let node = node.clone();
        tokio::spawn(async move {
            match stream
                .read_kinds::<KvRequest>(&[StreamKind::Request, StreamKind::Channel])
                .await
            {
                Ok(Received::Request(request, responder)) => {
                    let response = answer(&node, request).await;
                    let _ = responder.respond(&response).await;
                }
                Ok(Received::Channel(send, recv)) => serve_channel(node, send, recv).await,
                _ => {}
            }
        });
    }
}

/// Most requests taken off a channel before the answers ready so far are written.
const CHANNEL_BATCH: usize = 1024;

/// Serves one request channel in one task: every request already received is started
/// at once (puts reach the driver together and are proposed in one batch), and every
/// answer that is ready is written in one flush.
async fn serve_channel(node: Node<Kv>, mut send: ChannelSender, mut recv: ChannelReceiver) {
    let mut inflight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            // `recv` is cancel-safe: a frame half received stays buffered.
            request = recv.recv::<(u64, KvRequest)>(), if open => {
                match request {
                    Ok(Some((id, request))) => {
                        inflight.push(tagged(node.clone(), id, request));
                        let mut taken = 1;
                        while taken < CHANNEL_BATCH {
                            match recv.try_recv::<(u64, KvRequest)>() {
                                Ok(Some((id, request))) => {
                                    inflight.push(tagged(node.clone(), id, request));
                                    taken += 1;
                                }
                                Ok(None) => break,
                                // A bad frame: dropping `send` resets it with the
                                // same code (the transport does that).
                                Err(_) => return,
                            }
                        }
                    }
                    Ok(None) => open = false,
                    Err(_) => return,
                }
            }
            Some((id, response)) = inflight.next(), if !inflight.is_empty() => {
                let mut ok = send.push(&(id, &response)).is_ok();
                while let Some(Some((id, response))) = inflight.next().now_or_never() {
                    ok &= send.push(&(id, &response)).is_ok();
                }
                if !ok || send.flush().await.is_err() {
                    return;
                }
            }
            else => break,
        }
    }
    let _ = send.finish();
}

async fn tagged(node: Node<Kv>, id: u64, request: KvRequest) -> (u64, KvResponse) {
    (id, answer(&node, request).await)
}

async fn answer(node: &Node<Kv>, request: KvRequest) -> KvResponse {
    match request {
        KvRequest::Put {
            client,
            seq,
            key,
            value,
        } => {
            let command = Command {
                client,
                seq,
                op: KvCommand::Put { key, value },
            };
            match node.propose_command(command, REQUEST_TIMEOUT).await {
                Ok(KvOutput::Written(slot)) => KvResponse::Written(slot),
                Ok(other) => KvResponse::Error(format!("unexpected output {other:?}")),
                Err(e) => failure(e),
            }
        }
        KvRequest::Get { key } => match node.read_query(KvQuery::Get(key), REQUEST_TIMEOUT).await {
            Ok(KvOutput::Value(v)) => KvResponse::Value(v),
            Ok(other) => KvResponse::Error(format!("unexpected output {other:?}")),
            Err(e) => failure(e),
        },
        KvRequest::Status => {
            let m = node.metrics();
            KvResponse::Status {
                id: m.id,
                is_leader: m.is_leader,
                leader: m.leader,
                decided: m.decided,
                applied: m.applied,
                snapshot_slot: m.snapshot_slot,
            }
        }
    }
}

fn failure(e: RequestError) -> KvResponse {
    match e {
        RequestError::Rejected(ClientError::Stale) => KvResponse::Error(e.to_string()),
        other => KvResponse::Retry(other.to_string()),
    }
}
