//! What the `bt` command does, behind its argument parsing: the binary turns flags into
//! the settings here and calls one command.
//!
//! | file | what it holds |
//! |---|---|
//! | `settings.rs` | flags turned into checked settings: state directory, network, dashboard, download directory |
//! | `commands.rs` | one function per subcommand: `create`, `publish`, `seed`, `get`, `status` |
//! | `make.rs` | making a torrent file of a path (piece length, hashing bar) |
//! | `source.rs` | finding a torrent: a file, or an info hash fetched from the tracker |
//! | `follow.rs` | following running torrents until done or interrupted, and the status file |
//! | `progress.rs` | how progress is shown: bars on a terminal, lines otherwise |

mod commands;
mod follow;
mod make;
mod progress;
mod settings;
mod source;

pub use commands::{Cluster, GetRequest, create, get, publish, seed, status};
pub use follow::Interrupted;
pub use settings::{NetSettings, state_dir};

/// Sets up logging to stderr, quiet unless `RUST_LOG` asks for more: a command's output
/// is its own lines and bars.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The exit status for a command that failed with `error`: 130 when it was stopped by
/// Ctrl-C (as shells report SIGINT), 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if error.is::<Interrupted>() { 130 } else { 1 }
}
