//! Tests of the torrent-file format: round trips, creation from disk, every rejection,
//! hostile paths and random input.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tracker::torrent::{
    CreateError, FORMAT_VERSION, FileEntry, Fingerprint, Info, InfoHash, MAGIC, MAX_COMMENT_LEN,
    MAX_FILES, MAX_PATH_DEPTH, MAX_TORRENT_FILE_LEN, MIN_PIECE_LENGTH, Torrent, TorrentError,
    create,
};

const PL: u32 = MIN_PIECE_LENGTH;

fn ca() -> Fingerprint {
    Fingerprint::from_bytes([7; 32])
}

fn trackers() -> Vec<SocketAddr> {
    vec![
        "192.0.2.1:7000".parse().unwrap(),
        "[2001:db8::1]:7001".parse().unwrap(),
    ]
}

/// Piece hashes of `content` at piece length `pl`.
fn hashes(content: &[u8], pl: u32) -> Vec<u8> {
    content
        .chunks(pl as usize)
        .flat_map(|piece| *blake3::hash(piece).as_bytes())
        .collect()
}

/// An info part for files of the given paths and lengths, with correct piece hashes of
/// zero bytes.
fn info(name: &str, files: &[(&[&str], u64)]) -> Info {
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    Info {
        name: name.into(),
        piece_length: PL,
        files: files
            .iter()
            .map(|(path, length)| FileEntry {
                path: path.iter().map(|c| c.to_string()).collect(),
                length: *length,
            })
            .collect(),
        pieces: hashes(&vec![0u8; total as usize], PL),
    }
}

fn new(info: Info) -> Result<Torrent, TorrentError> {
    Torrent::new(
        info,
        trackers(),
        ca(),
        1_700_000_000,
        Some("a comment".into()),
    )
}

fn sample() -> Torrent {
    new(info(
        "sample",
        &[
            (&["a.txt"], 20_000),
            (&["empty"], 0),
            (&["sub", "b.bin"], 30_000),
        ],
    ))
    .unwrap()
}

// ----- An independent encoder, written from the module docs. -----

#[derive(serde::Serialize)]
struct RawFile {
    path: Vec<String>,
    length: u64,
}

#[derive(serde::Serialize)]
struct RawInfo {
    name: String,
    piece_length: u32,
    files: Vec<RawFile>,
    #[serde(with = "serde_bytes")]
    pieces: Vec<u8>,
}

#[derive(serde::Serialize)]
struct RawTracker {
    addr: String,
}

#[derive(serde::Serialize)]
struct RawTorrent {
    #[serde(with = "serde_bytes")]
    info: Vec<u8>,
    trackers: Vec<RawTracker>,
    #[serde(with = "serde_bytes")]
    tracker_ca: Vec<u8>,
    created: u64,
    comment: Option<String>,
}

fn raw_info(info: &Info) -> RawInfo {
    RawInfo {
        name: info.name.clone(),
        piece_length: info.piece_length,
        files: info
            .files
            .iter()
            .map(|f| RawFile {
                path: f.path.clone(),
                length: f.length,
            })
            .collect(),
        pieces: info.pieces.clone(),
    }
}

fn raw_torrent(info_bytes: Vec<u8>) -> RawTorrent {
    RawTorrent {
        info: info_bytes,
        trackers: vec![RawTracker {
            addr: "192.0.2.1:7000".into(),
        }],
        tracker_ca: vec![7; 32],
        created: 5,
        comment: None,
    }
}

fn file_bytes(body: &impl serde::Serialize) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend(rmp_serde::to_vec_named(body).unwrap());
    out
}

/// A file with this (possibly invalid) info part, as another implementation would write it.
fn file_with_info(info: &Info) -> Vec<u8> {
    file_bytes(&raw_torrent(
        rmp_serde::to_vec_named(&raw_info(info)).unwrap(),
    ))
}

fn parse_err(bytes: &[u8]) -> TorrentError {
    let err = Torrent::parse(bytes).unwrap_err();
    // Every message is a sentence for a person, not a debug dump.
    let text = err.to_string();
    assert!(text.len() > 15 && !text.contains("Error {"), "{text}");
    err
}

// ----- Round trips and the layout. -----

#[test]
fn encode_parse_round_trip_is_exact() {
    let torrent = sample();
    let bytes = torrent.encode();
    assert_eq!(&bytes[..8], b"BTTORENT");
    assert_eq!(&bytes[8..10], &[0, 1]);
    let parsed = Torrent::parse(&bytes).unwrap();
    assert_eq!(parsed, torrent);
    assert_eq!(parsed.encode(), bytes);
    assert_eq!(parsed.info_hash(), torrent.info_hash());
    assert_eq!(parsed.comment(), Some("a comment"));
    assert_eq!(parsed.created(), 1_700_000_000);
    assert_eq!(parsed.trackers(), trackers().as_slice());
    assert_eq!(parsed.tracker_ca(), ca());
    assert_eq!(
        parsed.info_hash(),
        InfoHash::from_bytes(*blake3::hash(parsed.info_bytes()).as_bytes())
    );
}

#[test]
fn independent_encoding_from_the_docs_parses_and_hashes_the_info_bytes() {
    let info = info("x", &[(&[], 40_000)]);
    let info_bytes = rmp_serde::to_vec_named(&raw_info(&info)).unwrap();
    let bytes = file_bytes(&raw_torrent(info_bytes.clone()));
    let parsed = Torrent::parse(&bytes).unwrap();
    assert_eq!(parsed.info(), &info);
    assert_eq!(parsed.info_bytes(), info_bytes.as_slice());
    assert_eq!(
        parsed.info_hash().to_string(),
        blake3::hash(&info_bytes).to_hex().as_str()
    );
    assert!(parsed.is_single_file());
    assert_eq!(parsed.comment(), None);
    // Our own encoder writes the same bytes.
    assert_eq!(parsed.encode(), bytes);
}

#[test]
fn info_hash_ignores_trackers_and_comment() {
    let a = sample();
    let b = Torrent::new(
        a.info().clone(),
        vec!["198.51.100.1:9".parse().unwrap()],
        Fingerprint::from_bytes([1; 32]),
        0,
        None,
    )
    .unwrap();
    assert_eq!(a.info_hash(), b.info_hash());
    assert_ne!(a.encode(), b.encode());
}

#[test]
fn pieces_lengths_and_spans() {
    // Files: 20,000 + 0 + 30,000 = 50,000 bytes; pieces of 16,384: 4 pieces, last 848.
    let t = sample();
    assert_eq!(t.total_length(), 50_000);
    assert_eq!(t.piece_count(), 4);
    assert_eq!(t.piece_len(0), Some(16_384));
    assert_eq!(t.piece_len(3), Some(50_000 - 3 * 16_384));
    assert_eq!(t.piece_len(4), None);
    assert_eq!(t.piece_hash(4), None);
    assert_eq!(t.piece_spans(4), None);
    assert_eq!(t.file_range(2), Some(20_000..50_000));
    assert_eq!(t.file_range(3), None);
    let spans = t.piece_spans(1).unwrap();
    assert_eq!(
        spans
            .iter()
            .map(|s| (s.file, s.offset, s.len))
            .collect::<Vec<_>>(),
        vec![(0, 16_384, 20_000 - 16_384), (2, 0, 32_768 - 20_000)]
    );
    for piece in 0..t.piece_count() {
        let spans = t.piece_spans(piece).unwrap();
        assert_eq!(
            spans.iter().map(|s| s.len).sum::<u64>(),
            t.piece_len(piece).unwrap()
        );
        assert!(spans.iter().all(|s| s.len > 0 && s.file != 1));
        let zeros = vec![0u8; t.piece_len(piece).unwrap() as usize];
        assert!(t.piece_matches(piece, &zeros));
        assert!(!t.piece_matches(piece, &zeros[1..]));
    }
    assert!(!t.piece_matches(9, b""));
}

#[test]
fn zero_length_torrent_has_no_pieces() {
    let t = new(info("empty", &[(&[], 0)])).unwrap();
    assert_eq!(t.piece_count(), 0);
    assert_eq!(t.total_length(), 0);
    assert_eq!(Torrent::parse(&t.encode()).unwrap(), t);
}

// ----- Creation from disk. -----

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Deterministic content of a given length.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn create_from_directory_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let layout: Vec<(&str, usize)> = vec![
        ("b/z.bin", 1),
        ("a.txt", 16_383),
        ("b/c/deep.dat", 16_385),
        ("b/empty", 0),
        ("a0", 50_001),
        ("b/y", 3),
        ("Z-upper", 70_000),
    ];
    for (i, (path, len)) in layout.iter().enumerate() {
        write(&root.join(path), &content(i as u8, *len));
    }
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();

    let torrent = create::from_path(&root, PL, trackers(), ca(), Some("tree".into())).unwrap();
    assert_eq!(torrent.name(), "tree");
    assert!(!torrent.is_single_file());
    let paths: Vec<String> = (0..torrent.files().len())
        .map(|i| torrent.display_path(i).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "tree/Z-upper",
            "tree/a.txt",
            "tree/a0",
            "tree/b/c/deep.dat",
            "tree/b/empty",
            "tree/b/y",
            "tree/b/z.bin"
        ]
    );

    // The content is the files concatenated in torrent order; recompute every hash.
    let mut all = Vec::new();
    for i in 0..torrent.files().len() {
        let path = torrent.output_path(dir.path(), i).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, torrent.files()[i].length);
        assert_eq!(torrent.file_range(i).unwrap().start, all.len() as u64);
        all.extend(bytes);
    }
    let total: usize = layout.iter().map(|(_, len)| len).sum();
    assert_eq!(torrent.total_length(), total as u64);
    assert_eq!(torrent.info().pieces, hashes(&all, PL));
    for piece in 0..torrent.piece_count() {
        // Reassemble the piece from its spans, as storage code would.
        let mut data = Vec::new();
        for span in torrent.piece_spans(piece).unwrap() {
            let bytes = std::fs::read(torrent.output_path(dir.path(), span.file).unwrap()).unwrap();
            data.extend_from_slice(&bytes[span.offset as usize..(span.offset + span.len) as usize]);
        }
        assert!(torrent.piece_matches(piece, &data), "piece {piece}");
    }

    let bytes = torrent.encode();
    let parsed = Torrent::parse(&bytes).unwrap();
    assert_eq!(parsed, torrent);
    assert_eq!(parsed.encode(), bytes);

    // The info hash depends on the content only: creating again gives the same one.
    let again = create::from_path(&root, PL, trackers(), ca(), None).unwrap();
    assert_eq!(again.info_hash(), torrent.info_hash());
    // A different piece length is a different torrent.
    let other = create::from_path(&root, PL * 2, trackers(), ca(), None).unwrap();
    assert_ne!(other.info_hash(), torrent.info_hash());
}

#[test]
fn create_from_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("movie.mkv");
    let data = content(3, 100_000);
    write(&file, &data);
    let torrent = create::from_path(&file, PL, trackers(), ca(), None).unwrap();
    assert!(torrent.is_single_file());
    assert_eq!(torrent.name(), "movie.mkv");
    assert_eq!(torrent.files()[0].path, Vec::<String>::new());
    assert_eq!(torrent.info().pieces, hashes(&data, PL));
    let out = Path::new("/downloads");
    assert_eq!(
        torrent.output_path(out, 0).unwrap(),
        PathBuf::from("/downloads/movie.mkv")
    );
    assert_eq!(torrent.output_path(out, 1), None);
    assert_eq!(Torrent::parse(&torrent.encode()).unwrap(), torrent);
}

#[test]
fn create_big_file_with_big_pieces() {
    // Several read buffers and pieces that are not aligned to them.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    let data = content(5, 3 * (1 << 20) + 12_345);
    write(&file, &data);
    let torrent = create::from_path(&file, 1 << 19, trackers(), ca(), None).unwrap();
    assert_eq!(torrent.info().pieces, hashes(&data, 1 << 19));
}

#[test]
fn create_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = create::from_path(&missing, PL, trackers(), ca(), None).unwrap_err();
    assert!(matches!(err, CreateError::Io { .. }));
    assert!(err.to_string().contains("missing"), "{err}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = create::from_path(&empty, PL, trackers(), ca(), None).unwrap_err();
    assert!(
        matches!(err, CreateError::Invalid(TorrentError::NoFiles)),
        "{err}"
    );

    let err = create::from_path(&empty, 1000, trackers(), ca(), None).unwrap_err();
    assert!(
        matches!(
            err,
            CreateError::Invalid(TorrentError::BadPieceLength { .. })
        ),
        "{err}"
    );
    let err = create::from_path(&empty, PL, vec![], ca(), None).unwrap_err();
    assert!(matches!(
        err,
        CreateError::Invalid(TorrentError::NoTrackers)
    ));
}

#[cfg(unix)]
#[test]
fn create_refuses_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    write(&root.join("real"), b"data");
    std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
    let err = create::from_path(&root, PL, trackers(), ca(), None).unwrap_err();
    assert!(matches!(err, CreateError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // The top-level path as a link too.
    let link = dir.path().join("top");
    std::os::unix::fs::symlink(&root, &link).unwrap();
    let err = create::from_path(&link, PL, trackers(), ca(), None).unwrap_err();
    assert!(matches!(err, CreateError::Symlink { .. }), "{err}");
}

// ----- Rejections. -----

#[test]
fn rejects_oversized_files() {
    let mut bytes = sample().encode();
    bytes.resize(MAX_TORRENT_FILE_LEN + 1, 0);
    let err = parse_err(&bytes);
    assert!(matches!(err, TorrentError::TooLarge { .. }));
    assert!(err.to_string().contains("larger than the limit"));
}

#[test]
fn rejects_other_files() {
    for bytes in [&b"d8:announce"[..], b"\x89PNG\r\n\x1a\n....", b"X"] {
        let err = parse_err(bytes);
        assert_eq!(err, TorrentError::NotATorrent);
        assert!(err.to_string().contains("not a ByteTorrent torrent file"));
    }
}

#[test]
fn rejects_other_versions() {
    let mut bytes = sample().encode();
    bytes[9] = 2;
    let err = parse_err(&bytes);
    assert_eq!(
        err,
        TorrentError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    assert!(err.to_string().contains("newer program"), "{err}");
    bytes[9] = 0;
    assert!(matches!(
        parse_err(&bytes),
        TorrentError::UnsupportedVersion { found: 0, .. }
    ));
}

#[test]
fn every_truncation_says_truncated() {
    let bytes = sample().encode();
    for len in 0..bytes.len() {
        let err = parse_err(&bytes[..len]);
        assert!(
            matches!(err, TorrentError::Truncated { .. }),
            "length {len}: {err}"
        );
        assert!(err.to_string().contains("truncated"));
    }
}

#[test]
fn rejects_trailing_bytes() {
    let mut bytes = sample().encode();
    bytes.push(0);
    assert!(matches!(
        parse_err(&bytes),
        TorrentError::TrailingData { extra: 1, .. }
    ));
}

#[test]
fn rejects_garbage_bodies() {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[0, 1]);
    bytes.extend_from_slice(b"\x93\x01\x02\x03");
    assert!(matches!(parse_err(&bytes), TorrentError::Corrupt { .. }));

    #[derive(serde::Serialize)]
    struct Extra {
        info: u8,
        surprise: u8,
    }
    let err = parse_err(&file_bytes(&Extra {
        info: 1,
        surprise: 2,
    }));
    assert!(matches!(err, TorrentError::Corrupt { .. }), "{err}");

    // A CA that is not 32 bytes.
    let mut raw = raw_torrent(rmp_serde::to_vec_named(&raw_info(&info("x", &[(&[], 1)]))).unwrap());
    raw.tracker_ca = vec![1; 31];
    assert_eq!(
        parse_err(&file_bytes(&raw)),
        TorrentError::BadTrackerCa { len: 31 }
    );
}

#[test]
fn rejects_inconsistent_piece_counts() {
    let mut bad = info("x", &[(&[], 40_000)]);
    bad.pieces.truncate(64);
    let err = parse_err(&file_with_info(&bad));
    assert_eq!(
        err,
        TorrentError::PieceCountMismatch {
            pieces: 2,
            expected: 3,
            total_length: 40_000,
            piece_length: PL
        }
    );
    assert!(err.to_string().contains("3 pieces"), "{err}");
    assert_eq!(new(bad).unwrap_err(), err);

    let mut odd = info("x", &[(&[], 40_000)]);
    odd.pieces.pop();
    assert!(matches!(
        parse_err(&file_with_info(&odd)),
        TorrentError::BadPieceHashes { len: 95 }
    ));

    let overflow = Info {
        files: vec![
            FileEntry {
                path: vec!["a".into()],
                length: u64::MAX,
            },
            FileEntry {
                path: vec!["b".into()],
                length: 1,
            },
        ],
        ..info("x", &[])
    };
    assert_eq!(
        parse_err(&file_with_info(&overflow)),
        TorrentError::TotalLengthOverflow
    );
}

#[test]
fn rejects_bad_piece_lengths() {
    for piece_length in [0, 1, 8192, 16_385, 3 << 14, 128 << 20, u32::MAX] {
        let mut bad = info("x", &[(&[], 0)]);
        bad.piece_length = piece_length;
        let err = parse_err(&file_with_info(&bad));
        assert_eq!(err, TorrentError::BadPieceLength { piece_length });
        assert!(err.to_string().contains("power of two"));
    }
}

#[test]
fn rejects_missing_and_too_many_things() {
    assert_eq!(
        parse_err(&file_with_info(&info("x", &[]))),
        TorrentError::NoFiles
    );
    assert_eq!(
        parse_err(&file_with_info(&info("", &[(&[], 1)]))),
        TorrentError::EmptyName
    );

    let names: Vec<String> = (0..=MAX_FILES).map(|i| format!("f{i}")).collect();
    let many = Info {
        name: "many".into(),
        piece_length: PL,
        files: names
            .iter()
            .map(|n| FileEntry {
                path: vec![n.clone()],
                length: 0,
            })
            .collect(),
        pieces: vec![],
    };
    assert!(matches!(
        parse_err(&file_with_info(&many)),
        TorrentError::TooManyFiles { .. }
    ));

    let deep: Vec<&str> = vec!["d"; MAX_PATH_DEPTH + 1];
    let err = parse_err(&file_with_info(&info("x", &[(&deep, 1)])));
    assert!(matches!(err, TorrentError::UnsafePath { .. }), "{err}");
    let ok: Vec<&str> = vec!["d"; MAX_PATH_DEPTH];
    new(info("x", &[(&ok, 1)])).unwrap();

    let mut raw = raw_torrent(rmp_serde::to_vec_named(&raw_info(&info("x", &[(&[], 1)]))).unwrap());
    raw.trackers.clear();
    assert_eq!(parse_err(&file_bytes(&raw)), TorrentError::NoTrackers);

    let long = "c".repeat(MAX_COMMENT_LEN + 1);
    let err = Torrent::new(info("x", &[(&[], 1)]), trackers(), ca(), 0, Some(long)).unwrap_err();
    assert!(matches!(err, TorrentError::CommentTooLong { .. }));
}

#[test]
fn rejects_bad_trackers() {
    let info_bytes = rmp_serde::to_vec_named(&raw_info(&info("x", &[(&[], 1)]))).unwrap();
    for addr in [
        "tracker.example:7000",
        "192.0.2.1",
        "1.2.3.4:99999",
        "",
        "0.0.0.0:7000",
        "[::]:1",
        "192.0.2.1:0",
    ] {
        let mut raw = raw_torrent(info_bytes.clone());
        raw.trackers = vec![RawTracker { addr: addr.into() }];
        let err = parse_err(&file_bytes(&raw));
        assert!(
            matches!(err, TorrentError::BadTrackerAddress { .. }),
            "{addr}: {err}"
        );
    }
    let mut raw = raw_torrent(info_bytes);
    raw.trackers = vec![
        RawTracker {
            addr: "192.0.2.1:7000".into(),
        },
        RawTracker {
            addr: "192.0.2.1:7000".into(),
        },
    ];
    assert!(matches!(
        parse_err(&file_bytes(&raw)),
        TorrentError::DuplicateTracker { .. }
    ));
}

// ----- Paths. -----

const HOSTILE: &[&str] = &[
    "",
    ".",
    "..",
    "/etc",
    "/",
    "a/b",
    "../x",
    "a\\b",
    "\\\\server\\share",
    "C:",
    "c:evil",
    "C:\\Windows",
    "nul\0byte",
    "line\nbreak",
    "tab\t",
    "del\x7f",
];

#[test]
fn hostile_names_and_components_are_rejected() {
    let long = "x".repeat(256);
    for bad in HOSTILE.iter().copied().chain([long.as_str()]) {
        // As a path component, anywhere in the path.
        for path in [vec![bad], vec!["ok", bad], vec!["ok", bad, "file"]] {
            let err = parse_err(&file_with_info(&info("safe", &[(&path, 1)])));
            assert!(
                matches!(err, TorrentError::UnsafePath { .. }),
                "{path:?}: {err}"
            );
        }
        // As the name.
        let err = parse_err(&file_with_info(&info(bad, &[(&[], 1)])));
        assert!(
            matches!(
                err,
                TorrentError::UnsafeName { .. } | TorrentError::EmptyName
            ),
            "{bad:?}: {err}"
        );
    }
    let err = parse_err(&file_with_info(&info("t", &[(&["a", ".."], 1)])));
    assert!(err.to_string().contains("parent directory"), "{err}");
    let err = parse_err(&file_with_info(&info("t", &[(&["", "etc"], 1)])));
    assert!(err.to_string().contains("absolute"), "{err}");
    let err = parse_err(&file_with_info(&info("t", &[(&["/etc"], 1)])));
    assert!(err.to_string().contains("absolute"), "{err}");
}

#[test]
fn bidi_overrides_and_invisible_characters_are_refused_and_named() {
    // "a\u{202e}gpj.exe" shows as "aexe.jpg": a program passing for a picture.
    let disguised = "a\u{202e}gpj.exe";
    let err = parse_err(&file_with_info(&info(disguised, &[(&[], 1)])));
    assert!(matches!(err, TorrentError::UnsafeName { .. }), "{err}");
    assert!(
        err.to_string().contains("U+202E (RIGHT-TO-LEFT OVERRIDE"),
        "{err}"
    );
    let err = parse_err(&file_with_info(&info(
        "album",
        &[(&["disc", disguised], 1)],
    )));
    assert!(matches!(err, TorrentError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("U+202E"), "{err}");
    for (ch, named) in [
        ('\u{2067}', "U+2067 (RIGHT-TO-LEFT ISOLATE"),
        ('\u{200B}', "U+200B (ZERO WIDTH SPACE"),
        ('\u{200F}', "U+200F (RIGHT-TO-LEFT MARK"),
        ('\u{FEFF}', "U+FEFF (ZERO WIDTH NO-BREAK SPACE"),
        ('\u{85}', "U+0085 (a control character)"),
    ] {
        let name = format!("photo{ch}.jpg");
        let err = parse_err(&file_with_info(&info(&name, &[(&[], 1)])));
        assert!(err.to_string().contains(named), "{ch:?}: {err}");
    }
    // In the comment too (people read it on the torrent's page); line breaks stay fine.
    let with_comment = |comment: &str| {
        Torrent::new(
            info("t", &[(&[], 1)]),
            trackers(),
            ca(),
            1_700_000_000,
            Some(comment.into()),
        )
    };
    let err = with_comment("run \u{202e}gpj.exe").unwrap_err();
    assert!(matches!(err, TorrentError::UnsafeComment { .. }), "{err}");
    assert!(err.to_string().contains("U+202E"), "{err}");
    assert!(with_comment("two\nlines\tand a tab").is_ok());
    // Scripts and emoji that need joiners are not touched.
    for fine in [
        "می\u{200c}خواهم",
        "क्\u{200d}ष",
        "👩\u{200d}💻 notes",
        "Ünïcødé ✓",
    ] {
        assert!(new(info(fine, &[(&[], 1)])).is_ok(), "{fine:?}");
    }
}

#[test]
fn duplicate_and_conflicting_paths_are_rejected() {
    let err = parse_err(&file_with_info(&info(
        "t",
        &[(&["a", "b"], 1), (&["c"], 1), (&["a", "b"], 1)],
    )));
    assert_eq!(
        err,
        TorrentError::DuplicatePath {
            path: "t/a/b".into()
        }
    );
    let err = parse_err(&file_with_info(&info(
        "t",
        &[(&["a", "b", "c"], 1), (&["a", "b0"], 1), (&["a", "b"], 1)],
    )));
    assert_eq!(
        err,
        TorrentError::PathConflict {
            file: "t/a/b".into(),
            other: "t/a/b/c".into()
        }
    );
    // A single-file entry (empty path) next to other files.
    let err = parse_err(&file_with_info(&info("t", &[(&[], 1), (&["x"], 1)])));
    assert!(matches!(err, TorrentError::PathConflict { .. }), "{err}");
    let err = parse_err(&file_with_info(&info("t", &[(&[], 1), (&[], 1)])));
    assert!(matches!(err, TorrentError::DuplicatePath { .. }), "{err}");
}

#[test]
fn output_paths_stay_inside_the_root() {
    let odd = [
        "...",
        "..a",
        "a..",
        ".hidden",
        "a b",
        "ünïcödé",
        "日本語",
        "-rf",
        "~",
        "$HOME",
        "*",
        "con",
        "ab:c",
    ];
    let files: Vec<Vec<&str>> = odd
        .iter()
        .enumerate()
        .map(|(i, c)| if i % 2 == 0 { vec![*c] } else { vec!["dir", c] })
        .collect();
    let spec: Vec<(&[&str], u64)> = files.iter().map(|p| (p.as_slice(), 1)).collect();
    let torrent = new(info("...", &spec)).unwrap();
    let root = Path::new("/srv/downloads");
    for (i, path) in files.iter().enumerate() {
        let out = torrent.output_path(root, i).unwrap();
        assert!(out.starts_with(root), "{out:?}");
        assert_eq!(
            out.components().count(),
            root.components().count() + 1 + path.len()
        );
        assert!(
            out.strip_prefix(root)
                .unwrap()
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{out:?}"
        );
    }
}

// ----- Random input never panics. -----

/// A small deterministic generator (xorshift64*), enough for fuzzing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_input_never_panics() {
    let valid = sample().encode();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;

    // Random byte strings, with and without a valid header.
    for i in 0..4000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 {
            let mut with_header = valid[..10].to_vec();
            with_header.append(&mut bytes);
            bytes = with_header;
        }
        if Torrent::parse(&bytes).is_ok() {
            accepted += 1;
        }
    }

    // Random byte flips, insertions and deletions of a valid file.
    for _ in 0..6000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                2 => bytes.insert(at, rng.next() as u8),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        if let Ok(torrent) = Torrent::parse(&bytes) {
            accepted += 1;
            // Whatever is accepted is consistent and re-encodes.
            assert_eq!(Torrent::parse(&torrent.encode()).unwrap(), torrent);
            for i in 0..torrent.files().len() {
                assert!(
                    torrent
                        .output_path(Path::new("/r"), i)
                        .unwrap()
                        .starts_with("/r")
                );
            }
            for piece in 0..torrent.piece_count() {
                let spans = torrent.piece_spans(piece).unwrap();
                assert_eq!(
                    spans.iter().map(|s| s.len).sum::<u64>(),
                    torrent.piece_len(piece).unwrap()
                );
            }
        }
    }
    // Mutations inside hashes or the comment keep the file valid.
    assert!(accepted > 0);
}
