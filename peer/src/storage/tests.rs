use std::sync::Arc;

use tracker::torrent::{FileEntry, Fingerprint, Info, MIN_PIECE_LENGTH, Torrent};

use super::*;

const P: usize = MIN_PIECE_LENGTH as usize;

/// A directory torrent with files of the given lengths and its content.
fn torrent(lengths: &[u64]) -> (Arc<Torrent>, Vec<u8>) {
    let total: u64 = lengths.iter().sum();
    let content: Vec<u8> = (0..total).map(|i| (i * 7 + i / 5000) as u8).collect();
    let info = Info {
        name: "t".into(),
        piece_length: MIN_PIECE_LENGTH,
        files: lengths
            .iter()
            .enumerate()
            .map(|(i, &length)| FileEntry {
                path: vec![format!("f{i}")],
                length,
            })
            .collect(),
        pieces: content
            .chunks(P)
            .flat_map(|p| *blake3::hash(p).as_bytes())
            .collect(),
    };
    let t = Torrent::new(
        info,
        vec!["192.0.2.1:7000".parse().unwrap()],
        Fingerprint::from_bytes([1; 32]),
        0,
        None,
    )
    .unwrap();
    (Arc::new(t), content)
}

fn piece(content: &[u8], i: u32) -> &[u8] {
    let start = i as usize * P;
    &content[start..(start + P).min(content.len())]
}

#[test]
fn the_store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PieceStore>();
}

#[test]
fn file_complete_needs_every_piece_touching_the_file() {
    // f0 covers piece 0 and the start of 1; f1 is empty; f2 the rest of 1 and all of 2.
    let (t, content) = torrent(&[P as u64 + 10, 0, 2 * P as u64 - 10]);
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        PieceStore::open(t.clone(), &dir.path().join("d"), &dir.path().join("s")).unwrap();
    assert!(store.file_complete(1), "an empty file is complete");
    assert!(!store.file_complete(3), "no such file");
    store.write_piece(0, piece(&content, 0)).unwrap();
    assert!(!store.file_complete(0));
    store.write_piece(1, piece(&content, 1)).unwrap();
    assert!(store.file_complete(0));
    assert!(!store.file_complete(2));
    store.write_piece(2, piece(&content, 2)).unwrap();
    assert!(store.file_complete(2) && store.is_complete());
    assert!(
        dir.path().join("d/t/f1").is_file(),
        "empty files are created"
    );
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let (t, content) = torrent(&[P as u64 * 2]);
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open(t, &dir.path().join("d"), &dir.path().join("s")).unwrap();
    assert!(matches!(
        store.write_piece(2, piece(&content, 0)),
        Err(StorageError::NoSuchPiece { piece: 2, count: 2 })
    ));
    assert!(matches!(
        store.write_piece(0, &content[..10]),
        Err(StorageError::WrongLength { got: 10, .. })
    ));
    assert!(matches!(
        store.read_piece(0),
        Err(StorageError::NotHave { piece: 0 })
    ));
    assert!(matches!(
        store.read_piece(u32::MAX),
        Err(StorageError::NoSuchPiece { .. })
    ));
    assert!(store.file_path(1).is_none());
}

#[test]
fn unsaved_changes_count_until_a_checkpoint() {
    let (t, content) = torrent(&[P as u64 * 3]);
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open(t, &dir.path().join("d"), &dir.path().join("s")).unwrap();
    assert_eq!(store.unsaved_changes(), 0);
    store.write_piece(0, piece(&content, 0)).unwrap();
    store.write_piece(0, piece(&content, 0)).unwrap();
    store.write_piece(2, piece(&content, 2)).unwrap();
    assert_eq!(store.unsaved_changes(), 2, "a repeated write is no change");
    store.checkpoint().unwrap();
    assert_eq!(store.unsaved_changes(), 0);
}

#[test]
fn writes_from_many_threads_with_checkpoints_between() {
    let (t, content) = torrent(&[P as u64 * 20 + 3, 5, P as u64 * 11]);
    let dir = tempfile::tempdir().unwrap();
    let (root, state) = (dir.path().join("d"), dir.path().join("s"));
    let options = StoreOptions {
        max_open_files: 1,
        ..StoreOptions::default()
    };
    let (store, _) =
        PieceStore::open_with(t.clone(), &root, &state, &options, &mut |_| {}).unwrap();
    let count = t.piece_count();
    std::thread::scope(|s| {
        for k in 0..4 {
            let (store, content) = (&store, &content);
            s.spawn(move || {
                for p in (k..count).step_by(4) {
                    store.write_piece(p, piece(content, p)).unwrap();
                    if p % 5 == 0 {
                        store.checkpoint().unwrap();
                    }
                    assert_eq!(store.read_piece(p).unwrap(), piece(content, p));
                }
            });
        }
    });
    store.checkpoint().unwrap();
    drop(store);
    let (store, report) = PieceStore::open(t, &root, &state).unwrap();
    assert_eq!(report.trusted, count);
    assert_eq!(report.reverified_ok + report.reverified_bad, 0);
    assert!(store.is_complete());
}
