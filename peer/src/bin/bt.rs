//! `bt`: make, publish, download and seed torrents; see what this machine's peers do.
//!
//! ```sh
//! bt create ./dir -o dir.torrent --tracker 10.0.0.1:7100 --ca <CA fingerprint>
//! bt publish dir.torrent --token <API token>
//! bt seed ./dir --tracker 10.0.0.1:7100 --ca <CA fingerprint> --token <API token>
//! bt get dir.torrent -o downloads/
//! bt status
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use certs::Fingerprint;
use clap::{Args, Parser, Subcommand};
use peer::runtime::{AddOptions, Peer, PeerConfig, Phase, TorrentHandle, TorrentStatus};
use peer::status_file::{self, ProcessStatus};
use tracker::client::TrackerClient;
use tracker::torrent::{InfoHash, Torrent};
use transport::{Endpoint, EndpointConfig, InboundTrust};

#[derive(Parser)]
#[command(
    name = "bt",
    version,
    about = "ByteTorrent: move large files to many machines"
)]
struct Cli {
    /// Where this peer keeps its identity, resume files and status (default:
    /// $BT_STATE_DIR, else ~/.local/share/bytetorrent).
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make a torrent file of a file or directory.
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Where to write the torrent file.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Piece length in KiB (a power of two from 16 to 65536); chosen from the size
        /// if absent.
        #[arg(long)]
        piece_kib: Option<u32>,
        /// A comment for people.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Publish a torrent file on its tracker.
    Publish {
        /// The torrent file.
        torrent: PathBuf,
        #[command(flatten)]
        token: TokenArg,
    },
    /// Make a torrent of PATH, publish it and seed it until interrupted.
    Seed {
        /// The file or directory.
        path: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        token: TokenArg,
        /// Also write the torrent file here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Download a torrent (a torrent file, or an info hash with --tracker and --ca) and
    /// seed it afterwards until interrupted.
    Get {
        /// A torrent file, or an info hash (64 hex digits).
        torrent: String,
        /// The download directory.
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Tracker nodes and CA, needed only with an info hash.
        #[arg(long = "tracker")]
        trackers: Vec<SocketAddr>,
        /// The tracker cluster's CA fingerprint, needed only with an info hash.
        #[arg(long)]
        ca: Option<Fingerprint>,
        /// Exit once the download is complete instead of seeding.
        #[arg(long)]
        no_seed: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show what the `bt` processes of this state directory download and seed.
    Status,
}

#[derive(Args)]
struct ClusterArgs {
    /// A tracker node's peer address; repeat for each node.
    #[arg(long = "tracker", required = true)]
    trackers: Vec<SocketAddr>,
    /// The tracker cluster's CA fingerprint (printed by `bt-tracker certs ca` and
    /// `bt-tracker dev`).
    #[arg(long)]
    ca: Fingerprint,
}

#[derive(Args)]
struct TokenArg {
    /// An API token (from `bt-tracker token create` or the tracker's web site); default:
    /// $BT_TOKEN.
    #[arg(long, env = "BT_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Args)]
struct NetArgs {
    /// Where to accept other peers.
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// The address other peers should dial (default: the listening address).
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// Serve the dashboard (progress, rates, neighbours, piece map; pause, resume,
    /// remove) at this address, e.g. 127.0.0.1:8080. Loopback only unless --web-remote.
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Allow --web on a non-loopback address (anyone who reaches it controls this peer).
    #[arg(long, requires = "web")]
    web_remote: bool,
}

fn state_dir(cli: Option<PathBuf>) -> PathBuf {
    cli.or_else(|| std::env::var_os("BT_STATE_DIR").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".local/share/bytetorrent"))
        })
        .unwrap_or_else(|| PathBuf::from(".bytetorrent"))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let state = state_dir(cli.state);
    if let Err(e) = run(cli.command, &state).await {
        eprintln!("error: {e:#}");
        // 130: stopped by SIGINT, as shells report it.
        let code = if e.is::<Interrupted>() { 130 } else { 1 };
        std::process::exit(code);
    }
}

/// The download was interrupted (Ctrl-C) before it completed.
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted before the download completed: {progress}; what was verified is kept, \
     resume with:\n  {command}"
)]
struct Interrupted {
    /// How far each torrent got.
    progress: String,
    /// The command that resumes the download.
    command: String,
}

/// What `follow` needs to know about a download (absent when seeding one's own files).
struct Download {
    /// Seed after completing instead of exiting.
    keep_seeding: bool,
    /// The command that resumes it, for the message when interrupted.
    resume: String,
}

/// This very command line, quoted for a POSIX shell: running it again resumes a download.
fn resume_command() -> String {
    std::env::args()
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Refuses a download directory that exists but is not a directory, before anything
/// else is done.
fn check_download_dir(output: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(output) {
        Ok(meta) if !meta.is_dir() => bail!(
            "-o {} is a file, but -o names the directory to download into (the torrent's \
             files or folder are created inside it); give a directory",
            output.display()
        ),
        _ => Ok(()),
    }
}

async fn run(command: Cmd, state: &Path) -> anyhow::Result<()> {
    match command {
        Cmd::Create {
            path,
            output,
            cluster,
            piece_kib,
            comment,
        } => {
            let torrent = create(&path, &cluster, piece_kib, comment).await?;
            write_torrent(&torrent, &output)?;
            println!(
                "wrote {} ({}, {} pieces), info hash {}",
                output.display(),
                tracker::format::size(torrent.total_length()),
                torrent.piece_count(),
                torrent.info_hash()
            );
            Ok(())
        }
        Cmd::Publish { torrent, token } => {
            let bytes = std::fs::read(&torrent)
                .with_context(|| format!("reading {}", torrent.display()))?;
            let parsed = Torrent::parse(&bytes)
                .with_context(|| format!("{} is not a valid torrent file", torrent.display()))?;
            let client = TrackerClient::for_torrent(client_endpoint()?, &parsed);
            let hash = client.publish(&token.token, bytes).await?;
            println!("published {} as {hash}", parsed.name());
            Ok(())
        }
        Cmd::Seed {
            path,
            cluster,
            token,
            output,
            net,
        } => {
            check_web(&net)?;
            let torrent = create(&path, &cluster, None, None).await?;
            if let Some(output) = &output {
                write_torrent(&torrent, output)?;
            }
            let peer = start_peer(state, &net).await?;
            let client = Arc::new(TrackerClient::for_torrent(
                peer.endpoint().clone(),
                &torrent,
            ));
            client.publish(&token.token, torrent.encode()).await?;
            println!("published {} as {}", torrent.name(), torrent.info_hash());
            let root = path
                .canonicalize()
                .with_context(|| format!("resolving {}", path.display()))?;
            let parent = root.parent().unwrap_or(Path::new("/")).to_path_buf();
            let bar = hashing_bar(torrent.total_length(), "checking");
            let progress_bar = bar.clone();
            let handle = peer
                .add(
                    torrent.clone(),
                    &parent,
                    client,
                    AddOptions {
                        existing: true,
                        seed: true,
                    },
                    move |p| progress_bar.set_position(p.bytes_done),
                )
                .await?;
            bar.finish_and_clear();
            serve_dashboard(&net, std::slice::from_ref(&handle)).await?;
            println!(
                "seeding {} from {}; Ctrl-C to stop",
                torrent.name(),
                peer.addr()
            );
            follow(&peer, state, vec![handle], None).await
        }
        Cmd::Get {
            torrent,
            output,
            trackers,
            ca,
            no_seed,
            net,
        } => {
            check_web(&net)?;
            check_download_dir(&output)?;
            let resume = resume_command();
            let peer = start_peer(state, &net).await?;
            let torrent = load_torrent(&torrent, &trackers, ca, peer.endpoint()).await?;
            let client = Arc::new(TrackerClient::for_torrent(
                peer.endpoint().clone(),
                &torrent,
            ));
            let bar = hashing_bar(torrent.total_length(), "checking");
            let progress_bar = bar.clone();
            let handle = peer
                .add(
                    torrent.clone(),
                    &output,
                    client,
                    AddOptions {
                        existing: false,
                        seed: !no_seed,
                    },
                    move |p| progress_bar.set_position(p.bytes_done),
                )
                .await?;
            bar.finish_and_clear();
            serve_dashboard(&net, std::slice::from_ref(&handle)).await?;
            let download = Download {
                keep_seeding: !no_seed,
                resume,
            };
            follow(&peer, state, vec![handle], Some(download)).await
        }
        Cmd::Status => {
            let all = status_file::read_all(state);
            if all.is_empty() {
                println!(
                    "no bt process is downloading or seeding (state {})",
                    state.display()
                );
            }
            for process in all {
                println!(
                    "process {} at {} ({})",
                    process.pid, process.addr, process.fingerprint
                );
                for t in process.torrents {
                    println!(
                        "  {:<30} {:>6.1}%  {:>10}/s down {:>10}/s up  {} neighbours  {:?}",
                        t.name,
                        t.fraction() * 100.0,
                        tracker::format::size(t.download_rate as u64),
                        tracker::format::size(t.upload_rate as u64),
                        connected_neighbours(&t),
                        t.phase
                    );
                }
            }
            Ok(())
        }
    }
}

/// How often progress is printed as plain lines when stdout is not a terminal.
const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(5);

/// Follows the torrents: progress (a bar per torrent on a terminal, plain lines on stdout
/// otherwise) until complete, the status file for `bt status`, and (when seeding) on
/// until Ctrl-C. Ctrl-C before a download completes is an [`Interrupted`] error.
async fn follow(
    peer: &Peer,
    state: &Path,
    handles: Vec<TorrentHandle>,
    download: Option<Download>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let keep_seeding = download.as_ref().is_none_or(|d| d.keep_seeding);
    let pid = std::process::id();
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listening for Ctrl-C")?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let mut progress = if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        Progress::bars(&handles)
    } else {
        Progress::Lines {
            last: std::time::Instant::now(),
        }
    };
    progress.start(&handles);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut done_reported = vec![false; handles.len()];
    let result = loop {
        let stopped = tokio::select! {
            _ = tick.tick() => false,
            _ = interrupt.recv() => true,
            _ = terminate.recv() => true,
        };
        let statuses: Vec<_> = handles.iter().map(TorrentHandle::status).collect();
        let _ = status_file::write(
            state,
            &ProcessStatus {
                pid,
                addr: peer.addr().to_string(),
                fingerprint: peer.fingerprint().to_string(),
                torrents: statuses.clone(),
            },
        );
        progress.update(&statuses, &mut done_reported);
        if let Some(why) = statuses.iter().find_map(|s| match &s.phase {
            Phase::Failed(why) => Some(why.clone()),
            _ => None,
        }) {
            break Err(anyhow::anyhow!(why));
        }
        if stopped {
            break match &download {
                Some(download) if !done_reported.iter().all(|d| *d) => Err(Interrupted {
                    progress: statuses
                        .iter()
                        .map(|s| {
                            format!(
                                "{} at {:.1}% ({}/{} pieces)",
                                s.name,
                                s.fraction() * 100.0,
                                s.pieces_have,
                                s.pieces_total
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    command: download.resume.clone(),
                }
                .into()),
                _ => Ok(()),
            };
        }
        if !keep_seeding && done_reported.iter().all(|d| *d) {
            break Ok(());
        }
    };
    status_file::remove(state, pid);
    for handle in &handles {
        handle.remove();
    }
    result
}

/// How progress is shown.
enum Progress {
    /// indicatif bars, on a terminal.
    Bars(Vec<indicatif::ProgressBar>),
    /// Plain lines on stdout (a pipe, a file, a log): one every
    /// [`PROGRESS_LINE_INTERVAL`] and one at completion.
    Lines { last: std::time::Instant },
}

impl Progress {
    fn bars(handles: &[TorrentHandle]) -> Progress {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:.bold} [{bar:40.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        Progress::Bars(
            handles
                .iter()
                .map(|h| {
                    let status = h.status();
                    let bar = multi.add(indicatif::ProgressBar::new(status.bytes_total));
                    bar.set_style(style.clone());
                    bar.set_prefix(status.name.clone());
                    bar
                })
                .collect(),
        )
    }

    fn start(&self, handles: &[TorrentHandle]) {
        if let Progress::Lines { .. } = self {
            for status in handles.iter().map(TorrentHandle::status) {
                println!(
                    "{}: {} into {}",
                    status.name,
                    tracker::format::size(status.bytes_total),
                    status.path
                );
            }
        }
    }

    fn update(&mut self, statuses: &[TorrentStatus], done_reported: &mut [bool]) {
        let lines_due = match self {
            Progress::Lines { last } if last.elapsed() >= PROGRESS_LINE_INTERVAL => {
                *last = std::time::Instant::now();
                true
            }
            _ => false,
        };
        for (i, status) in statuses.iter().enumerate() {
            let done = matches!(status.phase, Phase::Seeding | Phase::Complete);
            let newly_done = done && !done_reported[i];
            done_reported[i] |= done;
            let summary = format!(
                "{}/{} pieces, {} neighbours",
                status.pieces_have,
                status.pieces_total,
                connected_neighbours(status)
            );
            let complete = format!(
                "complete: {} (uploaded {})",
                status.path,
                tracker::format::size(status.uploaded)
            );
            match self {
                Progress::Bars(bars) => {
                    let Some(bar) = bars.get(i) else { continue };
                    if newly_done {
                        bar.finish_with_message(complete);
                    } else if !done {
                        bar.set_position(status.bytes_have);
                        bar.set_message(summary);
                    }
                }
                Progress::Lines { .. } => {
                    if newly_done {
                        println!("{}: {complete}", status.name);
                    } else if lines_due && !done {
                        println!(
                            "{}: {:.1}%, {summary}, {}/s down",
                            status.name,
                            status.fraction() * 100.0,
                            tracker::format::size(status.download_rate as u64)
                        );
                    }
                }
            }
        }
    }
}

/// The neighbours a torrent is connected to now.
fn connected_neighbours(status: &TorrentStatus) -> usize {
    status
        .neighbours
        .iter()
        .filter(|n| n.state == "connected")
        .count()
}

/// Refuses a dashboard address that is not allowed, before anything else is done.
fn check_web(net: &NetArgs) -> anyhow::Result<()> {
    if let Some(addr) = net.web {
        let options = peer::dashboard::DashboardOptions {
            allow_remote: net.web_remote,
        };
        peer::dashboard::check_address(addr, &options)?;
    }
    Ok(())
}

/// Starts the dashboard if `--web` asked for it.
async fn serve_dashboard(net: &NetArgs, handles: &[TorrentHandle]) -> anyhow::Result<()> {
    let Some(addr) = net.web else {
        return Ok(());
    };
    let options = peer::dashboard::DashboardOptions {
        allow_remote: net.web_remote,
    };
    peer::dashboard::check_address(addr, &options)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the dashboard to {addr}"))?;
    let bound = listener.local_addr()?;
    let state = peer::dashboard::DashboardState::new(options);
    for handle in handles {
        state.add(handle.clone());
    }
    tokio::spawn(async move {
        if let Err(e) = peer::dashboard::serve(listener, state).await {
            eprintln!("dashboard stopped: {e}");
        }
    });
    eprintln!("dashboard: http://{bound}/");
    Ok(())
}

async fn start_peer(state: &Path, net: &NetArgs) -> anyhow::Result<Peer> {
    let mut config = PeerConfig::new(net.listen, state.to_path_buf());
    config.advertise = net.advertise;
    Peer::start(config)
        .await
        .with_context(|| format!("starting the peer (state in {})", state.display()))
}

/// An endpoint for talking to trackers only (a fresh identity; nothing is served).
fn client_endpoint() -> anyhow::Result<Endpoint> {
    let identity = certs::Identity::generate_self_signed("bt")?;
    let mut config = EndpointConfig::new("0.0.0.0:0".parse()?, InboundTrust::Open, &[]);
    config.max_frame = tracker::api::MAX_FRAME_LEN;
    Ok(Endpoint::bind(identity, config)?)
}

async fn load_torrent(
    arg: &str,
    trackers: &[SocketAddr],
    ca: Option<Fingerprint>,
    endpoint: &Endpoint,
) -> anyhow::Result<Torrent> {
    let path = Path::new(arg);
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return Torrent::parse(&bytes)
            .with_context(|| format!("{} is not a valid torrent file", path.display()));
    }
    let Ok(info_hash) = arg.parse::<InfoHash>() else {
        if arg.contains(std::path::MAIN_SEPARATOR) || arg.ends_with(".torrent") {
            bail!("no such torrent file: {arg}");
        }
        bail!("{arg} is neither a torrent file nor an info hash (64 hexadecimal digits)");
    };
    let Some(ca) = ca else {
        bail!("with an info hash, give the tracker's --ca fingerprint and --tracker addresses");
    };
    if trackers.is_empty() {
        bail!("with an info hash, give at least one --tracker address");
    }
    let client = TrackerClient::new(endpoint.clone(), trackers.to_vec(), ca);
    let bytes = client.get_torrent(info_hash).await.with_context(|| {
        format!(
            "fetching torrent {info_hash} from the tracker (tried {})",
            list(trackers)
        )
    })?;
    let torrent = Torrent::parse(&bytes).context("the tracker sent an invalid torrent file")?;
    if torrent.info_hash() != info_hash {
        bail!("the tracker sent a torrent with another info hash");
    }
    Ok(torrent)
}

async fn create(
    path: &Path,
    cluster: &ClusterArgs,
    piece_kib: Option<u32>,
    comment: Option<String>,
) -> anyhow::Result<Torrent> {
    let total = size_of(path).with_context(|| format!("reading {}", path.display()))?;
    let piece_len = match piece_kib {
        Some(kib) => kib.checked_mul(1024).context("--piece-kib is too large")?,
        None => auto_piece_len(total),
    };
    let bar = hashing_bar(total, "hashing");
    let (path, trackers, ca) = (path.to_path_buf(), cluster.trackers.clone(), cluster.ca);
    let progress_bar = bar.clone();
    let torrent = tokio::task::spawn_blocking(move || {
        tracker::torrent::create::from_path_with_progress(
            &path,
            piece_len,
            trackers,
            ca,
            comment,
            &mut |done, _| progress_bar.set_position(done),
        )
    })
    .await??;
    bar.finish_and_clear();
    Ok(torrent)
}

/// A piece length for `total` bytes: about 2,000 pieces, between 256 KiB and 4 MiB (a
/// power of two). Few pieces would leave little to trade early on; many would make the
/// piece list and the per-piece work large.
fn auto_piece_len(total: u64) -> u32 {
    let target = (total / 2048).max(1).next_power_of_two();
    target.clamp(256 << 10, 4 << 20) as u32
}

fn size_of(path: &Path) -> std::io::Result<u64> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        let mut total = 0;
        for entry in std::fs::read_dir(path)? {
            total += size_of(&entry?.path())?;
        }
        Ok(total)
    } else {
        Ok(meta.len())
    }
}

fn write_torrent(torrent: &Torrent, output: &Path) -> anyhow::Result<()> {
    std::fs::write(output, torrent.encode())
        .with_context(|| format!("writing {}", output.display()))
}

fn hashing_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
