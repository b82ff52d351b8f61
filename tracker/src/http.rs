//! The node's HTTP endpoints for operators: `/health` and `/metrics` (Prometheus text),
//! merged with the web site ([`crate::web`]).
//!
//! `/health` answers 200 when the node knows a leader (it can serve requests) and 503
//! otherwise, with the node's view as JSON, so a load balancer or an operator's script can
//! tell a cut-off node at once.

use std::fmt::Write as _;
use std::sync::Arc;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::service::Service;
use crate::state::{Output, Query};
use crate::web::{self, Site};

/// The router of the operator endpoints and the web site.
pub fn router(service: Arc<Service>, site: Site) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(service)
        .merge(web::router(site))
}

/// Serves [`router`] on `listener` until the task is aborted. Handlers see each client's
/// address (the sign-in rate limit counts by it).
pub async fn serve(listener: TcpListener, service: Arc<Service>, site: Site) {
    let app = router(service, site).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTP server stopped: {e}");
    }
}

async fn health(State(service): State<Arc<Service>>) -> Response {
    let status = service.status();
    let code = if status.leader.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = format!(
        "{{\"id\":{},\"is_leader\":{},\"leader\":{},\"decided\":{},\"applied\":{}}}\n",
        status.id,
        status.is_leader,
        status
            .leader
            .map_or_else(|| "null".to_string(), |l| l.to_string()),
        status.decided,
        status.applied
    );
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let m = service.node().metrics();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP bt_tracker_{name} {help}");
        let _ = writeln!(out, "# TYPE bt_tracker_{name} gauge");
        let _ = writeln!(out, "bt_tracker_{name} {value}");
    };
    gauge("node_id", "This node's id.", m.id as f64);
    gauge(
        "is_leader",
        "1 if this node leads the cluster.",
        f64::from(u8::from(m.is_leader)),
    );
    gauge(
        "leader_id",
        "The leader this node believes in (0: none).",
        m.leader.unwrap_or(0) as f64,
    );
    gauge(
        "leader_changes",
        "Times the believed leader changed since start.",
        m.leader_changes as f64,
    );
    gauge(
        "decided_slot",
        "Highest log slot known chosen.",
        m.decided as f64,
    );
    gauge(
        "applied_slot",
        "Highest log slot applied.",
        m.applied as f64,
    );
    gauge(
        "log_length",
        "Slots kept in the log after the snapshot.",
        m.log_len as f64,
    );
    gauge(
        "snapshot_bytes",
        "Size of the latest snapshot.",
        m.snapshot_bytes.unwrap_or(0) as f64,
    );
    gauge(
        "snapshot_write_seconds",
        "Time the latest snapshot took to write and sync.",
        m.snapshot_write.map_or(0.0, |d| d.as_secs_f64()),
    );
    gauge(
        "snapshots",
        "Snapshots persisted since start.",
        m.snapshots_persisted as f64,
    );
    gauge(
        "storage_syncs",
        "Storage syncs (one per group commit) since start.",
        m.storage_syncs as f64,
    );
    gauge(
        "commit_latency_p50_seconds",
        "Median latency of commands proposed through this node.",
        m.commit_latency.p50.as_secs_f64(),
    );
    gauge(
        "commit_latency_p99_seconds",
        "99th percentile latency of commands proposed through this node.",
        m.commit_latency.p99.as_secs_f64(),
    );
    gauge(
        "commits",
        "Commands proposed through this node and answered.",
        m.commit_latency.count as f64,
    );
    // This node's own applied state, so every node reports what it holds even when cut off.
    if let Ok(Output::Stats(stats)) = service.node().read_local(Query::Stats).await {
        gauge("torrents", "Torrents stored.", stats.torrents as f64);
        gauge(
            "swarms",
            "Swarms with at least one peer.",
            stats.swarms as f64,
        );
        gauge(
            "peers",
            "Peer memberships over all swarms.",
            stats.peers as f64,
        );
        gauge("seeders", "Of which seeders.", stats.seeders as f64);
        gauge("users", "Users.", stats.users as f64);
        gauge(
            "piece_reports",
            "Piece reports applied.",
            stats.piece_reports as f64,
        );
        gauge(
            "expired_peers",
            "Peers removed by expiry.",
            stats.expired as f64,
        );
    }
    let _ = writeln!(
        out,
        "# HELP bt_tracker_busy Peer requests answered busy (too many in flight) since start.\n\
         # TYPE bt_tracker_busy counter\nbt_tracker_busy {}",
        service.counters().busy()
    );
    let _ = writeln!(
        out,
        "# HELP bt_tracker_requests_total Requests answered by this node, by kind."
    );
    let _ = writeln!(out, "# TYPE bt_tracker_requests_total counter");
    for (kind, count) in service.counters().snapshot() {
        let _ = writeln!(out, "bt_tracker_requests_total{{kind=\"{kind}\"}} {count}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
