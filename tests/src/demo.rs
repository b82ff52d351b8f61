//! The demo (`bt-demo`): the whole system in one process on loopback. A three-node tracker cluster,
//! one seeder and several leechers distribute a generated file; the tracker's leader is
//! stopped half-way; every copy is compared byte for byte with the original at the end.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{RngCore, SeedableRng};
use tracker::client::TrackerClient;
use tracker::dev::{DevCluster, DevOptions};

use peer::runtime::{AddOptions, Peer, PeerConfig, TorrentHandle};

/// What the demo distributes and to how many.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Size of the generated file in MiB.
    pub size_mib: u64,
    /// Leechers.
    pub leechers: usize,
    /// Piece length in bytes.
    pub piece_len: u32,
    /// Whether to stop the tracker's leader half-way.
    pub kill_leader: bool,
    /// Whether to draw progress bars (false: print a line every few seconds).
    pub bars: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            size_mib: 256,
            leechers: 8,
            piece_len: 256 << 10,
            kill_leader: true,
            bars: true,
        }
    }
}

/// What happened.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// From the leechers' start until every leecher held a verified copy.
    pub elapsed: Duration,
    /// Bytes in the file.
    pub file_len: u64,
    /// Leechers that completed.
    pub leechers: usize,
    /// The tracker node stopped, and the progress at that moment (0 to 1).
    pub killed_leader: Option<(u64, f64)>,
    /// The node that led afterwards, and how long the cluster was without a leader.
    pub new_leader: Option<(u64, Duration)>,
    /// Tracker requests that failed over to another node, over all peers.
    pub tracker_failovers: u64,
    /// Copies compared byte for byte with the original (all equal, or the demo fails).
    pub verified_copies: usize,
}

/// Runs the demo in `dir` (which must be empty or absent).
pub async fn run(dir: &Path, options: DemoOptions) -> anyhow::Result<DemoReport> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = Output::new(options.bars);
    out.line(format!(
        "starting a 3-node tracker cluster, 1 seeder and {} leechers on loopback",
        options.leechers
    ));
    let mut cluster = DevCluster::start(
        &dir.join("tracker"),
        DevOptions {
            http: false,
            ..DevOptions::default()
        },
    )
    .await
    .context("starting the tracker cluster")?;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    out.line(format!(
        "tracker nodes {:?}, leader node {leader}",
        cluster.ids()
    ));

    let original = dir.join("seeder").join("data").join("demo.bin");
    out.line(format!(
        "generating {} MiB of random data",
        options.size_mib
    ));
    let file_len = options.size_mib << 20;
    let generated = original.clone();
    tokio::task::spawn_blocking(move || generate(&generated, file_len))
        .await
        .context("generating the file")??;
    let torrent = {
        let path = original.clone();
        let trackers = cluster.peer_addrs();
        let ca = cluster.ca_fingerprint();
        let piece_len = options.piece_len;
        tokio::task::spawn_blocking(move || {
            tracker::torrent::create::from_path(&path, piece_len, trackers, ca, None)
        })
        .await
        .context("hashing the file")??
    };

    let seeder = start_peer(&dir.join("seeder")).await?;
    let seeder_client = Arc::new(TrackerClient::for_torrent(
        seeder.endpoint().clone(),
        &torrent,
    ));
    seeder_client
        .publish(cluster.token(), torrent.encode())
        .await
        .context("publishing the torrent")?;
    let seeding = seeder
        .add(
            torrent.clone(),
            original.parent().unwrap_or(dir),
            seeder_client.clone(),
            AddOptions {
                existing: true,
                seed: true,
            },
            |_| {},
        )
        .await
        .context("seeding")?;
    seeding.wait_complete().await.map_err(anyhow::Error::msg)?;
    out.line(format!(
        "published {} ({} pieces of {} KiB), info hash {}",
        torrent.name(),
        torrent.piece_count(),
        torrent.piece_length() >> 10,
        torrent.info_hash()
    ));

    let started = Instant::now();
    let mut leechers: Vec<(TorrentHandle, PathBuf, Arc<TrackerClient>)> = Vec::new();
    let mut peers = Vec::new();
    for i in 0..options.leechers {
        let home = dir.join(format!("leecher{i}"));
        let peer = start_peer(&home).await?;
        let client = Arc::new(TrackerClient::for_torrent(
            peer.endpoint().clone(),
            &torrent,
        ));
        let data = home.join("data");
        let handle = peer
            .add(
                torrent.clone(),
                &data,
                client.clone(),
                AddOptions::default(),
                |_| {},
            )
            .await
            .with_context(|| format!("starting leecher {i}"))?;
        leechers.push((handle, data.join(torrent.name()), client));
        peers.push(peer);
    }

    let bars = out.bars(options.leechers, file_len);
    let mut killed_leader = None;
    let mut new_leader = None;
    let mut killed_at = None;
    let deadline = started + Duration::from_secs(600);
    loop {
        let statuses: Vec<_> = leechers.iter().map(|(h, _, _)| h.status()).collect();
        for (i, status) in statuses.iter().enumerate() {
            if let peer::runtime::Phase::Failed(why) = &status.phase {
                bail!("leecher {i} failed: {why}");
            }
        }
        let have: u64 = statuses.iter().map(|s| s.bytes_have).sum();
        let total = file_len * options.leechers as u64;
        let progress = have as f64 / total.max(1) as f64;
        bars.update(&statuses);
        if options.kill_leader
            && killed_leader.is_none()
            && progress >= 0.5
            && let Some(id) = cluster.leader()
        {
            cluster.stop(id);
            killed_leader = Some((id, progress));
            killed_at = Some(Instant::now());
            bars.println(format!(
                "stopped tracker leader node {id} at {:.0} % of the download",
                progress * 100.0
            ));
        }
        if let (Some(at), None) = (killed_at, new_leader)
            && let Some(id) = cluster.leader()
        {
            new_leader = Some((id, at.elapsed()));
            bars.println(format!(
                "node {id} leads the tracker now ({} ms without a leader)",
                at.elapsed().as_millis()
            ));
        }
        if statuses.iter().all(|s| s.bytes_have == s.bytes_total) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the leechers did not complete within 10 minutes: {statuses:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    bars.finish();

    out.line("comparing every copy with the original, byte for byte".to_string());
    let mut verified = 0;
    for (i, (_, copy, _)) in leechers.iter().enumerate() {
        let (a, b) = (original.clone(), copy.clone());
        let same = tokio::task::spawn_blocking(move || same_bytes(&a, &b))
            .await
            .context("comparing")??;
        if !same {
            bail!(
                "leecher {i}'s copy {} differs from the original",
                copy.display()
            );
        }
        verified += 1;
    }
    let tracker_failovers =
        leechers.iter().map(|(_, _, c)| c.failovers()).sum::<u64>() + seeder_client.failovers();
    for (handle, _, _) in &leechers {
        handle.abort();
    }
    seeding.abort();
    for peer in &peers {
        peer.shutdown();
    }
    seeder.shutdown();
    cluster.shutdown();
    Ok(DemoReport {
        elapsed,
        file_len,
        leechers: options.leechers,
        killed_leader,
        new_leader,
        tracker_failovers,
        verified_copies: verified,
    })
}

async fn start_peer(home: &Path) -> anyhow::Result<Peer> {
    let config = PeerConfig::new(
        "127.0.0.1:0".parse().context("loopback address")?,
        home.join("state"),
    );
    Ok(Peer::start(config).await?)
}

/// Writes `len` random bytes to `path` in 4 MiB blocks.
fn generate(path: &Path, len: u64) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = rand_chacha::ChaCha8Rng::from_os_rng();
    let mut block = vec![0u8; 4 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        rng.fill_bytes(&mut block[..n]);
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

/// Whether two files hold the same bytes, read in 1 MiB blocks.
pub fn same_bytes(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let open =
        |p: &Path| std::fs::File::open(p).with_context(|| format!("opening {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Progress output: bars on a terminal, plain lines otherwise.
struct Output {
    bars: bool,
}

impl Output {
    fn new(bars: bool) -> Self {
        Output { bars }
    }

    fn line(&self, text: String) {
        println!("{text}");
    }

    fn bars(&self, count: usize, len: u64) -> Bars {
        if !self.bars {
            return Bars {
                multi: None,
                bars: Vec::new(),
                last_line: std::cell::Cell::new(Instant::now()),
            };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>10} [{bar:40.cyan/blue}] {bytes:>10}/{total_bytes} {bytes_per_sec:>12} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bars = (0..count)
            .map(|i| {
                let bar = multi.add(indicatif::ProgressBar::new(len));
                bar.set_style(style.clone());
                bar.set_prefix(format!("leecher {i}"));
                bar
            })
            .collect();
        Bars {
            multi: Some(multi),
            bars,
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }
}

struct Bars {
    multi: Option<indicatif::MultiProgress>,
    bars: Vec<indicatif::ProgressBar>,
    last_line: std::cell::Cell<Instant>,
}

impl Bars {
    fn update(&self, statuses: &[peer::runtime::TorrentStatus]) {
        if self.multi.is_none() {
            if self.last_line.get().elapsed() >= Duration::from_secs(2) {
                self.last_line.set(Instant::now());
                let parts: Vec<String> = statuses
                    .iter()
                    .map(|s| format!("{:.0}%", s.fraction() * 100.0))
                    .collect();
                println!("progress: {}", parts.join(" "));
            }
            return;
        }
        for (bar, status) in self.bars.iter().zip(statuses) {
            bar.set_position(status.bytes_have);
            bar.set_message(format!("{} neighbours", status.neighbours.len()));
        }
    }

    fn println(&self, text: String) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    fn finish(&self) {
        for bar in &self.bars {
            bar.finish();
        }
    }
}
