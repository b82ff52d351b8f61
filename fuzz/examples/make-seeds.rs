//! Writes the seed corpus, `fuzz/seeds/TARGET/NAME`, from real encodings: every seed is
//! made by the code that writes that format for real (the frame encoder, the torrent
//! writer, the write-ahead log, the file storage, the state machines' snapshots, the
//! piece store's checkpoint, the status file writer), wrapped in the small header its
//! target reads (see `bytetorrent_fuzz::targets`). Every seed is run through its target
//! before it is written. Run it again and the files are the same, but for the resume
//! files, which hold the data files' modification times.
//!
//! ```sh
//! cd fuzz && cargo run --release --example make-seeds
//! ```
//!
//! It replaces each target's directory; a crash found by fuzzing goes into a regression
//! test in the crate that owns the decoder, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytetorrent_fuzz::TARGETS;
use bytetorrent_fuzz::cluster::{Cluster, step};
use bytetorrent_fuzz::fixtures::resume_torrents;
use bytetorrent_fuzz::input::join;
use bytetorrent_fuzz::kv::{
    Kv, KvAdminRequest, KvAdminResponse, KvCommand, KvOutput, KvRequest, KvResponse,
};
use bytetorrent_fuzz::targets::{UPLOAD_BOUNDARIES, seeds_dir, upload_flags};
use bytetorrent_fuzz::web::{Field, form_body};
use certs::Fingerprint;
use paxos::runtime::ClusterView;
use paxos::wal::{Wal, WalOptions};
use paxos::{
    Ballot, Command, DurableState, Entry, FileStorage, Membership, MembershipChange, Message,
    MessageOf, PromisedEntry, Record, Session, Snapshot, StateMachine, Storage,
};
use peer::runtime::{NeighbourStatus, Phase, TorrentStatus};
use peer::status_file::ProcessStatus;
use peer::storage::PieceStore;
use peer::wire::{Control, PieceHeader, PieceRequest};
use serde::Serialize;
use tracker::api::{
    AdminRequest, AdminResponse, ApiError, ClusterStatus, MemberChange, MembersPage, NodeStatus,
    PeerInfo, Request, Response, SearchOrder, SearchPage, SortKey, SwarmMember, TorrentSummary,
    UserInfo, WriteId,
};
use tracker::fuzzing::UploadSite;
use tracker::state::{
    Command as TrackerCommand, Output as TrackerOutput, Role, StateConfig, TokenHash, TrackerState,
    Uploader,
};
use tracker::torrent::{FileEntry, Info, MIN_PIECE_LENGTH, Torrent};
use tracker::{Bitfield, torrent::InfoHash};
use transport::DEFAULT_MAX_FRAME;
use transport::fuzzing::encode_frame;

type TrackerMessage = MessageOf<TrackerState>;
type KvMessage = MessageOf<Kv>;
type TrackerRecord = Record<TrackerCommand, TrackerOutput>;

fn main() {
    let mut seeds: BTreeMap<&str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        seeds
            .entry(target)
            .or_default()
            .push((name.to_owned(), bytes));
    };

    // Frames on streams: [max][reads][kind][frames...].
    let tracker_batch = tracker_messages();
    let kv_batch = kv_messages();
    add(
        "transport_frames",
        "paxos-channel",
        [
            vec![19, 0, 4],
            frame(&tracker_batch[..3]),
            frame(&tracker_batch[3..]),
        ]
        .concat(),
    );
    add(
        "transport_frames",
        "peer-channel",
        [
            vec![14, 7, 4],
            frame(&hello()),
            frame(&Control::Have(vec![0, 2])),
            frame(&Control::Interested(false)),
        ]
        .concat(),
    );
    add(
        "transport_frames",
        "tracker-request",
        [vec![4, 0, 1], frame(&tracker_requests()[2])].concat(),
    );
    add(
        "transport_frames",
        "piece-request",
        [vec![14, 0, 3], frame(&piece_request())].concat(),
    );
    add(
        "transport_frames",
        "frame-too-large",
        [vec![0, 3, 4], frame(&"x".repeat(100))].concat(),
    );

    // Peer messages: [which][body].
    for (i, control) in [
        hello(),
        Control::Refuse("no such torrent".into()),
        Control::Have(vec![1, 2, 3]),
        Control::Lost(2),
        Control::Interested(true),
    ]
    .iter()
    .enumerate()
    {
        add(
            "peer_messages",
            &format!("control-{i}"),
            with(0, body(control)),
        );
    }
    add(
        "peer_messages",
        "piece-request",
        with(1, body(&piece_request())),
    );
    for (i, header) in [
        PieceHeader::Data { len: 16_384 },
        PieceHeader::NotHave,
        PieceHeader::Busy,
    ]
    .iter()
    .enumerate()
    {
        add(
            "peer_messages",
            &format!("piece-header-{i}"),
            with(2, body(header)),
        );
    }

    // Tracker protocol: [which][body].
    for (i, request) in tracker_requests().iter().enumerate() {
        add(
            "tracker_messages",
            &format!("request-{i}"),
            with(0, body(request)),
        );
    }
    for (i, response) in tracker_responses().iter().enumerate() {
        add(
            "tracker_messages",
            &format!("response-{i}"),
            with(1, body(response)),
        );
    }
    for (i, request) in admin_requests().iter().enumerate() {
        add(
            "tracker_messages",
            &format!("admin-request-{i}"),
            with(2, body(request)),
        );
    }
    for (i, response) in admin_responses().iter().enumerate() {
        add(
            "tracker_messages",
            &format!("admin-response-{i}"),
            with(3, body(response)),
        );
    }

    // Paxos batches: [which][body].
    add(
        "paxos_messages",
        "tracker-batch",
        with(0, body(&tracker_batch)),
    );
    add(
        "paxos_messages",
        "tracker-snapshot",
        with(0, body(&vec![install_snapshot()])),
    );
    add("paxos_messages", "kv-batch", with(1, body(&kv_batch)));

    // Scripts of steps for three real replicas, and real messages replayed into them.
    for (name, script) in replica_scripts() {
        add(
            "paxos_replica",
            name,
            join(script.iter().map(Vec::as_slice)),
        );
    }
    for (name, script) in replica_replays() {
        add(
            "paxos_replica",
            &name,
            join(script.iter().map(Vec::as_slice)),
        );
    }

    // Key-value client protocol: [which][body].
    add(
        "kv_messages",
        "put",
        with(
            0,
            body(&(
                7u64,
                KvRequest::Put {
                    client: 42,
                    seq: 3,
                    key: "key-00000001".into(),
                    value: vec![5; 100],
                },
            )),
        ),
    );
    add(
        "kv_messages",
        "get",
        with(1, body(&KvRequest::Get { key: "k".into() })),
    );
    add(
        "kv_messages",
        "written",
        with(2, body(&(7u64, KvResponse::Written(19)))),
    );
    add(
        "kv_messages",
        "status",
        with(
            2,
            body(&(
                8u64,
                KvResponse::Status {
                    id: 1,
                    is_leader: true,
                    leader: Some(1),
                    decided: 100,
                    applied: 99,
                    snapshot_slot: 50,
                },
            )),
        ),
    );

    // Key-value operator protocol: [which][body].
    for (i, request) in kv_admin_requests().iter().enumerate() {
        add(
            "kv_messages",
            &format!("admin-request-{i}"),
            with(3, body(request)),
        );
    }
    for (i, response) in kv_admin_responses().iter().enumerate() {
        add(
            "kv_messages",
            &format!("admin-response-{i}"),
            with(4, body(response)),
        );
    }

    // Torrent files.
    for (i, known) in resume_torrents().iter().enumerate() {
        add(
            "torrent_file",
            &format!("fixture-{i}"),
            known.torrent.encode(),
        );
    }
    add("torrent_file", "commented", commented_torrent().encode());

    // Write-ahead log: one record, a segment, a whole log; what the storage decodes.
    let records = tracker_records();
    let payloads: Vec<Vec<u8>> = records.iter().map(storage_bytes).collect();
    let mut two = Vec::new();
    paxos::fuzzing::encode_record(&mut two, 1, &payloads[0]);
    let second_at = two.len() as u16;
    paxos::fuzzing::encode_record(&mut two, 2, &payloads[1]);
    add("wal_record", "first", [vec![0, 0, 0], two.clone()].concat());
    add(
        "wal_record",
        "second",
        [vec![2, second_at as u8, (second_at >> 8) as u8], two].concat(),
    );
    let segment = real_segment(&payloads);
    add(
        "wal_segment",
        "last",
        [vec![0x01, 1, 0], segment.clone()].concat(),
    );
    add(
        "wal_segment",
        "not-last",
        [vec![0x00, 1, 0], segment.clone()].concat(),
    );
    let mut torn = segment.clone();
    torn.truncate(torn.len() - 3);
    add(
        "wal_segment",
        "torn-tail",
        [vec![0x01, 1, 0], torn].concat(),
    );
    add(
        "wal_open",
        "file-storage",
        log_dir_input(&file_storage_dir(&records)),
    );
    add(
        "wal_open",
        "many-segments",
        log_dir_input(&small_segments_dir()),
    );
    let state = durable_state(&records);
    let snapshot = rmp_serde::to_vec(&state).expect("encodes");
    let parts: Vec<&[u8]> = std::iter::once(&snapshot[..])
        .chain(payloads.iter().map(Vec::as_slice))
        .collect();
    add(
        "paxos_storage",
        "tracker",
        [vec![0, 1], join(parts)].concat(),
    );
    let kv_records: Vec<Vec<u8>> = kv_records().iter().map(storage_bytes).collect();
    add(
        "paxos_storage",
        "kv",
        [vec![1, 0], join(kv_records.iter().map(Vec::as_slice))].concat(),
    );

    // Snapshots.
    add("tracker_snapshot", "state", tracker_state().snapshot());
    add(
        "tracker_snapshot",
        "empty",
        TrackerState::new(StateConfig::default()).snapshot(),
    );
    add("kv_snapshot", "store", kv_store().snapshot());

    // Resume files (from the piece store's checkpoint) and status files.
    for (i, known) in resume_torrents().iter().enumerate() {
        let file = real_resume(i);
        let flags = (i as u8) << 1;
        add(
            "resume_file",
            &format!("torrent-{i}"),
            [vec![flags], file.clone()].concat(),
        );
        // The body alone, for the target to frame.
        let body = file[14..file.len() - 32].to_vec();
        add(
            "resume_file",
            &format!("body-{i}"),
            [vec![flags | 1], body].concat(),
        );
        let _ = known;
    }
    add("status_file", "two-torrents", real_status_file());

    // The web site's forms, search query strings and JSON bodies.
    let csrf = "3q2-7w_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    for (n, (which, text)) in [
        (0u8, format!("csrf={csrf}&name=alice&password=correct+horse+battery&confirm=correct+horse+battery")),
        (0, format!("csrf={csrf}&name=bob%2Ejones&password=p%C3%A4ssw%C3%B6rd%21")),
        (1, format!("csrf={csrf}&label=my+laptop")),
        (1, format!("csrf={csrf}&token_hash={}", "ab".repeat(32))),
        (2, format!("csrf={csrf}&name=bob&disabled=true")),
        (3, format!("csrf={csrf}")),
        (4, "q=ubuntu+iso&page=2&sort=size&order=asc".to_owned()),
        (4, "q=%E2%9C%93+album&sort=peers".to_owned()),
        (4, "page=1&order=desc".to_owned()),
        (5, r#"{"label": "build server"}"#.to_owned()),
        (5, r#"{"label": "caf\u00e9 \ud83d\ude00"}"#.to_owned()),
    ]
    .into_iter()
    .enumerate()
    {
        add("web_forms", &format!("{which}-{n}"), with(which, text.into_bytes()));
    }

    // Uploads to the web site: [flags][choice][body].
    for (name, input) in web_uploads() {
        add("web_upload", name, input);
    }

    for (target, run) in TARGETS {
        let dir = seeds_dir(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the seed directory");
        let list = seeds.get(target).map(Vec::as_slice).unwrap_or_default();
        assert!(!list.is_empty(), "no seeds for {target}");
        for (name, bytes) in list {
            assert!(
                bytes.len() <= 8192,
                "seed {target}/{name} is {} bytes",
                bytes.len()
            );
            run(bytes);
            std::fs::write(dir.join(name), bytes).expect("write a seed");
        }
        println!("{target}: {} seeds", list.len());
    }
}

/// `which` and then `bytes`.
fn with(which: u8, bytes: Vec<u8>) -> Vec<u8> {
    [vec![which], bytes].concat()
}

/// `value` as one frame, as every sender writes it.
fn frame<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    encode_frame(value, DEFAULT_MAX_FRAME).expect("a seed encodes")
}

/// The body of `value`'s frame.
fn body<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    frame(value)[4..].to_vec()
}

/// A record as the file storage writes it into the log.
fn storage_bytes<C: Serialize, O: Serialize>(record: &Record<C, O>) -> Vec<u8> {
    rmp_serde::to_vec(record).expect("a record encodes")
}

fn fp(n: u8) -> Fingerprint {
    Fingerprint::from_bytes(*blake3::hash(&[n]).as_bytes())
}

fn info_hash(i: usize) -> InfoHash {
    resume_torrents()[i].torrent.info_hash()
}

fn bits(len: u32, ones: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(len);
    for &i in ones {
        b.set(i);
    }
    b
}

fn hello() -> Control {
    Control::Hello {
        info_hash: info_hash(0),
        bitfield: bits(3, &[0, 2]),
    }
}

fn piece_request() -> PieceRequest {
    PieceRequest {
        info_hash: info_hash(1),
        piece: 3,
        holds: 2,
    }
}

fn write_id(seq: u64) -> WriteId {
    WriteId {
        client: 0x5eed,
        seq,
    }
}

fn tracker_requests() -> Vec<Request> {
    vec![
        Request::Publish {
            id: write_id(1),
            token: "bob-token-0123456789abcdef0123456789abcdef".into(),
            torrent: resume_torrents()[0].torrent.encode(),
        },
        Request::GetTorrent {
            info_hash: info_hash(0),
        },
        Request::Search {
            words: "album flac".into(),
            page: 1,
            order: SearchOrder {
                by: SortKey::Seeders,
                descending: true,
            },
        },
        Request::Join {
            id: write_id(2),
            info_hash: info_hash(1),
            addr: "[2001:db8::1]:7000".into(),
            have: bits(4, &[1]),
            want: 5,
        },
        Request::Have {
            id: write_id(3),
            info_hash: info_hash(1),
            pieces: vec![0, 3],
        },
        Request::Heartbeat {
            id: write_id(4),
            info_hash: Some(info_hash(1)),
        },
        Request::MorePeers {
            info_hash: info_hash(1),
            exclude: vec![fp(1), fp(2)],
            want: 10,
        },
        Request::PeersWithPiece {
            info_hash: info_hash(1),
            piece: 2,
            want: 3,
        },
        Request::Status,
    ]
}

fn peer_info(n: u8) -> PeerInfo {
    PeerInfo {
        fingerprint: fp(n),
        addr: format!("203.0.113.{n}:7000").parse().expect("an address"),
        pieces: u32::from(n),
    }
}

fn tracker_responses() -> Vec<Response> {
    vec![
        Response::Published(info_hash(0)),
        Response::Joined {
            neighbours: vec![peer_info(1), peer_info(2)],
            ttl_ms: 30_000,
        },
        Response::Search(SearchPage {
            total: 1,
            hits: vec![TorrentSummary {
                info_hash: info_hash(1),
                name: "album".into(),
                size: 50_000,
                piece_count: 4,
                seeders: 1,
                leechers: 2,
                completed: 3,
                added_ms: 1_700_000_000_000,
                uploader: "bob".into(),
            }],
        }),
        Response::Status(NodeStatus {
            id: 2,
            is_leader: false,
            leader: Some(1),
            decided: 500,
            applied: 499,
        }),
        Response::Error(ApiError::BadPieces("piece 9 of 4".into())),
        Response::Unavailable("no leader".into()),
    ]
}

fn admin_requests() -> Vec<AdminRequest> {
    vec![
        AdminRequest::AddUser {
            id: write_id(9),
            name: "carol".into(),
            password: "a long enough password".into(),
            admin: false,
        },
        AdminRequest::SwarmMembers {
            info_hash: info_hash(1),
            after: Some(fp(3)),
            limit: 100,
        },
        AdminRequest::ChangeMembership {
            change: MemberChange::AddLearner {
                id: 4,
                address: "node4@10.0.0.4:7000/10.0.0.4:7001".into(),
            },
        },
        AdminRequest::TransferLeader { to: Some(2) },
    ]
}

fn admin_responses() -> Vec<AdminResponse> {
    vec![
        AdminResponse::Users(vec![UserInfo {
            name: "alice".into(),
            admin: true,
            disabled: false,
        }]),
        AdminResponse::Members(MembersPage {
            total: 1,
            members: vec![SwarmMember {
                fingerprint: fp(5),
                addr: "192.0.2.5:7000".parse().expect("an address"),
                have: bits(4, &[0, 1, 2, 3]),
            }],
        }),
        AdminResponse::Cluster(ClusterStatus {
            id: 1,
            leader: Some(1),
            decided: 77,
            voters: vec![1, 2, 3],
            learners: vec![4],
            retired: vec![],
            addresses: vec![(4, "node4@10.0.0.4:7000/10.0.0.4:7001".into())],
            progress: vec![(2, 70), (3, 77)],
        }),
    ]
}

fn join_command(n: u8) -> TrackerCommand {
    TrackerCommand::Join {
        info_hash: info_hash(1),
        fingerprint: fp(n),
        addr: format!("198.51.100.{n}:7000").parse().expect("an address"),
        have: bits(4, &[u32::from(n) % 4]),
        want: 5,
        now_ms: 1_700_000_000_000,
    }
}

fn tracker_value(slot: u64) -> Vec<Entry<TrackerCommand>> {
    vec![
        Entry::Command(Command {
            client: 11,
            seq: slot,
            op: join_command(slot as u8),
        }),
        Entry::Read {
            origin: 2,
            client: 12,
            id: slot,
        },
    ]
}

fn membership() -> Membership {
    Membership {
        voters: BTreeSet::from([1, 2, 3]),
        learners: BTreeSet::from([4]),
        retired: BTreeSet::new(),
        addresses: BTreeMap::from([(4, "node4@10.0.0.4:7000".to_owned())]),
    }
}

fn tracker_messages() -> Vec<TrackerMessage> {
    let ballot = Ballot::new(3, 1);
    vec![
        Message::PreVote { ballot },
        Message::Prepare {
            ballot,
            from: 5,
            handover: Some(Ballot::new(2, 2)),
        },
        Message::Promise {
            ballot,
            entries: vec![PromisedEntry {
                slot: 5,
                ballot: Ballot::new(2, 2),
                value: tracker_value(5),
                chosen: false,
            }],
            snapshot_slot: 4,
        },
        Message::Accept {
            ballot,
            slot: 6,
            value: vec![
                Entry::Command(Command {
                    client: 13,
                    seq: 1,
                    op: TrackerCommand::Heartbeat {
                        fingerprint: fp(1),
                        now_ms: 5,
                        info_hash: Some(info_hash(0)),
                    },
                }),
                Entry::Reconfigure {
                    origin: 1,
                    id: 2,
                    change: MembershipChange::AddLearner {
                        id: 5,
                        address: "node5@10.0.0.5:7000".into(),
                    },
                },
            ],
            commit: 5,
        },
        Message::HeartbeatAck {
            ballot,
            round: 9,
            decided: 5,
        },
        Message::CatchUp {
            entries: vec![(7, tracker_value(7))],
        },
        Message::Forward {
            entries: tracker_value(8),
        },
        Message::Removed,
    ]
}

fn install_snapshot() -> TrackerMessage {
    Message::InstallSnapshot {
        snapshot: Snapshot {
            slot: 40,
            state: tracker_state().snapshot(),
            sessions: vec![(
                11,
                Session {
                    seq: 3,
                    output: TrackerOutput::Done,
                    slot: 39,
                },
            )],
            membership: membership(),
        },
    }
}

fn kv_put(n: u64) -> KvCommand {
    KvCommand::Put {
        key: format!("key-{n:08}"),
        value: vec![n as u8; 20],
    }
}

fn kv_messages() -> Vec<KvMessage> {
    let ballot = Ballot::new(1, 2);
    vec![
        Message::Accept {
            ballot,
            slot: 1,
            value: vec![Entry::Command(Command {
                client: 1,
                seq: 1,
                op: kv_put(1),
            })],
            commit: 0,
        },
        Message::Heartbeat {
            ballot,
            round: 1,
            commit: 1,
        },
        Message::InstallSnapshot {
            snapshot: Snapshot {
                slot: 9,
                state: kv_store().snapshot(),
                sessions: vec![(
                    1,
                    Session {
                        seq: 1,
                        output: KvOutput::Written(1),
                        slot: 1,
                    },
                )],
                membership: membership(),
            },
        },
    ]
}

/// What `kv-admin` sends: each of its requests, as its commands make them.
fn kv_admin_requests() -> Vec<KvAdminRequest> {
    vec![
        KvAdminRequest::Cluster,
        KvAdminRequest::ChangeMembership(MembershipChange::AddLearner {
            id: 4,
            address: "node4@10.0.0.4:7000".into(),
        }),
        KvAdminRequest::ChangeMembership(MembershipChange::SetVoters {
            voters: BTreeSet::from([1, 2, 4]),
        }),
        KvAdminRequest::ChangeMembership(MembershipChange::RemoveLearner { id: 4 }),
        KvAdminRequest::TransferLeader(Some(2)),
        KvAdminRequest::TransferLeader(None),
    ]
}

/// What a node answers `kv-admin`.
fn kv_admin_responses() -> Vec<KvAdminResponse> {
    vec![
        KvAdminResponse::Cluster(ClusterView {
            id: 1,
            membership: membership(),
            leader: Some(1),
            decided: 1_000,
            progress: BTreeMap::from([(1, 1_000), (2, 998), (3, 1_000), (4, 12)]),
        }),
        KvAdminResponse::Done,
        KvAdminResponse::NotLeader(Some(3)),
        KvAdminResponse::Retry("another membership change is in progress".into()),
        KvAdminResponse::Refused("membership change refused: node 9 is not a member".into()),
    ]
}

/// Ticks of 10 ms for `ms` milliseconds.
fn ticks(ms: u16) -> Vec<Vec<u8>> {
    (0..ms / 10).map(|_| step::tick(10)).collect()
}

/// A leader elected (replica 1, whose timer runs out first), then puts through each
/// replica: more slots than a snapshot interval, so the replicas take snapshots.
fn elect_and_put() -> Vec<Vec<u8>> {
    let mut script = ticks(300);
    for n in 0..12u8 {
        let at = u64::from(n % 3) + 1;
        script.push(step::propose(at, n % 4 + 1, n / 4 + 1, n, &[n; 8]));
        script.push(step::tick(5));
    }
    script.push(step::read(2, 9, 1, 3));
    script.extend(ticks(50));
    script
}

/// Scripts of the replicas' own traffic: an election and puts; a replica cut off while
/// the others go on, which catches up from a snapshot when it is back; a restarted
/// leader; the voters changed and the leadership handed over.
fn replica_scripts() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut cut_off = ticks(300);
    cut_off.push(step::partition(&[3]));
    for n in 0..20u8 {
        cut_off.push(step::propose(1, 1, n + 1, n, b"while 3 is away"));
        cut_off.push(step::tick(5));
    }
    cut_off.push(step::partition(&[]));
    cut_off.extend(ticks(100));
    let mut restarted = elect_and_put();
    restarted.push(step::restart(1));
    restarted.extend(ticks(400));
    restarted.push(step::propose(2, 7, 1, 7, b"after the restart"));
    restarted.extend(ticks(50));
    let mut members = elect_and_put();
    members.push(step::set_voters(1, &[1, 2]));
    members.extend(ticks(100));
    members.push(step::transfer(1, 2));
    members.extend(ticks(300));
    vec![
        ("elect-and-put", elect_and_put()),
        ("cut-off-and-back", cut_off),
        ("restart-leader", restarted),
        ("change-voters", members),
    ]
}

/// A script, and a message its replicas sent: from, to, what.
type Replay = (Vec<Vec<u8>>, u64, u64, KvMessage);

/// For each kind of message the replicas sent while running [`replica_scripts`], the
/// first one, replayed after the script that made it: to the replica it was not sent to,
/// as if from its sender; back to its sender, as if from its receiver; and to its
/// receiver, as if from a stranger.
fn replica_replays() -> Vec<(String, Vec<Vec<u8>>)> {
    let mut first: BTreeMap<String, Replay> = BTreeMap::new();
    for (_, script) in replica_scripts() {
        let mut cluster = Cluster::new().recording();
        for part in &script {
            cluster.step(part);
        }
        for (from, to, message) in cluster.sent() {
            let kind = format!("{message:?}");
            let kind = kind.split([' ', '{', '(']).next().unwrap_or_default();
            first
                .entry(kind.to_lowercase())
                .or_insert_with(|| (script.clone(), *from, *to, message.clone()));
        }
    }
    let mut replays = Vec::new();
    for (kind, (mut replay, from, to, message)) in first {
        let third = 6 - from - to;
        replay.push(step::deliver(
            third,
            from as u8,
            std::slice::from_ref(&message),
        ));
        replay.push(step::deliver(
            from,
            to as u8,
            std::slice::from_ref(&message),
        ));
        replay.push(step::deliver(to, 4, &[message]));
        replay.extend(ticks(50));
        replays.push((format!("replay-{kind}"), replay));
    }
    replays
}

/// Uploads as a browser sends them, and as the target builds them from fields: a
/// torrent of this cluster (new, then again), one of another cluster, a file that is no
/// torrent, no file, a wrong CSRF token, nobody signed in, a part's raw headers, a
/// declared length over the limit, no boundary, and a body in small chunks.
fn web_uploads() -> Vec<(&'static str, Vec<u8>)> {
    use upload_flags::*;
    let csrf = UploadSite::csrf_token();
    let ours = resume_torrents()[0].torrent.encode();
    let theirs = commented_torrent().encode();
    let browser = |boundary: usize, file: &[u8]| {
        form_body(
            UPLOAD_BOUNDARIES[boundary],
            &[
                Field::Text {
                    name: "csrf",
                    value: csrf.as_bytes(),
                },
                Field::File {
                    name: "torrent",
                    filename: "album.torrent",
                    content: file,
                },
            ],
        )
    };
    let fields = |parts: &[(u8, &[u8])]| {
        let parts: Vec<Vec<u8>> = parts
            .iter()
            .map(|(kind, bytes)| [&[*kind][..], bytes].concat())
            .collect();
        join(parts.iter().map(Vec::as_slice))
    };
    let upload = |flags: u8, choice: u8, body: Vec<u8>| [vec![flags, choice], body].concat();
    let raw_part = b"Content-Disposition: form-data; name=\"torrent\"\r\n\r\nd1:ae";
    vec![
        ("browser", upload(SIGNED_IN | LENGTH, 1, browser(1, &ours))),
        (
            "browser-chunked",
            upload(
                SIGNED_IN | CHUNKS,
                1,
                browser(1, &resume_torrents()[1].torrent.encode()),
            ),
        ),
        (
            "fields",
            upload(SIGNED_IN | FIELDS, 0, fields(&[(0, b""), (2, &ours)])),
        ),
        (
            "other-cluster",
            upload(SIGNED_IN | FIELDS, 2, fields(&[(0, b""), (2, &theirs)])),
        ),
        (
            "not-a-torrent",
            upload(SIGNED_IN | FIELDS, 0, fields(&[(0, b""), (2, b"d4:infoe")])),
        ),
        (
            "no-file",
            upload(
                SIGNED_IN | FIELDS,
                0,
                fields(&[(0, b""), (3, b"\x02a comment")]),
            ),
        ),
        (
            "wrong-csrf",
            upload(SIGNED_IN | FIELDS, 3, fields(&[(1, b"00ff"), (2, &ours)])),
        ),
        (
            "signed-out",
            upload(FIELDS | LENGTH, 0, fields(&[(0, b""), (2, &ours)])),
        ),
        (
            "raw-part",
            upload(SIGNED_IN | FIELDS, 0, fields(&[(0, b""), (4, raw_part)])),
        ),
        ("too-large", upload(SIGNED_IN | HUGE, 0, browser(0, &ours))),
        (
            "no-boundary",
            upload(SIGNED_IN | OTHER_TYPE, 0, browser(0, &ours)),
        ),
    ]
}

fn commented_torrent() -> Torrent {
    let content = vec![3u8; 20_000];
    let info = Info {
        name: "notes".into(),
        piece_length: MIN_PIECE_LENGTH,
        files: vec![
            FileEntry {
                path: vec!["a.txt".into()],
                length: 15_000,
            },
            FileEntry {
                path: vec!["b".into(), "c.txt".into()],
                length: 5_000,
            },
        ],
        pieces: content
            .chunks(MIN_PIECE_LENGTH as usize)
            .flat_map(|p| *blake3::hash(p).as_bytes())
            .collect(),
    };
    Torrent::new(
        info,
        vec![
            "192.0.2.1:7000".parse().expect("an address"),
            "[2001:db8::2]:7000".parse().expect("an address"),
        ],
        Fingerprint::from_bytes([2; 32]),
        1_700_000_000,
        Some("made for the fuzz seeds".into()),
    )
    .expect("a valid torrent")
}

fn tracker_records() -> Vec<TrackerRecord> {
    let ballot = Ballot::new(2, 1);
    vec![
        Record::Promise(ballot),
        Record::Accept {
            slot: 1,
            ballot,
            value: tracker_value(1),
        },
        Record::Accept {
            slot: 2,
            ballot,
            value: vec![Entry::Command(Command {
                client: 14,
                seq: 1,
                op: TrackerCommand::Publish {
                    torrent: resume_torrents()[1].torrent.encode(),
                    by: Uploader::User("alice".into()),
                    now_ms: 1_700_000_000_000,
                },
            })],
        },
        Record::Accept {
            slot: 3,
            ballot: Ballot::new(3, 2),
            value: vec![],
        },
    ]
}

fn kv_records() -> Vec<Record<KvCommand, KvOutput>> {
    let ballot = Ballot::new(1, 1);
    (1..=3)
        .map(|slot| Record::Accept {
            slot,
            ballot,
            value: vec![Entry::Command(Command {
                client: 1,
                seq: slot,
                op: kv_put(slot),
            })],
        })
        .chain([Record::Snapshot(Snapshot {
            slot: 2,
            state: kv_store().snapshot(),
            sessions: vec![],
            membership: Membership::default(),
        })])
        .collect()
}

fn durable_state(records: &[TrackerRecord]) -> DurableState<TrackerCommand, TrackerOutput> {
    let mut state = DurableState::default();
    state.apply(Record::Snapshot(Snapshot {
        slot: 0,
        state: tracker_state().snapshot(),
        sessions: vec![],
        membership: membership(),
    }));
    for record in records {
        state.apply(record.clone());
    }
    state
}

/// A segment as the log writes it, holding `payloads` from index 1.
fn real_segment(payloads: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = WalOptions {
        preallocate_bytes: 0,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(dir.path(), options).expect("a new log");
    for payload in payloads {
        wal.append(payload).expect("append");
    }
    wal.sync().expect("sync");
    drop(wal);
    std::fs::read(dir.path().join(format!("{:020}.wal", 1))).expect("the first segment")
}

/// A log directory as the tracker's file storage leaves it: records, then a snapshot that
/// compacts them, then more records.
fn file_storage_dir(records: &[TrackerRecord]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut storage =
        FileStorage::<TrackerCommand, TrackerOutput>::open(dir.path()).expect("a new storage");
    storage.append(&records[..2]).expect("append");
    storage
        .append(&[Record::Snapshot(Snapshot {
            slot: 1,
            state: tracker_state().snapshot(),
            sessions: vec![],
            membership: membership(),
        })])
        .expect("snapshot");
    storage.append(&records[2..]).expect("append");
    dir
}

/// A log of small segments, some of them behind its snapshot.
fn small_segments_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = WalOptions {
        preallocate_bytes: 0,
        segment_bytes: 200,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(dir.path(), options).expect("a new log");
    for i in 0..12u8 {
        wal.append(&[i; 40]).expect("append");
        if i == 6 {
            wal.save_snapshot(5, b"state after five records")
                .expect("snapshot");
        }
    }
    wal.sync().expect("sync");
    dir
}

/// A log directory as a `wal_open` input: every file, segments' trailing zeros (free
/// space) cut.
fn log_dir_input(dir: &tempfile::TempDir) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| {
            let path = e.expect("an entry").path();
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    let mut parts = Vec::new();
    for (name, mut bytes) in files {
        if name == "snapshot" {
            parts.push([vec![0], bytes].concat());
        } else if let Some(stem) = name.strip_suffix(".wal") {
            let first: u64 = stem.parse().expect("a segment name");
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            bytes.truncate(used.max(24));
            parts.push([vec![1], first.to_le_bytes().to_vec(), bytes].concat());
        }
    }
    join(parts.iter().map(Vec::as_slice))
}

fn tracker_state() -> TrackerState {
    let mut state = TrackerState::new(StateConfig::default());
    let now = 1_700_000_000_000;
    let mut slot = 0;
    let mut apply = |command: TrackerCommand| {
        slot += 1;
        let output = state.apply(slot, &command);
        assert!(!matches!(output, TrackerOutput::Error(_)), "{output:?}");
    };
    for (name, role) in [("alice", Role::Admin), ("bob", Role::User)] {
        apply(TrackerCommand::AddUser {
            name: name.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            role,
            now_ms: now,
        });
    }
    let token = TokenHash::of("bob-token-0123456789abcdef0123456789abcdef");
    apply(TrackerCommand::CreateToken {
        user: "bob".into(),
        token_hash: token,
        label: "laptop".into(),
        now_ms: now,
    });
    for (i, known) in resume_torrents().iter().enumerate() {
        apply(TrackerCommand::Publish {
            torrent: known.torrent.encode(),
            by: if i == 0 {
                Uploader::Token(token)
            } else {
                Uploader::User("alice".into())
            },
            now_ms: now + i as u64,
        });
    }
    for n in 1..=3u8 {
        apply(join_command(n));
    }
    apply(TrackerCommand::Have {
        info_hash: info_hash(1),
        fingerprint: fp(1),
        pieces: vec![0, 2, 3],
        now_ms: now + 10,
    });
    apply(TrackerCommand::CreateSession {
        session_hash: TokenHash::of("a session id"),
        user: "alice".into(),
        expires_ms: now + 7 * 24 * 3600 * 1000,
        now_ms: now,
    });
    state
}

fn kv_store() -> Kv {
    let mut kv = Kv::default();
    for n in 1..=5 {
        kv.apply(n, &kv_put(n));
    }
    kv.apply(
        6,
        &KvCommand::Put {
            key: "a long key that does not fit inline in the table".into(),
            value: vec![9; 300],
        },
    );
    kv
}

/// The resume file the piece store writes for torrent `i` of the fixtures, holding every
/// other piece.
fn real_resume(i: usize) -> Vec<u8> {
    let known = &resume_torrents()[i];
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (downloads, state) = (dir.path().join("downloads"), dir.path().join("state"));
    let (store, _) = PieceStore::open(Arc::new(known.torrent.clone()), &downloads, &state)
        .expect("open a piece store");
    for piece in (0..known.torrent.piece_count()).step_by(2) {
        let range = known.torrent.piece_range(piece).expect("a piece");
        let data = &known.content[range.start as usize..range.end as usize];
        store.write_piece(piece, data).expect("write a piece");
    }
    store.checkpoint().expect("checkpoint");
    std::fs::read(store.resume_path()).expect("the resume file")
}

/// A status file as a running `bt` writes it.
fn real_status_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let torrent = |name: &str, phase: Phase, neighbours| TorrentStatus {
        info_hash: info_hash(0).to_string(),
        name: name.into(),
        path: format!("/srv/downloads/{name}"),
        phase,
        pieces_have: 2,
        pieces_total: 3,
        bytes_have: 32_768,
        bytes_total: 40_000,
        download_rate: 1_234_567.891,
        upload_rate: 0.1,
        downloaded: 32_768,
        uploaded: 16_384,
        piece_map: "#.#".into(),
        neighbours,
        tracker: Some("192.0.2.1:7000".parse().expect("an address")),
        tracker_failovers: 1,
        banned: 0,
    };
    let status = ProcessStatus {
        pid: 4242,
        addr: "192.0.2.9:7000".into(),
        fingerprint: fp(9).to_string(),
        torrents: vec![
            torrent(
                "single.bin",
                Phase::Downloading,
                vec![NeighbourStatus {
                    fingerprint: fp(1).to_string(),
                    addr: "198.51.100.1:7000".parse().expect("an address"),
                    state: "connected".into(),
                    rate: 98_765.25,
                    in_flight: 2,
                    pieces: 3,
                }],
            ),
            torrent("album", Phase::Failed("disk full".into()), vec![]),
        ],
    };
    peer::status_file::write(dir.path(), &status).expect("write the status file");
    std::fs::read(dir.path().join("status").join("4242.json")).expect("the status file")
}
