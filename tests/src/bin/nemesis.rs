//! The nemesis: a Jepsen-style test of a real `kv-server` or `bt-tracker` cluster under
//! faults.
//!
//! ```sh
//! nemesis run --faults network --duration 60            # one run, a fresh seed
//! nemesis run --faults all --seed 1234 --nodes 5        # replay a seed
//! nemesis run --system tracker --faults network,process,disk
//! nemesis cleanup                                       # namespaces of killed runs
//! ```
//!
//! Needs root: it makes network namespaces, veth pairs, a bridge, nftables rules and
//! tmpfs mounts, and removes them when the run ends. Prints the seed, every fault as it
//! is applied, the operation counts and the verdict; exits 0 when the history is
//! linearizable, 1 when it is not, 2 when the harness itself failed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tests::nemesis::faults::{ClockRange, Family};
use tests::nemesis::net::{self, Topology};
use tests::nemesis::runner::{RunConfig, System, run_inside};

#[derive(Parser)]
#[command(
    about = "Jepsen-style faults on a real kv-server or bt-tracker cluster, checked for linearizability"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One run: make the namespaces, run nodes, clients and faults, check, clean up.
    Run(RunFlags),
    /// The part of a run inside the hub namespace (started by `run`).
    #[command(hide = true)]
    Inside {
        #[command(flatten)]
        flags: RunFlags,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        tag: String,
        #[arg(long)]
        seed_chosen: u64,
    },
    /// Removes the namespaces of runs that were killed before they could.
    Cleanup,
}

#[derive(Args, Clone)]
struct RunFlags {
    /// The system under test: kv (kv-server) or tracker (bt-tracker run).
    #[arg(long, default_value = "kv", value_parser = parse_system)]
    system: System,
    /// Fault families, comma-separated: network, process, clock, disk, or all.
    #[arg(long, default_value = "all", value_parser = parse_families)]
    faults: FamilyList,
    /// Seed of the fault schedule and the clients (default: a fresh one, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes in the cluster (3 or 5).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    nodes: u64,
    /// Seconds of faults and clients.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Concurrent clients, each bound to one node (default: two per node).
    #[arg(long)]
    clients: Option<u64>,
    /// Keys read and written.
    #[arg(long, default_value_t = 4)]
    keys: u64,
    /// Skew clocks 30-70 % instead of 2-8 %: beyond the drift bound, where stale lease
    /// reads are outside the protocol's assumption. Shows that the bound matters.
    #[arg(long)]
    beyond_drift_bound: bool,
    /// Plant a bug in every node (`time-of-day-clock`), to see the nemesis catch it.
    #[arg(long)]
    planted_bug: Option<String>,
    /// The server binary (default: kv-server or bt-tracker beside this binary).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Keep the run's directory (node logs, certificates) even when the run passes.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Debug)]
struct FamilyList(Vec<Family>);

fn parse_families(text: &str) -> Result<FamilyList, String> {
    if text == "all" {
        return Ok(FamilyList(Family::ALL.to_vec()));
    }
    let mut families: Vec<Family> = text
        .split(',')
        .map(Family::parse)
        .collect::<Result<_, _>>()?;
    families.sort();
    families.dedup();
    Ok(FamilyList(families))
}

fn parse_system(text: &str) -> Result<System, String> {
    match text {
        "kv" => Ok(System::Kv),
        "tracker" => Ok(System::Tracker),
        _ => Err(format!("unknown system {text:?}: expected kv or tracker")),
    }
}

fn system_name(system: System) -> &'static str {
    match system {
        System::Kv => "kv",
        System::Tracker => "tracker",
    }
}

fn names(families: &[Family]) -> String {
    families
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Run(flags) => match outside(flags) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("nemesis: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Inside {
            flags,
            dir,
            tag,
            seed_chosen,
        } => inside(flags, dir, tag, seed_chosen),
        Cmd::Cleanup => match net::remove_leftovers() {
            Ok(n) => {
                println!("removed {n} namespaces");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nemesis: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Checks that the tools a run needs are here, with a message that says what to install.
fn check_tools() -> Result<(), String> {
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables"), ("mount", "mount")] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "`{tool}` is missing: install the {package} package"
            ));
        }
    }
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    {
        return Err("a run needs root: it makes network namespaces and tmpfs mounts".into());
    }
    Ok(())
}

/// Sets up a run, runs its inside part in the hub namespace, and cleans up.
fn outside(flags: RunFlags) -> Result<ExitCode, String> {
    check_tools()?;
    let seed = flags.seed.unwrap_or_else(rand::random);
    let families = &flags.faults.0;
    if flags.system == System::Tracker && flags.planted_bug.is_some() {
        return Err("the planted bug is in kv-server only: run it with --system kv".into());
    }
    if flags.beyond_drift_bound {
        if !families.contains(&Family::Clock) {
            return Err("--beyond-drift-bound needs the clock family".into());
        }
        println!(
            "clock rates beyond the drift bound: stale lease reads are outside the protocol's \
             assumption, so a violation here is expected, not a bug"
        );
    }
    println!(
        "seed: {seed}  system: {}  faults: {}  nodes: {}  duration: {} s{}",
        system_name(flags.system),
        names(families),
        flags.nodes,
        flags.duration,
        flags
            .planted_bug
            .as_ref()
            .map_or(String::new(), |b| format!("  planted bug: {b}"))
    );
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let server = match (&flags.server, flags.system) {
        (Some(path), _) => path.clone(),
        (None, System::Kv) => me.with_file_name("kv-server"),
        (None, System::Tracker) => me.with_file_name("bt-tracker"),
    };
    let dir = tempfile::Builder::new()
        .prefix("nemesis-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let tag = format!("{:06x}", (std::process::id() as u64 ^ seed) & 0xff_ffff);
    let mut mounts = Vec::new();
    let result = (|| {
        let certs = dir.join("certs");
        match flags.system {
            System::Kv => net::run(
                server.to_str().ok_or("server path is not UTF-8")?,
                &[
                    "certs",
                    "--dir",
                    &certs.display().to_string(),
                    "--nodes",
                    &flags.nodes.to_string(),
                ],
            )?,
            System::Tracker => tests::nemesis::tracker::make_certs(&server, &certs, flags.nodes)?,
        }
        for id in 1..=flags.nodes {
            let disk = dir.join(format!("disk{id}"));
            std::fs::create_dir_all(&disk).map_err(|e| format!("{}: {e}", disk.display()))?;
            if families.contains(&Family::Disk) {
                let disk = disk.display().to_string();
                net::run("mount", &["-t", "tmpfs", "-o", "size=24m", "tmpfs", &disk])?;
                mounts.push(disk);
            }
        }
        let _topology = Topology::create(&tag, flags.nodes)?;
        let status = Command::new("ip")
            .args(["netns", "exec", &format!("btnem-{tag}-hub")])
            .arg(&me)
            .arg("inside")
            .args(forwarded(&flags, &server))
            .args(["--dir", &dir.display().to_string(), "--tag", &tag])
            .args(["--seed-chosen", &seed.to_string()])
            .status()
            .map_err(|e| format!("starting the run: {e}"))?;
        Ok::<_, String>(status.code().unwrap_or(2))
    })();
    for mount in mounts.iter().rev() {
        let _ = net::run("umount", &[mount]);
    }
    let code = result?;
    if code == 0 && !flags.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("the run's directory (node logs): {}", dir.display());
    }
    Ok(ExitCode::from(code as u8))
}

/// The flags of `run` again, for `inside`.
fn forwarded(flags: &RunFlags, server: &Path) -> Vec<String> {
    let mut args = vec![
        "--system".into(),
        system_name(flags.system).into(),
        "--faults".into(),
        names(&flags.faults.0),
        "--nodes".into(),
        flags.nodes.to_string(),
        "--duration".into(),
        flags.duration.to_string(),
        "--clients".into(),
        flags.clients.unwrap_or(2 * flags.nodes).to_string(),
        "--keys".into(),
        flags.keys.to_string(),
        "--server".into(),
        server.display().to_string(),
    ];
    if let Some(bug) = &flags.planted_bug {
        args.extend(["--planted-bug".into(), bug.clone()]);
    }
    if flags.beyond_drift_bound {
        args.push("--beyond-drift-bound".into());
    }
    args
}

fn inside(flags: RunFlags, dir: PathBuf, tag: String, seed: u64) -> ExitCode {
    let config = RunConfig {
        system: flags.system,
        dir,
        tag,
        nodes: flags.nodes,
        seed,
        duration: Duration::from_secs(flags.duration),
        families: flags.faults.0.clone(),
        planted_bug: flags.planted_bug.clone(),
        clock: if flags.beyond_drift_bound {
            ClockRange::BeyondBound
        } else {
            ClockRange::WithinBound
        },
        server: match flags.server.clone() {
            Some(server) => server,
            None => {
                eprintln!("nemesis: `inside` needs --server");
                return ExitCode::from(2);
            }
        },
        clients: flags.clients.unwrap_or(2 * flags.nodes),
        keys: flags.keys,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nemesis: {e}");
            return ExitCode::from(2);
        }
    };
    let families = names(&config.families);
    let system = system_name(config.system);
    match runtime.block_on(run_inside(config)) {
        Ok(outcome) => {
            let c = outcome.counts;
            println!(
                "operations: {} writes acknowledged, {} writes unknown; {} reads answered, {} reads failed",
                c.writes_ok, c.writes_unknown, c.reads_ok, c.reads_failed
            );
            let (word, code) = match &outcome.verdict {
                Ok(()) => ("linearizable", 0),
                Err(_) => ("VIOLATION", 1),
            };
            if let Err(why) = &outcome.verdict {
                println!("verdict: NOT linearizable: {why}");
            } else {
                println!("verdict: linearizable");
            }
            println!(
                "result: seed={seed} system={system} faults={families} applied={} ops={} verdict={word}",
                outcome.applied,
                c.writes_ok + c.writes_unknown + c.reads_ok + c.reads_failed
            );
            ExitCode::from(code)
        }
        Err(e) => {
            println!("result: seed={seed} system={system} faults={families} verdict=ERROR: {e}");
            ExitCode::from(2)
        }
    }
}
