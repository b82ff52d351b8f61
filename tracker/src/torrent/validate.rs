//! The rules and limits of the format, checked on everything that becomes a [`Torrent`].
//!
//! [`Torrent`]: super::Torrent

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Component, Path};

use super::{
    Info, MAX_COMMENT_LEN, MAX_COMPONENT_LEN, MAX_FILES, MAX_PATH_DEPTH, MAX_PIECE_LENGTH,
    MAX_TRACKERS, MIN_PIECE_LENGTH, PIECE_HASH_LEN, TorrentError,
};

/// Checks the info part; returns each file's offset in the content and the total length.
pub(super) fn info(info: &Info) -> Result<(Vec<u64>, u64), TorrentError> {
    name(&info.name)?;
    piece_length(info.piece_length)?;
    if info.files.is_empty() {
        return Err(TorrentError::NoFiles);
    }
    if info.files.len() > MAX_FILES {
        return Err(TorrentError::TooManyFiles {
            count: info.files.len(),
            max: MAX_FILES,
        });
    }
    for file in &info.files {
        path(&info.name, &file.path)?;
    }
    unique_paths(info)?;

    let mut offsets = Vec::with_capacity(info.files.len());
    let mut total: u64 = 0;
    for file in &info.files {
        offsets.push(total);
        total = total
            .checked_add(file.length)
            .ok_or(TorrentError::TotalLengthOverflow)?;
    }

    if !info.pieces.len().is_multiple_of(PIECE_HASH_LEN) {
        return Err(TorrentError::BadPieceHashes {
            len: info.pieces.len(),
        });
    }
    let pieces = (info.pieces.len() / PIECE_HASH_LEN) as u64;
    let expected = total.div_ceil(u64::from(info.piece_length));
    if pieces != expected || u32::try_from(pieces).is_err() {
        return Err(TorrentError::PieceCountMismatch {
            pieces,
            expected,
            total_length: total,
            piece_length: info.piece_length,
        });
    }
    Ok((offsets, total))
}

/// Checks the piece length.
pub(super) fn piece_length(piece_length: u32) -> Result<(), TorrentError> {
    if !piece_length.is_power_of_two()
        || !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length)
    {
        return Err(TorrentError::BadPieceLength { piece_length });
    }
    Ok(())
}

/// Checks the torrent's name.
pub(super) fn name(name: &str) -> Result<(), TorrentError> {
    if name.is_empty() {
        return Err(TorrentError::EmptyName);
    }
    component(name).map_err(|reason| TorrentError::UnsafeName {
        name: name.to_owned(),
        reason,
    })
}

/// Checks one file's path.
fn path(name: &str, path: &[String]) -> Result<(), TorrentError> {
    let unsafe_path = |reason: String| TorrentError::UnsafePath {
        path: display_path(name, path),
        reason,
    };
    if path.len() > MAX_PATH_DEPTH {
        return Err(unsafe_path(format!(
            "it has {} components, more than the limit of {MAX_PATH_DEPTH}",
            path.len()
        )));
    }
    if path.first().is_some_and(|first| first.is_empty()) {
        return Err(unsafe_path(
            "it is an absolute path (its first component is empty)".into(),
        ));
    }
    for c in path {
        if c.is_empty() {
            return Err(unsafe_path("it has an empty component".into()));
        }
        component(c).map_err(unsafe_path)?;
    }
    Ok(())
}

/// Checks that a name or path component is a plain file name; the error is the reason.
pub(super) fn component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("it is empty".into());
    }
    if c == "." {
        return Err("\".\" means the current directory, not a file".into());
    }
    if c == ".." {
        return Err(
            "\"..\" means the parent directory and would leave the download directory".into(),
        );
    }
    if c.len() > MAX_COMPONENT_LEN {
        return Err(format!(
            "a name of {} bytes is longer than the limit of {MAX_COMPONENT_LEN} bytes",
            c.len()
        ));
    }
    if c.starts_with(['/', '\\']) {
        return Err(format!("{c:?} is an absolute path"));
    }
    if c.contains(['/', '\\']) {
        return Err(format!(
            "{c:?} contains a path separator (\"/\" or \"\\\"); a name must be one component"
        ));
    }
    if let Some(why) = c.chars().find_map(super::chars::in_name) {
        return Err(format!(
            "{c:?} contains {why}; rename it without that character"
        ));
    }
    let bytes = c.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(format!(
            "{c:?} starts with a Windows drive prefix and would be an absolute path there"
        ));
    }
    // Whatever the rules above missed on this platform: the name must be exactly one
    // normal component.
    let mut components = Path::new(c).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(normal)), None) if normal == c => Ok(()),
        _ => Err(format!("{c:?} is not a plain file name on this system")),
    }
}

/// No two files with the same path; no file that is a directory of another.
fn unique_paths(info: &Info) -> Result<(), TorrentError> {
    let mut paths: Vec<&[String]> = info.files.iter().map(|f| f.path.as_slice()).collect();
    paths.sort_unstable();
    // In sorted order, a path is followed directly by the paths it is a prefix of, so
    // comparing neighbours finds every duplicate and every conflict.
    for pair in paths.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a == b {
            return Err(TorrentError::DuplicatePath {
                path: display_path(&info.name, a),
            });
        }
        if b.starts_with(a) {
            return Err(TorrentError::PathConflict {
                file: display_path(&info.name, a),
                other: display_path(&info.name, b),
            });
        }
    }
    Ok(())
}

/// A file's path for people: the name and the components joined with `/`.
pub(super) fn display_path(name: &str, path: &[String]) -> String {
    let mut text = name.to_owned();
    for c in path {
        text.push('/');
        text.push_str(c);
    }
    text
}

/// Checks the tracker nodes.
pub(super) fn trackers(trackers: &[SocketAddr]) -> Result<(), TorrentError> {
    if trackers.is_empty() {
        return Err(TorrentError::NoTrackers);
    }
    if trackers.len() > MAX_TRACKERS {
        return Err(TorrentError::TooManyTrackers {
            count: trackers.len(),
            max: MAX_TRACKERS,
        });
    }
    let mut seen = HashSet::new();
    for addr in trackers {
        let bad = |reason: &str| TorrentError::BadTrackerAddress {
            addr: addr.to_string(),
            reason: reason.into(),
        };
        if addr.port() == 0 {
            return Err(bad("port 0 cannot be connected to"));
        }
        if addr.ip().is_unspecified() {
            return Err(bad("the unspecified address cannot be connected to"));
        }
        if !seen.insert(addr) {
            return Err(TorrentError::DuplicateTracker {
                addr: addr.to_string(),
            });
        }
    }
    Ok(())
}

/// Checks the comment.
pub(super) fn comment(comment: Option<&str>) -> Result<(), TorrentError> {
    match comment {
        Some(text) if text.len() > MAX_COMMENT_LEN => Err(TorrentError::CommentTooLong {
            len: text.len(),
            max: MAX_COMMENT_LEN,
        }),
        Some(text) => match text.chars().find_map(super::chars::in_comment) {
            Some(reason) => Err(TorrentError::UnsafeComment { reason }),
            None => Ok(()),
        },
        None => Ok(()),
    }
}
