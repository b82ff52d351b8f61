//! Following running torrents: progress until complete, the status file that `bt status`
//! reads, and (when seeding) on until Ctrl-C.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

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
    let mut watches: Vec<_> = handles.iter().map(TorrentHandle::watch).collect();
    let mut phases: Vec<Phase> = handles.iter().map(|h| h.status().phase).collect();
    let mut done_reported = vec![false; handles.len()];
    let result = loop {
        let stopped = tokio::select! {
            _ = tick.tick() => false,
            () = phase_change(&mut watches, &phases) => false,
            _ = interrupt.recv() => true,
            _ = terminate.recv() => true,
        };
        let statuses: Vec<_> = handles.iter().map(TorrentHandle::status).collect();
        phases = statuses.iter().map(|s| s.phase.clone()).collect();
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

/// Resolves once some torrent's phase differs from the one in `seen`, so that a download
/// ends (and its failure is shown) the moment it completes or fails, not at the next tick.
/// A torrent whose task has ended never resolves it: the tick still reads its status.
async fn phase_change(watches: &mut [watch::Receiver<TorrentStatus>], seen: &[Phase]) {
    if watches.is_empty() {
        // `select_all` of nothing would panic.
        return std::future::pending().await;
    }
    let waits = watches.iter_mut().zip(seen).map(|(watch, seen)| {
        Box::pin(async move {
            if watch
                .wait_for(|status| status.phase != *seen)
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
        })
    });
    futures::future::select_all(waits).await;
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
    use super::{phase_change, shell_quote};
    use crate::runtime::{Phase, TorrentStatus};
    use tokio::sync::watch;

    fn status(phase: Phase) -> TorrentStatus {
        TorrentStatus {
            info_hash: "00".repeat(32),
            name: "t".into(),
            path: "t".into(),
            phase,
            pieces_have: 0,
            pieces_total: 1,
            bytes_have: 0,
            bytes_total: 1,
            download_rate: 0.0,
            upload_rate: 0.0,
            downloaded: 0,
            uploaded: 0,
            piece_map: ".".into(),
            neighbours: Vec::new(),
            tracker: None,
            tracker_failovers: 0,
            banned: 0,
        }
    }

    #[tokio::test]
    async fn a_phase_change_wakes_the_follower_and_a_status_update_does_not() {
        let (first_tx, first) = watch::channel(status(Phase::Downloading));
        let (second_tx, second) = watch::channel(status(Phase::Downloading));
        let mut watches = vec![first, second];
        let seen = vec![Phase::Downloading, Phase::Downloading];
        let mut change = Box::pin(phase_change(&mut watches, &seen));
        assert!(futures::poll!(&mut change).is_pending());
        // Progress within the same phase is left to the tick.
        second_tx.send_modify(|s| s.pieces_have = 1);
        assert!(futures::poll!(&mut change).is_pending());
        second_tx.send_modify(|s| s.phase = Phase::Complete);
        assert!(futures::poll!(&mut change).is_ready());
        drop(first_tx);
    }

    #[tokio::test]
    async fn an_ended_torrent_task_does_not_make_the_follower_spin() {
        let (tx, rx) = watch::channel(status(Phase::Downloading));
        drop(tx);
        let mut watches = vec![rx];
        let seen = vec![Phase::Downloading];
        let mut change = Box::pin(phase_change(&mut watches, &seen));
        assert!(futures::poll!(&mut change).is_pending());
        let mut none: Vec<watch::Receiver<TorrentStatus>> = Vec::new();
        let mut nothing = Box::pin(phase_change(&mut none, &[]));
        assert!(futures::poll!(&mut nothing).is_pending());
    }

    #[test]
    fn arguments_are_quoted_only_when_a_shell_would_split_or_expand_them() {
        assert_eq!(shell_quote("downloads/x.torrent"), "downloads/x.torrent");
        assert_eq!(shell_quote("my file"), "'my file'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
