//! Publishing, retrieving and searching torrents.

use super::*;

#[test]
fn publish_stores_the_file_byte_for_byte_with_its_facts() {
    let mut h = Harness::new();
    let file = torrent_file("Ubuntu 24.04 Desktop.iso", 10);
    let out = h.apply(Command::Publish {
        torrent: file.clone(),
        by: Uploader::Token(bob_token()),
        now_ms: 1_000,
    });
    let ih = info_hash_of(&file);
    assert_eq!(out, Output::Published(ih));
    assert_eq!(
        h.query(Query::TorrentFile(ih)),
        Output::TorrentFile(Some(file))
    );
    let s = h.summary(ih);
    assert_eq!(s.name, "Ubuntu 24.04 Desktop.iso");
    assert_eq!(s.size, 10 * u64::from(MIN_PIECE_LENGTH));
    assert_eq!(s.piece_count, 10);
    assert_eq!(s.uploader, "bob");
    assert_eq!(s.added_ms, 1_000);
    assert_eq!((s.seeders, s.leechers, s.completed), (0, 0, 0));
}

#[test]
fn publishing_again_changes_nothing() {
    let mut h = Harness::new();
    let ih = h.publish("a", 3, 1_000);
    let out = h.apply(Command::Publish {
        torrent: torrent_file("a", 3),
        by: Uploader::User("alice".into()),
        now_ms: 9_000,
    });
    assert_eq!(out, Output::AlreadyPublished(ih));
    let s = h.summary(ih);
    assert_eq!((s.uploader.as_str(), s.added_ms), ("bob", 1_000));
}

#[test]
fn invalid_torrent_is_refused_and_nothing_is_stored() {
    let mut h = Harness::new();
    let mut file = torrent_file("a", 3);
    file.truncate(file.len() - 1);
    let err = h.err(Command::Publish {
        torrent: file,
        by: Uploader::Token(bob_token()),
        now_ms: 1,
    });
    assert!(
        matches!(err, ApiError::InvalidTorrent(ref m) if m.contains("truncated")),
        "{err:?}"
    );
    assert_eq!(h.search("", 0, 10).total, 0);
}

#[test]
fn publish_needs_a_valid_token_or_an_enabled_user() {
    let mut h = Harness::new();
    let file = torrent_file("a", 3);
    let publish = |by| Command::Publish {
        torrent: file.clone(),
        by,
        now_ms: 1,
    };
    assert_eq!(
        h.err(publish(Uploader::Token(TokenHash::of("unknown")))),
        ApiError::Unauthorized
    );
    assert_eq!(
        h.err(publish(Uploader::User("nobody".into()))),
        ApiError::Unauthorized
    );

    h.ok(Command::SetUserDisabled {
        name: "bob".into(),
        disabled: true,
    });
    assert_eq!(
        h.err(publish(Uploader::Token(bob_token()))),
        ApiError::Unauthorized
    );
    assert_eq!(
        h.err(publish(Uploader::User("bob".into()))),
        ApiError::Unauthorized
    );
    h.ok(Command::SetUserDisabled {
        name: "bob".into(),
        disabled: false,
    });

    h.ok(Command::RevokeToken {
        user: "bob".into(),
        token_hash: bob_token(),
    });
    assert_eq!(
        h.err(publish(Uploader::Token(bob_token()))),
        ApiError::Unauthorized
    );
    assert_eq!(h.search("", 0, 10).total, 0);

    assert!(matches!(
        h.apply(publish(Uploader::User("bob".into()))),
        Output::Published(_)
    ));
}

#[test]
fn search_matches_every_word_case_insensitively() {
    let mut h = Harness::new();
    let ubuntu = h.publish("Ubuntu-24.04-Desktop.ISO", 2, 10);
    let server = h.publish("ubuntu-24.04-server.iso", 2, 20);
    let debian = h.publish("Debian 12 netinst.iso", 2, 30);

    let names = |p: SearchPage| p.hits.into_iter().map(|s| s.info_hash).collect::<Vec<_>>();
    assert_eq!(names(h.search("UBUNTU", 0, 10)), vec![server, ubuntu]);
    assert_eq!(names(h.search("  ubuntu   desktop ", 0, 10)), vec![ubuntu]);
    assert_eq!(names(h.search("iso", 0, 10)), vec![debian, server, ubuntu]);
    assert_eq!(names(h.search("iso nothing", 0, 10)), vec![]);
    assert_eq!(h.search("", 0, 10).total, 3);
}

#[test]
fn search_is_newest_first_paged_and_counts_all_matches() {
    let mut h = Harness::new();
    let mut published = Vec::new();
    for i in 0..25u32 {
        // Two torrents per millisecond: ties are broken by info hash.
        published.push((
            u64::from(i / 2),
            h.publish(&format!("file {i}"), 1, u64::from(i / 2)),
        ));
    }
    published.sort_by_key(|&(t, ih)| (std::cmp::Reverse(t), ih));
    let expected: Vec<InfoHash> = published.iter().map(|p| p.1).collect();

    let mut got = Vec::new();
    for page in 0..3 {
        let p = h.search("FILE", page, 10);
        assert_eq!(p.total, 25);
        got.extend(p.hits.into_iter().map(|s| s.info_hash));
    }
    assert_eq!(got, expected);
    assert!(h.search("file", 3, 10).hits.is_empty());
    assert_eq!(
        h.search("file", 0, 10_000).hits.len(),
        25,
        "per_page is capped, not refused"
    );
    assert_eq!(h.search("file", 0, 1_000).hits.len(), 25);
    let default = h.search("file", 0, 0);
    assert_eq!(
        default.hits.len(),
        25,
        "per_page 0 means the default page length"
    );
    assert_eq!(h.search("file", 1, 20).hits.len(), 5);
    assert!(
        h.search("file", u32::MAX, u32::MAX).hits.is_empty(),
        "no overflow"
    );
}

#[test]
fn search_refuses_too_many_words() {
    let h = Harness::new();
    let words: String = (0..100).map(|i| format!("w{i} ")).collect();
    assert!(matches!(
        h.query(Query::Search {
            words,
            page: 0,
            per_page: 10,
            order: Default::default(),
        }),
        Output::Error(ApiError::BadRequest(_))
    ));
    let same: String = "w ".repeat(10_000);
    assert!(matches!(
        h.query(Query::Search {
            words: same,
            page: 0,
            per_page: 10,
            order: Default::default(),
        }),
        Output::Search(_)
    ));
}

#[test]
fn unknown_torrent_has_no_file_and_no_details() {
    let h = Harness::new();
    let ih = InfoHash::from_bytes([1; 32]);
    assert_eq!(h.query(Query::TorrentFile(ih)), Output::TorrentFile(None));
    assert_eq!(h.query(Query::Details(ih)), Output::Details(None));
}
