//! Following running torrents: progress until complete, the status file that `bt status`
//! reads, and (when seeding) on until Ctrl-C.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::progress::Progress;
use crate::runtime::{Peer, Phase, TorrentHandle, TorrentStatus};
use crate::status_file::{self, ProcessStatus};

/// How often the statuses are read, shown and written to the status file.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// The download was interrupted (Ctrl-C) before it completed.
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted before the download completed: {progress}; what was verified is kept, \
     resume with:\n  {command}"
)]
pub struct Interrupted {
    /// How far each torrent got.
    progress: String,
    /// The command that resumes the download.
    command: String,
}

/// What [`follow`] needs to know about a download (absent when seeding one's own files).
pub(crate) struct Download {
    /// Seed after completing instead of exiting.
    pub(crate) keep_seeding: bool,
    /// The command that resumes it, for the message when interrupted.
    pub(crate) resume: String,
}

/// Follows the torrents until every download is complete (and, when seeding, until
/// Ctrl-C or SIGTERM), then leaves their swarms. Ctrl-C before a download completes is an
/// [`Interrupted`] error; a failed torrent is an error with its reason.
pub(crate) async fn follow(
    peer: &Peer,
    state: &Path,
    handles: Vec<TorrentHandle>,
    download: Option<Download>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let keep_seeding = download.as_ref().is_none_or(|d| d.keep_seeding);
    let pid = std::process::id();
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut progress = Progress::for_output(&handles);
    progress.start(&handles);
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
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
                    progress: summary(&statuses),
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

/// "NAME at P% (H/T pieces)" for each torrent.
fn summary(statuses: &[TorrentStatus]) -> String {
    statuses
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
        .join(", ")
}

/// This very command line, quoted for a POSIX shell: running it again resumes a download.
pub(crate) fn resume_command() -> String {
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

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn arguments_are_quoted_only_when_a_shell_would_split_or_expand_them() {
        assert_eq!(shell_quote("downloads/x.torrent"), "downloads/x.torrent");
        assert_eq!(shell_quote("my file"), "'my file'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
