//! How progress is shown: a bar per torrent on a terminal, plain lines when stdout is a
//! pipe, a file or a log.

use std::time::{Duration, Instant};

use crate::runtime::{Phase, TorrentHandle, TorrentStatus};

/// How often progress is printed as plain lines when stdout is not a terminal.
const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(5);

/// The progress display of the torrents being followed.
pub(crate) enum Progress {
    /// indicatif bars, on a terminal.
    Bars(Vec<indicatif::ProgressBar>),
    /// Plain lines on stdout: one every [`PROGRESS_LINE_INTERVAL`] and one at completion.
    Lines { last: Instant },
}

impl Progress {
    /// Bars when both stdout and stderr are terminals, lines otherwise.
    pub(crate) fn for_output(handles: &[TorrentHandle]) -> Progress {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            Progress::bars(handles)
        } else {
            Progress::Lines {
                last: Instant::now(),
            }
        }
    }

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

    /// Says what is downloaded where (lines only: bars show it themselves).
    pub(crate) fn start(&self, handles: &[TorrentHandle]) {
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

    /// Shows `statuses`; marks in `done_reported` the torrents whose completion was shown.
    pub(crate) fn update(&mut self, statuses: &[TorrentStatus], done_reported: &mut [bool]) {
        let lines_due = match self {
            Progress::Lines { last } if last.elapsed() >= PROGRESS_LINE_INTERVAL => {
                *last = Instant::now();
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
pub(crate) fn connected_neighbours(status: &TorrentStatus) -> usize {
    status
        .neighbours
        .iter()
        .filter(|n| n.state == "connected")
        .count()
}

/// A bar for hashing `total` bytes, labelled `what`.
pub(crate) fn hashing_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
