//! Transport throughput: our [`transport`] crate against bare quinn, in one process.
//!
//! Moves `BENCH_BYTES` (default 1 GiB) over one loopback connection in two workloads:
//!
//! * **(a) one-stream**: a single chunk request whose response streams the whole volume as
//!   1 MiB [`Bytes`] slices of one preallocated buffer.
//! * **(b) 16x4MiB**: `BENCH_BYTES / 4 MiB` chunk requests of 4 MiB each, 16 in flight.
//!
//! Each workload runs on our transport ([`Endpoint`] with its default [`Tuning`], pinned
//! dial) and on bare quinn (default `TransportConfig`, default sockets, raw bidirectional
//! streams), alternating ours / bare for `BENCH_ROUNDS` rounds (default 3). Every run uses
//! a fresh connection; the handshake is not timed. CPU seconds are the whole process's
//! user + system time over the run (both sender and receiver live in this process).
//!
//! Prints a table and, per workload, the median MB/s of each side and the ratio ours/bare
//! against the goal of matching it; raw results go to `bench/results/transport-<unix-ts>.jsonl`.
//!
//! Run with `cargo bench -p transport --bench throughput`. For experiments, our tuning can
//! be overridden with `BENCH_STREAM_WINDOW`, `BENCH_CONN_WINDOW`, `BENCH_SEND_WINDOW`,
//! `BENCH_SOCKET_BUFFER` (bytes) and `BENCH_SEND_FAIRNESS` (`true`/`false`), and one
//! workload alone picked with `BENCH_WORKLOADS=a` or `b`.
//!
//! Both ends share the machine's cores, so the figures are CPU-bound and sensitive to other
//! load: the `CPU/wall` column is near the core count when the run had the machine to
//! itself, and near 1 when something else took a core. Compare rounds with similar values.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use certs::Identity;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use transport::{ALPN_PEER, Connection, Endpoint, EndpointConfig, Expect, InboundTrust, Received};
use transport::{ChunkResponder, Tuning};

/// Size of one write in the one-stream workload.
const SLICE: usize = 1 << 20;
/// Size of one chunk in the parallel workload.
const CHUNK: usize = 4 << 20;
/// Chunk requests in flight at once in the parallel workload.
const PARALLEL: usize = 16;
/// The goal: our throughput at least this fraction of bare quinn's.
const GOAL: f64 = 1.0;
/// ALPN of the bare quinn server.
const ALPN_BARE: &[u8] = b"bench-bare";

/// Request on the wire (ours and bare): which workload, and how many bytes to send back.
const MODE_STREAM: u8 = 0;
const MODE_CHUNK: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    OneStream,
    Parallel,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::OneStream => "a:1-stream",
            Workload::Parallel => "b:16x4MiB",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Ours,
    Bare,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::Bare => "bare-quinn",
        }
    }
}

#[derive(Debug)]
struct Sample {
    workload: Workload,
    imp: Impl,
    round: usize,
    bytes: u64,
    secs: f64,
    cpu_secs: f64,
}

impl Sample {
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
    fn gbit_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs / 1e9
    }
}

/// Medians of one workload's runs.
struct Summary {
    workload: Workload,
    ours: f64,
    bare: f64,
    ours_cpu: f64,
    bare_cpu: f64,
    ours_per_cpu: f64,
    bare_per_cpu: f64,
    paired: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} does not parse")),
        Err(_) => Ok(default),
    }
}

/// Our default tuning, with any `BENCH_*` overrides applied.
fn our_tuning() -> Result<Tuning> {
    let d = Tuning::default();
    Ok(Tuning {
        stream_receive_window: env_or("BENCH_STREAM_WINDOW", d.stream_receive_window)?,
        receive_window: env_or("BENCH_CONN_WINDOW", d.receive_window)?,
        send_window: env_or("BENCH_SEND_WINDOW", d.send_window)?,
        socket_buffer: env_or("BENCH_SOCKET_BUFFER", d.socket_buffer)?,
        send_fairness: env_or("BENCH_SEND_FAIRNESS", d.send_fairness)?,
        ..d
    })
}

/// User + system CPU seconds of this process so far, from `/proc/self/stat` (fields 14
/// and 15, in clock ticks of 1/100 s).
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The command name (field 2) may hold spaces; fields after its ')' start at field 3.
    let rest = &stat[stat.rfind(')').context("malformed /proc/self/stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) as f64 / 100.0)
}

/// `/proc/loadavg`'s first three fields: other work on the machine skews the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn encode_request(mode: u8, bytes: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = mode;
    out[1..].copy_from_slice(&bytes.to_be_bytes());
    out
}

/// Slices of `payload` adding up to `total` bytes, each at most `slice` long.
fn slices(payload: &Bytes, total: u64, slice: usize) -> impl Iterator<Item = Bytes> + '_ {
    let mut left = total;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let len = left.min(slice as u64) as usize;
        left -= len as u64;
        Some(payload.slice(..len))
    })
}

// ---------------------------------------------------------------------------------------
// Ours.

/// Our server: answers `(mode, bytes)` chunk requests with a `u64` header and the bytes.
fn serve_ours(server: Endpoint, payload: Bytes) {
    tokio::spawn(async move {
        while let Some(connection) = server.accept().await {
            let Ok(connection) = connection else { continue };
            let payload = payload.clone();
            tokio::spawn(async move {
                while let Ok(stream) = connection.accept().await {
                    let payload = payload.clone();
                    tokio::spawn(async move {
                        if let Ok(Received::Chunk((mode, bytes), responder)) =
                            stream.read::<(u8, u64)>().await
                        {
                            let _ = respond_ours(responder, mode, bytes, &payload).await;
                        }
                    });
                }
            });
        }
    });
}

async fn respond_ours(
    responder: ChunkResponder,
    mode: u8,
    bytes: u64,
    payload: &Bytes,
) -> Result<()> {
    if mode == MODE_CHUNK {
        ensure!(bytes as usize <= payload.len());
        responder
            .respond(&bytes, payload.slice(..bytes as usize))
            .await?;
    } else {
        let mut writer = responder.start(&bytes).await?;
        for slice in slices(payload, bytes, SLICE) {
            writer.write(slice).await?;
        }
        writer.finish()?;
    }
    Ok(())
}

async fn ours_fetch(connection: &Connection, mode: u8, bytes: u64) -> Result<u64> {
    let (header, mut reader): (u64, _) = connection.request_chunk(&(mode, bytes)).await?;
    ensure!(header == bytes, "header says {header}, asked {bytes}");
    let mut got = 0u64;
    while let Some(part) = reader.next().await? {
        got += part.len() as u64;
    }
    ensure!(got == bytes, "received {got} bytes, expected {bytes}");
    Ok(got)
}

// ---------------------------------------------------------------------------------------
// Bare quinn.

/// Accepts the server's self-signed certificate without checking who it is, but still
/// checks the handshake signature (as any real verifier would).
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A bare quinn server with quinn's default transport and socket settings.
fn bare_server(identity: &Identity) -> Result<quinn::Endpoint> {
    let mut tls = rustls::ServerConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(identity.chain().to_vec(), identity.private_key())?;
    tls.alpn_protocols = vec![ALPN_BARE.to_vec()];
    let config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    Ok(quinn::Endpoint::server(config, "127.0.0.1:0".parse()?)?)
}

/// A bare quinn client with quinn's default transport and socket settings.
fn bare_client() -> Result<(quinn::Endpoint, quinn::ClientConfig)> {
    let mut tls = rustls::ClientConfig::builder_with_provider(ring())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(ring())))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN_BARE.to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    Ok((endpoint, config))
}

/// The bare server: reads a 9-byte `(mode, bytes)` request per stream and writes the bytes.
fn serve_bare(server: quinn::Endpoint, payload: Bytes) {
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                while let Ok((send, recv)) = connection.accept_bi().await {
                    let payload = payload.clone();
                    tokio::spawn(async move {
                        let _ = respond_bare(send, recv, &payload).await;
                    });
                }
            });
        }
    });
}

async fn respond_bare(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    payload: &Bytes,
) -> Result<()> {
    let request = recv.read_to_end(9).await?;
    ensure!(request.len() == 9, "bad request");
    let mode = request[0];
    let bytes = u64::from_be_bytes(request[1..].try_into()?);
    let slice = if mode == MODE_CHUNK { CHUNK } else { SLICE };
    ensure!(mode != MODE_CHUNK || bytes as usize <= payload.len());
    for part in slices(payload, bytes, slice) {
        send.write_chunk(part).await?;
    }
    send.finish()?;
    Ok(())
}

async fn bare_fetch(connection: &quinn::Connection, mode: u8, bytes: u64) -> Result<u64> {
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(&encode_request(mode, bytes)).await?;
    send.finish()?;
    let mut got = 0u64;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        got += chunk.bytes.len() as u64;
    }
    ensure!(got == bytes, "received {got} bytes, expected {bytes}");
    Ok(got)
}

// ---------------------------------------------------------------------------------------
// Driving the workloads.

/// One connection of either kind, opened fresh for each run.
#[derive(Clone)]
enum Conn {
    Ours(Connection),
    Bare(quinn::Connection),
}

impl Conn {
    async fn fetch(&self, mode: u8, bytes: u64) -> Result<u64> {
        match self {
            Conn::Ours(c) => ours_fetch(c, mode, bytes).await,
            Conn::Bare(c) => bare_fetch(c, mode, bytes).await,
        }
    }

    fn close(&self) {
        match self {
            Conn::Ours(c) => c.close(0, "done"),
            Conn::Bare(c) => c.close(0u32.into(), b"done"),
        }
    }
}

struct Setup {
    ours_client: Endpoint,
    ours_addr: SocketAddr,
    ours_expect: Expect,
    bare_client: quinn::Endpoint,
    bare_config: quinn::ClientConfig,
    bare_addr: SocketAddr,
}

impl Setup {
    async fn connect(&self, imp: Impl) -> Result<Conn> {
        Ok(match imp {
            Impl::Ours => Conn::Ours(
                self.ours_client
                    .connect(self.ours_addr, &self.ours_expect, ALPN_PEER)
                    .await?,
            ),
            Impl::Bare => Conn::Bare(
                self.bare_client
                    .connect_with(self.bare_config.clone(), self.bare_addr, "localhost")?
                    .await?,
            ),
        })
    }
}

/// Moves `bytes` over a fresh connection; returns (wall seconds, CPU seconds).
async fn run(setup: &Setup, imp: Impl, workload: Workload, bytes: u64) -> Result<(f64, f64)> {
    let conn = setup.connect(imp).await?;
    let cpu0 = cpu_seconds()?;
    let t0 = Instant::now();
    let moved = match workload {
        Workload::OneStream => conn.fetch(MODE_STREAM, bytes).await?,
        Workload::Parallel => {
            let chunks = (bytes / CHUNK as u64).max(1);
            let next = Arc::new(AtomicU64::new(0));
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..PARALLEL {
                let (conn, next) = (conn.clone(), next.clone());
                workers.spawn(async move {
                    let mut moved = 0u64;
                    while next.fetch_add(1, Ordering::Relaxed) < chunks {
                        moved += conn.fetch(MODE_CHUNK, CHUNK as u64).await?;
                    }
                    anyhow::Ok(moved)
                });
            }
            let mut moved = 0;
            while let Some(done) = workers.join_next().await {
                moved += done??;
            }
            ensure!(moved == chunks * CHUNK as u64);
            moved
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu0;
    conn.close();
    ensure!(moved > 0);
    // Let the close reach the server before the next run starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok((secs, cpu))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

async fn bench() -> Result<()> {
    let rounds: usize = env_or("BENCH_ROUNDS", 3)?;
    let bytes: u64 = env_or("BENCH_BYTES", 1u64 << 30)?;
    ensure!(
        rounds >= 1 && bytes >= 1,
        "BENCH_ROUNDS and BENCH_BYTES must be positive"
    );
    let tuning = our_tuning()?;
    let workloads: Vec<Workload> = match std::env::var("BENCH_WORKLOADS").as_deref() {
        Err(_) | Ok("ab") => vec![Workload::OneStream, Workload::Parallel],
        Ok("a") => vec![Workload::OneStream],
        Ok("b") => vec![Workload::Parallel],
        Ok(other) => bail!("BENCH_WORKLOADS={other:?}: expected a, b or ab"),
    };

    // One preallocated buffer, never all zeros (not that AEAD cares).
    let payload: Bytes = (0..CHUNK)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect::<Vec<u8>>()
        .into();

    let local: SocketAddr = "127.0.0.1:0".parse()?;
    let mut server_config = EndpointConfig::new(local, InboundTrust::Open, &[ALPN_PEER]);
    server_config.tuning = tuning.clone();
    let ours_server = Endpoint::bind(Identity::generate_self_signed("server")?, server_config)?;
    let mut client_config = EndpointConfig::new(local, InboundTrust::Open, &[]);
    client_config.tuning = tuning.clone();
    let ours_client = Endpoint::bind(Identity::generate_self_signed("client")?, client_config)?;
    let (ours_addr, ours_expect) = (
        ours_server.local_addr(),
        Expect::Fingerprint(ours_server.fingerprint()),
    );
    serve_ours(ours_server, payload.clone());

    let bare = bare_server(&Identity::generate_self_signed("localhost")?)?;
    let bare_addr = bare.local_addr()?;
    serve_bare(bare, payload);
    let (bare_client, bare_config) = bare_client()?;

    let setup = Setup {
        ours_client,
        ours_addr,
        ours_expect,
        bare_client,
        bare_config,
        bare_addr,
    };

    println!(
        "transport throughput: {bytes} bytes per run, {rounds} rounds, loopback, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("ours: {tuning:?}");
    println!("bare: quinn 0.11 defaults (TransportConfig and sockets)");
    println!("load average before: {}", load_average());

    // Warm-up, not recorded: page in the code and buffers for both sides.
    let warm = bytes.min(64 << 20);
    for &workload in &workloads {
        for imp in [Impl::Ours, Impl::Bare] {
            run(&setup, imp, workload, warm).await?;
        }
    }

    println!();
    println!(
        "{:<12} {:<11} {:>5} {:>9} {:>7} {:>7} {:>6} {:>8}",
        "workload", "impl", "round", "MB/s", "Gbit/s", "CPU s", "secs", "CPU/wall"
    );
    let mut samples = Vec::new();
    for round in 1..=rounds {
        for &workload in &workloads {
            for imp in [Impl::Ours, Impl::Bare] {
                let (secs, cpu_secs) = run(&setup, imp, workload, bytes)
                    .await
                    .with_context(|| format!("{} {} round {round}", workload.name(), imp.name()))?;
                let sample = Sample {
                    workload,
                    imp,
                    round,
                    bytes,
                    secs,
                    cpu_secs,
                };
                println!(
                    "{:<12} {:<11} {:>5} {:>9.1} {:>7.2} {:>7.2} {:>6.2} {:>8.2}",
                    workload.name(),
                    imp.name(),
                    round,
                    sample.mb_s(),
                    sample.gbit_s(),
                    cpu_secs,
                    secs,
                    cpu_secs / secs
                );
                samples.push(sample);
            }
        }
    }

    println!();
    println!(
        "medians over {rounds} rounds; paired = median of each round's ours/bare; \
         MB/CPU-s = bytes moved per CPU second (both ends)"
    );
    println!(
        "{:<12} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7} {:>7}  goal >= {:.0} %",
        "workload",
        "ours MB/s",
        "bare MB/s",
        "ours CPU",
        "bare CPU",
        "ours MB/C",
        "bare MB/C",
        "ratio",
        "paired",
        GOAL * 100.0
    );
    let mut summaries = Vec::new();
    let mut all_pass = true;
    for &workload in &workloads {
        let of = |imp: Impl, f: &dyn Fn(&Sample) -> f64| {
            median(
                samples
                    .iter()
                    .filter(|s| s.workload == workload && s.imp == imp)
                    .map(f)
                    .collect(),
            )
        };
        let paired = median(
            (1..=rounds)
                .filter_map(|round| {
                    let find = |imp| {
                        samples
                            .iter()
                            .find(|s| s.workload == workload && s.imp == imp && s.round == round)
                    };
                    Some(find(Impl::Ours)?.mb_s() / find(Impl::Bare)?.mb_s())
                })
                .collect(),
        );
        let per_cpu = |s: &Sample| s.bytes as f64 / s.cpu_secs.max(0.01) / 1e6;
        let summary = Summary {
            workload,
            ours: of(Impl::Ours, &Sample::mb_s),
            bare: of(Impl::Bare, &Sample::mb_s),
            ours_cpu: of(Impl::Ours, &|s| s.cpu_secs),
            bare_cpu: of(Impl::Bare, &|s| s.cpu_secs),
            ours_per_cpu: of(Impl::Ours, &per_cpu),
            bare_per_cpu: of(Impl::Bare, &per_cpu),
            paired,
        };
        let ratio = summary.ours / summary.bare;
        let pass = ratio >= GOAL;
        all_pass &= pass;
        println!(
            "{:<12} {:>9.1} {:>9.1} {:>8.2} {:>8.2} {:>9.1} {:>9.1} {:>6.1}% {:>6.1}%  {}",
            workload.name(),
            summary.ours,
            summary.bare,
            summary.ours_cpu,
            summary.bare_cpu,
            summary.ours_per_cpu,
            summary.bare_per_cpu,
            ratio * 100.0,
            paired * 100.0,
            if pass { "PASS" } else { "FAIL" }
        );
        summaries.push(summary);
    }

    // Raw results as JSON lines, beside the workspace's other bench output.
    let ts = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("transport-{ts}.jsonl"));
    let mut out = String::new();
    for s in &samples {
        writeln!(
            out,
            r#"{{"ts":{ts},"kind":"run","workload":"{}","impl":"{}","round":{},"bytes":{},"secs":{:.6},"mb_s":{:.3},"gbit_s":{:.4},"cpu_s":{:.2}}}"#,
            s.workload.name(),
            s.imp.name(),
            s.round,
            s.bytes,
            s.secs,
            s.mb_s(),
            s.gbit_s(),
            s.cpu_secs
        )?;
    }
    for m in &summaries {
        let ratio = m.ours / m.bare;
        writeln!(
            out,
            r#"{{"ts":{ts},"kind":"summary","workload":"{}","rounds":{rounds},"bytes":{bytes},"ours_median_mb_s":{:.3},"bare_median_mb_s":{:.3},"ours_median_cpu_s":{:.2},"bare_median_cpu_s":{:.2},"ours_median_mb_per_cpu_s":{:.1},"bare_median_mb_per_cpu_s":{:.1},"ratio":{ratio:.4},"paired_ratio":{:.4},"goal":{GOAL},"pass":{},"tuning":"{}"}}"#,
            m.workload.name(),
            m.ours,
            m.bare,
            m.ours_cpu,
            m.bare_cpu,
            m.ours_per_cpu,
            m.bare_per_cpu,
            m.paired,
            ratio >= GOAL,
            format!("{tuning:?}").replace('"', "'")
        )?;
    }
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    println!();
    println!("load average after: {}", load_average());
    println!("raw results: {}", path.canonicalize()?.display());
    if !all_pass {
        println!(
            "ours is below {:.0} % of bare quinn on some workload",
            GOAL * 100.0
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    match runtime.block_on(bench()) {
        Ok(()) => Ok(()),
        Err(e) => bail!("benchmark failed: {e:#}"),
    }
}
