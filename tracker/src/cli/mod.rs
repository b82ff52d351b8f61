//! What `bt-tracker` does, behind its argument parsing: the binary parses flags (clap
//! derive) and calls one function here per command.
//!
//! * [`run`]: the `run` flags or TOML file, validated into one
//!   [`NodeConfig`](crate::node::NodeConfig) in one place, then the node until Ctrl-C;
//! * [`dev`]: a local cluster until Ctrl-C, and how to use it;
//! * [`certs`]: the cluster CA and nodes' certificates;
//! * [`operator`]: users and API tokens through the operator protocol;
//! * [`members`]: the cluster's membership and leadership, through the same protocol;
//! * [`password_input`]: reading a new user's password;
//! * [`init_logging`] and [`error_report`]: logs, and an error with its causes, for a
//!   person.

pub mod certs;
pub mod dev;
pub mod members;
pub mod operator;
pub mod password_input;
pub mod run;

use std::path::PathBuf;

use crate::admin::AdminError;
use crate::dev::DevError;
use crate::node::NodeError;

/// Why a `bt-tracker` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Certificates, or a request through the operator protocol.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The node could not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The dev cluster could not start.
    #[error(transparent)]
    Dev(#[from] DevError),
    /// The configuration file could not be read.
    #[error("reading {}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        error: std::io::Error,
    },
    /// The configuration file is not a node configuration.
    #[error("{} is not a valid node configuration", path.display())]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        error: toml::de::Error,
    },
    /// The flags do not describe a node.
    #[error("{0}")]
    Flags(String),
    /// No password was given, or it could not be read.
    #[error("{0}")]
    Password(String),
    /// Writing to the terminal, making a directory or waiting for Ctrl-C failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What failed.
        #[source]
        error: std::io::Error,
    },
}

impl CliError {
    /// An input/output failure while doing `what`.
    fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> CliError {
        move |error| CliError::Io { what, error }
    }
}

/// Logs warnings and errors to standard error, or what `RUST_LOG` asks for.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The error and its causes for a person: "Error: WHAT" and one "Caused by: WHY" line per
/// cause, leaving out a cause whose message the lines above already include (many error
/// types put their source's message in their own).
pub fn error_report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut report = format!("Error: {error}");
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !report.contains(&text) {
            report.push_str("\nCaused by: ");
            report.push_str(&text);
        }
        cause = next.source();
    }
    report
}

/// Flushes standard output, so a process reading our output sees a line as soon as it
/// is printed.
fn flush_stdout() -> Result<(), CliError> {
    use std::io::Write;
    std::io::stdout()
        .flush()
        .map_err(CliError::io("writing to standard output"))
}

/// Waits for Ctrl-C.
async fn ctrl_c() -> Result<(), CliError> {
    tokio::signal::ctrl_c()
        .await
        .map_err(CliError::io("waiting for Ctrl-C"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let error = CliError::ReadConfig {
            path: "node.toml".into(),
            error: std::io::Error::other("disk on fire"),
        };
        assert_eq!(
            error_report(&error),
            "Error: reading node.toml\nCaused by: disk on fire"
        );
        let error = CliError::Flags("--id 4 is not one of the --member ids".into());
        assert_eq!(
            error_report(&error),
            "Error: --id 4 is not one of the --member ids"
        );
    }
}
