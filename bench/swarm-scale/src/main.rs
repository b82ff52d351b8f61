//! `swarm-scale`: runs the simulated swarms and prints their figures against T*.
//!
//! ```text
//! swarm-scale                          # flash crowds of 1,000 and 10,000, churn, adversarial
//! swarm-scale --peers 1000 --only flash
//! swarm-scale --peers 300 --only flash --neighbours 16 --timeline   # an experiment
//! ```
//!
//! Prints one Markdown table row per scenario, writes the completion-time CDF plot (SVG)
//! and a JSON line per run under `bench/results/`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use swarm_scale::report::{self, TABLE_HEAD};
use swarm_scale::scenario::Scenario;

#[derive(Parser, Debug)]
#[command(about = "Simulated swarms of real swarm cores, measured against the fluid bound T*")]
struct Args {
    /// Leechers in each scenario (repeat for several sizes).
    #[arg(long = "peers", default_values_t = [1_000usize, 10_000])]
    peers: Vec<usize>,
    /// Pieces of 1 MiB in the file (1,024 = 1 GiB).
    #[arg(long, default_value_t = 1024)]
    pieces: u32,
    /// Seed of the scenarios.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Which scenarios: flash, churn, adversarial (repeatable; default all three, churn
    /// and adversarial at the smallest size only), or capped (the real capped swarm's 23
    /// leechers, only when named).
    #[arg(long = "only")]
    only: Vec<String>,
    /// Experiment: neighbours per peer (default: the swarm core's).
    #[arg(long)]
    neighbours: Option<usize>,
    /// Experiment: the download pipeline's queue time in ms (default: the core's).
    #[arg(long)]
    queue_ms: Option<u64>,
    /// Experiment: the interval of batched have announcements in ms (default: the
    /// core's).
    #[arg(long)]
    announce_ms: Option<u64>,
    /// Experiment: ms a useless neighbour is kept before it is swapped (default: the
    /// core's).
    #[arg(long)]
    swap_tenure_ms: Option<u64>,
    /// Experiment: most requests waiting for an upload slot (default: the core's).
    #[arg(long)]
    upload_queue: Option<usize>,
    /// Experiment: ms after which a waiting upload request goes first (default: the
    /// core's).
    #[arg(long)]
    upload_max_wait_ms: Option<u64>,
    /// Print the uplink use of every 5 s of simulated time.
    #[arg(long)]
    timeline: bool,
    /// Where to write the plot and the JSON lines.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// CPU seconds this process has used (user + system), from /proc (100 ticks a second):
/// the simulator's cost regardless of what else the machine runs.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Starts the simulator again with glibc's heap in transparent huge pages, unless
/// `GLIBC_TUNABLES` is set already (set it, even empty, to run without).
///
/// Every event reads a few cache lines of a peer picked anywhere in a heap of up to
/// 1.3 GiB, and each read needs its page's address translation: a TLB of a few thousand
/// entries holds few of the heap's 4 KiB pages, and 2 MiB pages are 512 times fewer. The
/// machine's setting is usually "madvise", and glibc advises huge pages for its heap
/// only when told at start, by this variable. 3,000 simulated leechers took 256 CPU
/// seconds with them against 284 without, side by side.
#[cfg(unix)]
fn restart_with_huge_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let failed = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
        .exec();
    eprintln!("running without huge pages: restarting failed: {failed}");
}

fn main() -> anyhow::Result<()> {
    #[cfg(unix)]
    restart_with_huge_pages();
    let args = Args::parse();
    for s in &args.only {
        anyhow::ensure!(
            matches!(s.as_str(), "flash" | "churn" | "adversarial" | "capped"),
            "unknown scenario '{s}': use flash, churn, adversarial or capped"
        );
    }
    anyhow::ensure!(
        args.peers.iter().all(|&n| n >= 1),
        "--peers must be at least 1"
    );
    anyhow::ensure!(args.pieces >= 1, "--pieces must be at least 1");
    let wants = |name: &str| args.only.is_empty() || args.only.iter().any(|s| s == name);
    let smallest = args.peers.iter().copied().min().unwrap_or(1000);
    let mut scenarios: Vec<Scenario> = Vec::new();
    for &n in &args.peers {
        if wants("flash") {
            scenarios.push(Scenario::flash_crowd(n, args.pieces, args.seed));
        }
    }
    if wants("churn") {
        scenarios.push(Scenario::arrivals_with_churn(
            smallest,
            args.pieces,
            args.seed,
        ));
    }
    if wants("adversarial") {
        scenarios.push(Scenario::adversarial(smallest, args.pieces, args.seed));
    }
    // Only when asked for: the real capped swarm's topology, whatever --peers says.
    if args.only.iter().any(|s| s == "capped") {
        scenarios.push(Scenario::capped(args.seed));
    }
    for scenario in &mut scenarios {
        let c = &mut scenario.swarm;
        if let Some(k) = args.neighbours {
            c.max_neighbours = k;
        }
        if let Some(ms) = args.queue_ms {
            c.queue_time = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = args.announce_ms {
            c.announce_interval = std::time::Duration::from_millis(ms);
        }
        if let Some(ms) = args.swap_tenure_ms {
            c.swap_tenure = std::time::Duration::from_millis(ms);
        }
        if let Some(q) = args.upload_queue {
            c.max_upload_queue = q;
        }
        if let Some(ms) = args.upload_max_wait_ms {
            c.upload_max_wait = std::time::Duration::from_millis(ms);
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jsonl = args.out.join(format!("swarm-scale-{stamp}.jsonl"));
    let mut log = std::fs::File::create(&jsonl)
        .with_context(|| format!("cannot create {}", jsonl.display()))?;
    println!("{TABLE_HEAD}");
    let mut curves = Vec::new();
    for scenario in &scenarios {
        let started = Instant::now();
        let cpu_before = cpu_secs();
        let outcome = swarm_scale::run_with_progress(scenario, std::time::Duration::from_secs(30));
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu_before;
        let fig = report::figures(scenario, &outcome);
        let rss = peak_rss_mib();
        println!("{}", report::table_row(&fig, wall, cpu, rss));
        if !outcome.errors.is_empty() {
            eprintln!(
                "{}: {} errors, first: {}",
                scenario.name,
                outcome.errors.len(),
                outcome.errors[0]
            );
        }
        eprintln!(
            "{}: {} events ({:.2} M/s), {} have batches spared, {} duplicates, {} not-haves, {} busy, {} corrupt-peer bans, {} departed",
            scenario.name,
            outcome.events,
            outcome.events as f64 / wall / 1e6,
            outcome.haves_spared,
            outcome.duplicates,
            outcome.not_haves,
            outcome.busies,
            outcome.corrupt_bans,
            outcome.departed
        );
        if let Some((min, max)) = outcome.seeder_spread {
            eprintln!(
                "{}: when the first seeder left it had sent each piece {min} to {max} times",
                scenario.name
            );
        }
        if !outcome.lost_pieces.is_empty() {
            eprintln!(
                "{}: {} pieces held by no live peer at the end: {:?}",
                scenario.name,
                outcome.lost_pieces.len(),
                &outcome.lost_pieces[..outcome.lost_pieces.len().min(16)]
            );
        }
        if args.timeline {
            // Leechers, slowest first (those that never finished before all others).
            let mut order: Vec<usize> = (0..outcome.leechers.len()).collect();
            let secs = |i: usize| outcome.leechers[i].2.unwrap_or(f64::INFINITY);
            order.sort_by(|&a, &b| secs(b).total_cmp(&secs(a)));
            // Who finished last, by link speed: where the tail comes from.
            let slowest: Vec<String> = order
                .iter()
                .filter_map(|&i| {
                    let (up, down, secs) = outcome.leechers[i];
                    secs.map(|s| format!("{s:.1} s ({:.0}/{:.0} Mbit/s)", up * 8e-6, down * 8e-6))
                })
                .take(5)
                .collect();
            eprintln!("slowest (up/down): {}", slowest.join(", "));
            // Where the slowest fell behind: pieces every 5 s, against the median leecher.
            let show = |i: usize| {
                let p: Vec<String> = outcome.progress[i]
                    .iter()
                    .map(|(pieces, n, from, out)| format!("{pieces}/{n}/{from}/{out}"))
                    .collect();
                p.join(" ")
            };
            if let Some(&median) = order.get(order.len() / 2) {
                eprintln!(
                    "every 5 s, pieces/neighbours/asked/requests; median: {}",
                    show(median)
                );
            }
            for &i in order.iter().take(3) {
                eprintln!("slow: {}", show(i));
            }
            // Uplink use per 5 s, for seeing where capacity goes unused.
            let per = 50;
            let line: Vec<String> = outcome
                .uploaded_bins
                .chunks(per)
                .zip(outcome.capacity_bins.chunks(per))
                .map(|(u, c)| {
                    let (u, c): (f64, f64) = (u.iter().sum(), c.iter().sum());
                    format!("{:.0}", 100.0 * u / c.max(1.0))
                })
                .collect();
            eprintln!("uplink use per 5 s (%): {}", line.join(" "));
        }
        let line = serde_json::json!({
            "scenario": scenario.name, "leechers": fig.leechers, "pieces": scenario.pieces,
            "piece_len": scenario.piece_len, "seed": scenario.seed, "t_star_s": fig.t_star,
            "secs_p50_p99_max": fig.secs, "over_t_star_p50_p99_max": fig.over_t_star,
            "over_own_bound_p50_p99_max": fig.over_own_bound, "uplink_use": fig.uplink_use,
            "seeder_copies": fig.seeder_copies, "incomplete": fig.incomplete,
            "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss, "events": outcome.events,
            "duplicates": outcome.duplicates, "errors": outcome.errors.len(),
        });
        writeln!(log, "{line}")?;
        if report::is_flash_crowd(scenario) {
            curves.push((scenario.name.clone(), fig.sorted_ratios.clone()));
        }
    }
    if !curves.is_empty() {
        let svg = args.out.join(format!("swarm-scale-{stamp}.svg"));
        std::fs::write(
            &svg,
            report::cdf_svg(
                "Flash crowd: completion time ÷ T*, 1 GiB in 1 MiB pieces",
                &curves,
            ),
        )
        .with_context(|| format!("cannot write {}", svg.display()))?;
        eprintln!("plot: {}", svg.display());
    }
    eprintln!("figures: {}", jsonl.display());
    Ok(())
}
