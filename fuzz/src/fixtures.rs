//! Values the targets check inputs against, and the seed generator writes seeds for.

use std::sync::OnceLock;

use tracker::torrent::{FileEntry, Fingerprint, Info, MIN_PIECE_LENGTH, Torrent};

/// The tracker CA the fixtures' torrents name, and the CA of the tracker site that
/// the `web_upload` target uploads them to.
pub fn tracker_ca() -> Fingerprint {
    Fingerprint::from_bytes([1; 32])
}

/// A torrent whose content is known: its files' bytes, concatenated.
pub struct KnownTorrent {
    /// The torrent.
    pub torrent: Torrent,
    /// Its content.
    pub content: Vec<u8>,
}

/// The torrents a resume file is checked against (the `resume_file` target reads the
/// index of one from its input): a single-file torrent of 3 pieces, and a directory
/// torrent of 4 pieces whose files include an empty one and one in a subdirectory.
pub fn resume_torrents() -> &'static [KnownTorrent] {
    static TORRENTS: OnceLock<Vec<KnownTorrent>> = OnceLock::new();
    TORRENTS.get_or_init(|| {
        vec![
            known(
                "single.bin",
                vec![FileEntry {
                    path: vec![],
                    length: 40_000,
                }],
            ),
            known(
                "album",
                vec![
                    FileEntry {
                        path: vec!["disc 1".into(), "track.flac".into()],
                        length: 20_000,
                    },
                    FileEntry {
                        path: vec!["empty".into()],
                        length: 0,
                    },
                    FileEntry {
                        path: vec!["cover.jpg".into()],
                        length: 30_000,
                    },
                ],
            ),
        ]
    })
}

fn known(name: &str, files: Vec<FileEntry>) -> KnownTorrent {
    let total: u64 = files.iter().map(|f| f.length).sum();
    let content: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
    let pieces = content
        .chunks(MIN_PIECE_LENGTH as usize)
        .flat_map(|piece| *blake3::hash(piece).as_bytes())
        .collect();
    let info = Info {
        name: name.into(),
        piece_length: MIN_PIECE_LENGTH,
        files,
        pieces,
    };
    let torrent = Torrent::new(
        info,
        vec!["192.0.2.1:7000".parse().expect("an address")],
        tracker_ca(),
        1_700_000_000,
        None,
    )
    .expect("a valid torrent");
    KnownTorrent { torrent, content }
}
