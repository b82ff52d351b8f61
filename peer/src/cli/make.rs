//! Making a torrent file of a file or directory.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use certs::Fingerprint;
use tracker::torrent::Torrent;

use super::progress::hashing_bar;

/// Hashes `path` into a torrent for the cluster at `trackers` (CA `ca`), showing a bar.
/// The piece length is `piece_kib` KiB, or chosen from the size.
pub(crate) async fn make_torrent(
    path: &Path,
    trackers: &[SocketAddr],
    ca: Fingerprint,
    piece_kib: Option<u32>,
    comment: Option<String>,
) -> anyhow::Result<Torrent> {
    let total = size_of(path).with_context(|| format!("reading {}", path.display()))?;
    let piece_len = match piece_kib {
        Some(kib) => kib.checked_mul(1024).context("--piece-kib is too large")?,
        None => auto_piece_len(total),
    };
    let bar = hashing_bar(total, "hashing");
    let (path, trackers) = (path.to_path_buf(), trackers.to_vec());
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

/// Writes `torrent` to `output`.
pub(crate) fn write_torrent(torrent: &Torrent, output: &Path) -> anyhow::Result<()> {
    std::fs::write(output, torrent.encode())
        .with_context(|| format!("writing {}", output.display()))
}

/// A piece length for `total` bytes: about 2,000 pieces, between 256 KiB and 4 MiB (a
/// power of two). Few pieces would leave little to trade early on; many would make the
/// piece list and the per-piece work large.
fn auto_piece_len(total: u64) -> u32 {
    let target = (total / 2048).max(1).next_power_of_two();
    target.clamp(256 << 10, 4 << 20) as u32
}

/// The bytes in a file, or in every file below a directory.
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

#[cfg(test)]
mod tests {
    use super::auto_piece_len;

    #[test]
    fn piece_length_aims_at_about_two_thousand_pieces_within_bounds() {
        assert_eq!(auto_piece_len(0), 256 << 10);
        assert_eq!(auto_piece_len(100 << 20), 256 << 10);
        assert_eq!(auto_piece_len(1 << 30), 512 << 10);
        assert_eq!(auto_piece_len(4 << 30), 2 << 20);
        assert_eq!(auto_piece_len(1 << 40), 4 << 20);
    }
}
