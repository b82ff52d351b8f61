//! One function per fuzz target. Each reads its input as its documentation says (a
//! leading byte often picks one of several decoders), and asserts what the decoder
//! promises: no panic whatever the bytes, an error (not a panic) for what it refuses, and
//! where the format allows, a round trip: decode, encode, decode again gives the same
//! value (compared through its encoding where the type has no equality).

use std::any::type_name;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use paxos::fuzzing::{
    DecodedRecord, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentOutcome, decode_record,
    encode_record, find_valid_record_after, scan_segment, segment_header,
};
use paxos::wal::{Wal, WalError, WalOptions};
use paxos::{MessageOf, StateMachine, StorageError};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tracker::fuzzing::UploadSite;
use tracker::state::{
    Command as TrackerCommand, Output as TrackerOutput, Query as TrackerQuery, StateConfig,
    TrackerState,
};
use tracker::torrent::Torrent;
use transport::fuzzing::{ChannelFrames, check_kind, encode_frame, read_frame};
use transport::paxos_network::PAXOS_MAX_FRAME;
use transport::{DEFAULT_MAX_FRAME, StreamErrorCode, StreamKind, TransportError};

use crate::cluster::Cluster;
use crate::fixtures::resume_torrents;
use crate::input::{split, take_u64};
use crate::kv::{Kv, KvAdminRequest, KvAdminResponse, KvCommand, KvOutput, KvRequest, KvResponse};
use crate::web::{Answer, Field, error_notice, form_body, post_upload};

// ---------------------------------------------------------------------------------------
// Frames and the messages they carry.
// ---------------------------------------------------------------------------------------

/// A stream as QUIC delivers it: `[max][reads][kind byte][frames...]`.
///
/// `max` picks the maximum frame size (16 B to the 1 MiB default) and, with it, the stream
/// kinds the protocol allows (all, requests only, the peer's or the Paxos set); `reads`
/// seeds the sizes of the reads the bytes arrive in. The kind byte is checked as
/// `IncomingStream::read_kinds` does. A channel's bytes are taken apart by the channel's
/// frame buffer twice, in one read and in reads of the seeded sizes: the frames and the
/// error (if any) must be the same. Any other stream's one frame is read as its reader
/// does. Every refusal must be a `BadFrame` with the code PROTOCOL.md gives.
pub fn transport_frames(data: &[u8]) {
    let [max, reads, stream @ ..] = data else {
        return;
    };
    let limits = [16, 64, 1024, 65_536, DEFAULT_MAX_FRAME];
    let max_frame = limits[usize::from(*max) % limits.len()];
    let kind_sets: [&[StreamKind]; 4] = [
        &StreamKind::ALL,
        &[StreamKind::Request],
        &[StreamKind::Chunk, StreamKind::Channel],
        &[StreamKind::Channel, StreamKind::Message],
    ];
    let allowed = kind_sets[usize::from(*max) / limits.len() % kind_sets.len()];
    let Some((&kind, rest)) = stream.split_first() else {
        return;
    };
    match check_kind(kind, allowed) {
        Err(e) => assert_eq!(bad_frame_code(&e), StreamErrorCode::UnknownStreamKind),
        Ok(kind) => {
            assert!(allowed.contains(&kind), "{kind:?} is not allowed");
            if kind == StreamKind::Channel {
                let whole = drain_channel(rest, max_frame, std::iter::once(rest.len()));
                let cut = drain_channel(rest, max_frame, read_sizes(*reads));
                assert_eq!(whole, cut, "the frames depend on how the bytes were cut");
            } else {
                match read_frame::<IgnoredAny>(rest, max_frame) {
                    Ok((_, used)) => assert!((4..=rest.len()).contains(&used)),
                    Err(e) => assert!(matches!(
                        bad_frame_code(&e),
                        StreamErrorCode::FrameTooLarge | StreamErrorCode::MalformedFrame
                    )),
                }
            }
        }
    }
}

/// What a channel's receiver made of `bytes` arriving in reads of `sizes` (the last read
/// takes whatever is left): the frames decoded, then what ended it.
fn drain_channel(
    bytes: &[u8],
    max: usize,
    sizes: impl Iterator<Item = usize>,
) -> (usize, Result<usize, StreamErrorCode>) {
    let mut channel = ChannelFrames::new(max);
    let mut frames = 0;
    let mut rest = bytes;
    let mut sizes = sizes.peekable();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (read, after) = rest.split_at(size);
        rest = after;
        channel.push(read);
        loop {
            match channel.next_frame::<IgnoredAny>() {
                Ok(Some(_)) => frames += 1,
                Ok(None) => break,
                Err(e) => {
                    let code = bad_frame_code(&e);
                    assert!(matches!(
                        code,
                        StreamErrorCode::FrameTooLarge | StreamErrorCode::MalformedFrame
                    ));
                    assert_eq!(channel.pending(), 0, "a refused channel keeps bytes");
                    return (frames, Err(code));
                }
            }
        }
    }
    (frames, Ok(channel.pending()))
}

/// Read sizes from a seed: 1 to 16 bytes, and now and then a large one.
fn read_sizes(seed: u8) -> impl Iterator<Item = usize> {
    let mut state = u32::from(seed) | 0x100;
    std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Some(if state % 8 == 0 {
            4096
        } else {
            (state % 16 + 1) as usize
        })
    })
}

fn bad_frame_code(e: &TransportError) -> StreamErrorCode {
    match e {
        TransportError::BadFrame { code, .. } => *code,
        other => panic!("a frame decoder failed with {other}, not a BadFrame"),
    }
}

/// Decodes `body` as the body of one frame of at most `max` bytes, as every reader of a
/// stream or channel does. A refusal must be `MALFORMED_FRAME` (or `FRAME_TOO_LARGE`). A
/// value that decodes must encode (as every sender encodes) into a frame that decodes
/// to a value with the same encoding.
fn frame_round_trip<T: Serialize + DeserializeOwned>(body: &[u8], max: usize) -> Option<T> {
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    let value = match read_frame::<T>(&frame, max) {
        Ok((value, used)) => {
            assert_eq!(used, frame.len());
            value
        }
        Err(e) => {
            let code = bad_frame_code(&e);
            assert!(
                matches!(
                    code,
                    StreamErrorCode::MalformedFrame | StreamErrorCode::FrameTooLarge
                ),
                "{e}"
            );
            return None;
        }
    };
    let first = match encode_frame(&value, max) {
        Ok(first) => first,
        // Field names can make the encoding larger than a compact input.
        Err(TransportError::FrameTooLarge { .. }) => return Some(value),
        Err(e) => panic!("a decoded {} does not encode: {e}", type_name::<T>()),
    };
    let again: T = match read_frame(&first, max) {
        Ok((again, _)) => again,
        Err(e) => panic!(
            "the encoding of a decoded {} does not decode: {e}",
            type_name::<T>()
        ),
    };
    let second = encode_frame(&again, max).expect("it encoded once");
    assert!(
        first == second,
        "decode, encode, decode changed a {}",
        type_name::<T>()
    );
    Some(value)
}

/// The peer-to-peer protocol: `[which][frame body]`, the body decoded as a control
/// channel message (`Control`), a piece request, or a piece answer's header (the chunk
/// header), `which % 3`. Round trip, and equality of the decoded values.
pub fn peer_messages(data: &[u8]) {
    use peer::wire::{Control, MAX_FRAME_LEN, PieceHeader, PieceRequest};
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Some(Control::Hello { bitfield, .. }) =
                peer_round_trip::<Control>(body, MAX_FRAME_LEN)
            {
                // Decoding checked the length and the spare bits.
                assert_eq!(
                    bitfield.as_bytes().len(),
                    bitfield.len().div_ceil(8) as usize
                );
                assert!(bitfield.count() <= bitfield.len());
            }
        }
        1 => {
            peer_round_trip::<PieceRequest>(body, MAX_FRAME_LEN);
        }
        _ => {
            peer_round_trip::<PieceHeader>(body, MAX_FRAME_LEN);
        }
    }
}

fn peer_round_trip<T>(body: &[u8], max: usize) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let value = frame_round_trip::<T>(body, max)?;
    let frame = encode_frame(&value, max).ok()?;
    let (again, _) = read_frame::<T>(&frame, max).expect("checked above");
    assert_eq!(again, value);
    Some(value)
}

/// The tracker's protocols: `[which][frame body]`, the body decoded as what a tracker node
/// reads (a peer's `Request`, an operator's `AdminRequest`) or what a peer or operator
/// reads (`Response`, `AdminResponse`), `which % 4`. Round trip.
pub fn tracker_messages(data: &[u8]) {
    use tracker::api::{AdminRequest, AdminResponse, MAX_FRAME_LEN, Request, Response};
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => drop(frame_round_trip::<Request>(body, MAX_FRAME_LEN)),
        1 => drop(frame_round_trip::<Response>(body, MAX_FRAME_LEN)),
        2 => drop(frame_round_trip::<AdminRequest>(body, MAX_FRAME_LEN)),
        _ => drop(frame_round_trip::<AdminResponse>(body, MAX_FRAME_LEN)),
    }
}

/// Paxos messages between replicas, as `transport::paxos_network` receives them: a frame
/// body holding a batch, `Vec<MessageOf<S>>`. `[which][frame body]`: `which % 2` picks the
/// state machine, the tracker's or the key-value example's. Round trip; every message
/// decoded is asked whether it is well formed (the replica's first check).
pub fn paxos_messages(data: &[u8]) {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 2 {
        0 => paxos_batch::<TrackerState>(body),
        _ => paxos_batch::<Kv>(body),
    }
}

fn paxos_batch<S>(body: &[u8])
where
    S: StateMachine,
    S::Command: Serialize + DeserializeOwned,
    S::Output: Serialize + DeserializeOwned,
{
    if let Some(batch) = frame_round_trip::<Vec<MessageOf<S>>>(body, PAXOS_MAX_FRAME) {
        for message in &batch {
            let _ = message.is_well_formed();
        }
    }
}

/// Most steps of a `paxos_replica` input that are run: enough for elections, batches,
/// snapshots and catch-up, few enough that an input runs in milliseconds.
const MAX_REPLICA_STEPS: usize = 256;

/// Messages into real replicas: the input is a script of steps (see [`crate::input`]
/// for the framing, [`crate::cluster::Step`] for each step) run on a cluster of three
/// replicas of the key-value example (ticks, proposals, reads, partitions, restarts,
/// membership changes, leadership transfers), where a step may deliver a frame body,
/// decoded as the Paxos network decodes a batch, to any replica as if from any sender.
///
/// Which messages must a replica refuse? A peer is a cluster member authenticated by
/// mutual TLS, and Paxos does not survive a lying member: a well-formed message can make
/// the replicas disagree, or keep them busy for good (an accept for a slot far ahead, and
/// the next leader fills every slot up to it with no-ops, a pipeline at a time). No
/// correct member sends those, so the replicas need not refuse them. But no message may
/// panic or hang a replica (its work follows what it holds, not the numbers a message
/// names), or make it send a malformed message. So after every step: what each replica
/// sends is well formed and encodes, its decided and applied slots never go back, a value
/// it reported chosen stays the one it reports, a restart from what it persisted
/// succeeds, and while no step delivered a message of the input's own, the replicas agree
/// on every slot and the cluster becomes quiet.
pub fn paxos_replica(data: &[u8]) {
    let mut cluster = Cluster::new();
    for step in split(data).into_iter().take(MAX_REPLICA_STEPS) {
        cluster.step(step);
    }
}

/// The key-value example's protocols: `[which][frame body]`, `which % 5`. The client
/// protocol: a channel request `(id, KvRequest)` or a bare `KvRequest` (what `kv-server`
/// reads), or a channel answer `(id, KvResponse)` (what the client reads). The operator
/// protocol: a `KvAdminRequest` (what a node reads on its paxos endpoint, whose frames may
/// be as large as Paxos's) or a `KvAdminResponse` (what `kv-admin` reads, in frames of at
/// most 1 MiB). Round trip.
pub fn kv_messages(data: &[u8]) {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    let max = PAXOS_MAX_FRAME;
    match which % 5 {
        0 => drop(frame_round_trip::<(u64, KvRequest)>(body, max)),
        1 => drop(frame_round_trip::<KvRequest>(body, max)),
        2 => drop(frame_round_trip::<(u64, KvResponse)>(body, max)),
        3 => drop(frame_round_trip::<KvAdminRequest>(body, max)),
        _ => drop(frame_round_trip::<KvAdminResponse>(body, DEFAULT_MAX_FRAME)),
    }
}

// ---------------------------------------------------------------------------------------
// Torrent files.
// ---------------------------------------------------------------------------------------

/// A torrent file, the whole input: `Torrent::parse` promises never to panic. A torrent
/// it accepts encodes to a file that parses to an equal torrent and encodes the same;
/// what a peer then asks of it (piece lengths and where each piece's bytes are, where
/// each file goes on disk) is answered without a panic.
pub fn torrent_file(data: &[u8]) {
    let torrent = match Torrent::parse(data) {
        Ok(torrent) => torrent,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let bytes = torrent.encode();
    let again = Torrent::parse(&bytes).expect("the encoding of a parsed torrent parses");
    assert_eq!(again, torrent);
    assert_eq!(again.encode(), bytes);
    assert_eq!(
        torrent.info_hash().as_bytes(),
        blake3::hash(torrent.info_bytes()).as_bytes()
    );

    let pieces = torrent.piece_count();
    let mut total = 0u64;
    let ends = if pieces <= 128 {
        (0..pieces).chain(0..0)
    } else {
        (0..64).chain(pieces - 64..pieces)
    };
    for piece in ends {
        let len = torrent.piece_len(piece).expect("a piece before the count");
        assert!(len > 0 && len <= u64::from(torrent.piece_length()));
        let spans = torrent
            .piece_spans(piece)
            .expect("a piece before the count");
        assert_eq!(spans.iter().map(|s| s.len).sum::<u64>(), len);
        total += len;
    }
    if pieces <= 128 {
        assert_eq!(total, torrent.total_length());
    }
    assert_eq!(torrent.piece_len(pieces), None);
    let root = Path::new("/downloads");
    for file in 0..torrent.files().len().min(64) {
        let path = torrent
            .output_path(root, file)
            .expect("a file of the torrent");
        assert!(path.starts_with(root.join(torrent.name())));
        assert!(torrent.display_path(file).is_some());
    }
}

// ---------------------------------------------------------------------------------------
// The write-ahead log and the file storage.
// ---------------------------------------------------------------------------------------

/// One record in a buffer: `[flags][pos: u16 LE][buffer...]`. With flag `0x01` the
/// record at `pos` gets a correct checksum (its length clamped to the buffer) before it is
/// read, so the fuzzer reaches past the checksum. A record that decodes lies inside the
/// buffer and re-encodes to exactly its bytes. The search recovery makes for a valid
/// record after a defect (from `pos`, index at least `flags >> 1`) finds one that decodes.
pub fn wal_record(data: &[u8]) {
    let [flags, p0, p1, buf @ ..] = data else {
        return;
    };
    let mut buf = buf.to_vec();
    let pos = usize::from(u16::from_le_bytes([*p0, *p1])) % (buf.len() + 1);
    if flags & 1 != 0 {
        fix_record(&mut buf, pos);
    }
    if let Ok(record) = decode_record(&buf, pos) {
        check_record(&buf, pos, &record);
    }
    let min_index = u64::from(flags >> 1);
    if let Some((at, index)) = find_valid_record_after(&buf, pos, min_index) {
        assert!(at >= pos && index >= min_index);
        let record = decode_record(&buf, at).expect("the search found a valid record");
        assert_eq!(record.index, index);
        check_record(&buf, at, &record);
    }
}

fn check_record(buf: &[u8], pos: usize, record: &DecodedRecord) {
    assert!(record.end <= buf.len());
    assert_eq!(record.payload.start, pos + RECORD_HEADER_LEN);
    assert_eq!(record.payload.end, record.end);
    let mut again = Vec::new();
    encode_record(&mut again, record.index, &buf[record.payload.clone()]);
    assert_eq!(again, buf[pos..record.end]);
}

/// Rewrites the record header at `pos` with a length that fits and the checksum of what
/// follows; nothing if fewer than a header's bytes remain.
fn fix_record(buf: &mut [u8], pos: usize) -> Option<usize> {
    let header = buf.get(pos..pos + RECORD_HEADER_LEN)?;
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let index = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let body = pos + RECORD_HEADER_LEN;
    let len = len.min(buf.len() - body);
    let mut framed = Vec::with_capacity(RECORD_HEADER_LEN + len);
    encode_record(&mut framed, index, &buf[body..body + len]);
    buf[pos..body + len].copy_from_slice(&framed);
    Some(body + len)
}

/// Rewrites every record header from `pos` on as [`fix_record`] does, until only zeros
/// (preallocated space) remain.
fn fix_records(buf: &mut [u8], mut pos: usize) {
    while pos < buf.len() && buf[pos..].iter().any(|&b| b != 0) {
        match fix_record(buf, pos) {
            Some(end) => pos = end,
            None => break,
        }
    }
}

/// One segment file as recovery reads it: `[flags][first][skip][file...]`.
///
/// The file's name promises first index `first` (`u64::MAX - first` with flag `0x08`);
/// records up to `first + skip - 128` are covered by a snapshot; flag `0x01` makes it the
/// last segment (whose torn tail is cut rather than refused). Flag `0x02` writes a correct
/// header, `0x04` correct record checksums, before it is read. What recovery accepts must
/// hang together: consecutive indexes after the covered ones, a valid length within the
/// file, only zeros after it unless a torn tail of the last segment is reported there,
/// and records that re-encode to exactly the file's bytes.
pub fn wal_segment(data: &[u8]) {
    let [flags, first, skip, file @ ..] = data else {
        return;
    };
    let first_index = if flags & 0x08 != 0 {
        u64::MAX - u64::from(*first)
    } else {
        u64::from(*first)
    };
    let skip_through = first_index
        .saturating_add(u64::from(*skip))
        .saturating_sub(128);
    let is_last = flags & 0x01 != 0;
    let mut file = file.to_vec();
    if flags & 0x02 != 0 && file.len() >= SEGMENT_HEADER_LEN {
        file[..SEGMENT_HEADER_LEN].copy_from_slice(&segment_header(first_index));
    }
    if flags & 0x04 != 0 {
        fix_records(&mut file, SEGMENT_HEADER_LEN);
    }
    let outcome = match scan_segment(&file, first_index, is_last, skip_through) {
        Ok(outcome) => outcome,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let SegmentOutcome::Scanned {
        records,
        next_index,
        valid_len,
        torn,
    } = outcome
    else {
        assert!(is_last, "only the last segment's creation can be torn");
        return;
    };
    let valid_len = usize::try_from(valid_len).expect("a length in memory");
    assert!((SEGMENT_HEADER_LEN..=file.len()).contains(&valid_len));
    assert!(next_index >= first_index);
    let expected_first = first_index.max(skip_through.saturating_add(1));
    for (i, (index, _)) in records.iter().enumerate() {
        assert_eq!(*index, expected_first + i as u64);
    }
    if let Some((last, _)) = records.last() {
        assert_eq!(*last + 1, next_index);
    }
    match torn {
        Some((at, _)) => {
            assert!(is_last, "a torn tail in a segment that is not the last");
            assert_eq!(at, valid_len as u64);
        }
        None => assert!(file[valid_len..].iter().all(|&b| b == 0)),
    }
    if skip_through < first_index {
        let mut again = file[..SEGMENT_HEADER_LEN].to_vec();
        for (index, payload) in &records {
            encode_record(&mut again, *index, payload);
        }
        assert_eq!(again, file[..valid_len], "the records do not re-encode");
    }
}

/// A whole log directory, as a node opens it after a crash: the input is a list of files
/// (see [`crate::input`]), each `[tag][content...]`. `tag & 3` says which file: 0 the
/// snapshot, 1 a segment (its content starts with the first index its name promises,
/// 8 bytes LE), 2 a snapshot being written (`snapshot.tmp`), 3 some other file. Tag
/// `0x10` writes a correct header (segment or snapshot), `0x20` correct record
/// checksums, before the file is written.
///
/// Opening either fails with an error or recovers a snapshot and consecutive records
/// after it, which the file storage then decodes (as the tracker's records) without a
/// panic. A log that opened must take a new record (unless its snapshot is at the largest
/// index a log can have: then it says it is full), and open again as it was left: no
/// tail cut the second time, the same snapshot, the same records and the new one.
pub fn wal_open(data: &[u8]) {
    let dir = scratch_dir();
    let options = WalOptions {
        preallocate_bytes: 0,
        segment_bytes: 4096,
        ..WalOptions::default()
    };
    for part in split(data) {
        let Some((&tag, content)) = part.split_first() else {
            continue;
        };
        let (name, bytes) = match tag & 3 {
            0 => (
                "snapshot".to_owned(),
                snapshot_file(content, tag & 0x10 != 0),
            ),
            1 => {
                let (first_index, content) = take_u64(content);
                let mut bytes = content.to_vec();
                if tag & 0x10 != 0 && bytes.len() >= SEGMENT_HEADER_LEN {
                    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&segment_header(first_index));
                }
                if tag & 0x20 != 0 {
                    fix_records(&mut bytes, SEGMENT_HEADER_LEN);
                }
                (format!("{first_index:020}.wal"), bytes)
            }
            2 => ("snapshot.tmp".to_owned(), content.to_vec()),
            _ => ("notes.txt".to_owned(), content.to_vec()),
        };
        std::fs::write(dir.path().join(name), bytes).expect("write a scratch file");
    }

    let Ok((mut wal, recovered)) = Wal::open(dir.path(), options.clone()) else {
        return;
    };
    let snapshot_index = recovered.snapshot.as_ref().map_or(0, |(index, _)| *index);
    for (i, (index, _)) in recovered.records.iter().enumerate() {
        assert_eq!(*index, snapshot_index + 1 + i as u64);
    }
    assert_eq!(wal.snapshot_index(), snapshot_index);
    assert_eq!(
        wal.next_index(),
        snapshot_index + 1 + recovered.records.len() as u64
    );
    // What the tracker's file storage does with it next.
    let _ = paxos::fuzzing::durable_state::<TrackerCommand, TrackerOutput>(
        recovered.snapshot.clone(),
        recovered.records.clone(),
    );

    // A log at the largest index a log can have takes no record, and stays as it was.
    let appended = match wal.append(b"after recovery") {
        Ok(index) => Some(index),
        Err(WalError::LogFull { .. }) => None,
        Err(e) => panic!("append after recovery: {e}"),
    };
    wal.sync().expect("sync after recovery");
    drop(wal);
    let (_, reopened) = Wal::open(dir.path(), options).expect("reopen a recovered log");
    assert!(reopened.cut_tails.is_empty(), "{:?}", reopened.cut_tails);
    assert_eq!(reopened.snapshot, recovered.snapshot);
    let mut expected = recovered.records;
    expected.extend(appended.map(|index| (index, b"after recovery".to_vec())));
    assert_eq!(reopened.records, expected);
}

/// A snapshot file of the log: `content` itself, or with `fix` the file a writer makes of
/// `content` (8 bytes LE: the last included index; then the data).
fn snapshot_file(content: &[u8], fix: bool) -> Vec<u8> {
    if !fix {
        return content.to_vec();
    }
    let (index, data) = take_u64(content);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&index.to_le_bytes());
    crc.update(&(data.len() as u64).to_le_bytes());
    crc.update(data);
    let mut out = Vec::with_capacity(32 + data.len());
    out.extend_from_slice(b"BTWALSNP");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// A fresh directory for one input, in memory where the system has a RAM disk.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix("bytetorrent-fuzz-")
        .tempdir_in(base)
        .expect("a scratch directory")
}

/// What the file storage decodes from a recovered log: `[which][flags][parts...]`
/// (parts as in [`crate::input`]). With flag `0x01` the first part is the snapshot (the
/// whole durable state, MessagePack), the others are records (MessagePack `Record`s), in
/// log order. `which % 2` picks the commands and outputs: the tracker's or the key-value
/// example's. A state that decodes must survive being written as a snapshot and read
/// back.
pub fn paxos_storage(data: &[u8]) {
    let [which, flags, rest @ ..] = data else {
        return;
    };
    let mut parts = split(rest).into_iter();
    let snapshot = if flags & 1 != 0 {
        parts.next().map(|bytes| (1u64, bytes.to_vec()))
    } else {
        None
    };
    let records: Vec<(u64, Vec<u8>)> = parts
        .enumerate()
        .map(|(i, bytes)| (2 + i as u64, bytes.to_vec()))
        .collect();
    match which % 2 {
        0 => durable_round_trip::<TrackerCommand, TrackerOutput>(snapshot, records),
        _ => durable_round_trip::<KvCommand, KvOutput>(snapshot, records),
    }
}

fn durable_round_trip<C, O>(snapshot: Option<(u64, Vec<u8>)>, records: Vec<(u64, Vec<u8>)>)
where
    C: Serialize + DeserializeOwned,
    O: Serialize + DeserializeOwned,
{
    match paxos::fuzzing::durable_state::<C, O>(snapshot, records) {
        Ok(state) => {
            // As `FileStorage` writes the state as the log's snapshot.
            let bytes = rmp_serde::to_vec(&state).expect("a durable state encodes");
            let again = paxos::fuzzing::durable_state::<C, O>(Some((1, bytes.clone())), vec![])
                .expect("a written durable state reads back");
            assert!(rmp_serde::to_vec(&again).expect("encodes") == bytes);
        }
        Err(e) => assert!(matches!(e, StorageError::Corrupt(_)), "{e}"),
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots of the state machines.
// ---------------------------------------------------------------------------------------

/// A tracker snapshot, the whole input, as a replica restores one it was sent or read
/// from disk: the decoder promises an error, never a panic, for anything that is not a
/// valid snapshot. A restored state snapshots to bytes that restore to a state with the
/// same snapshot, and it answers and applies as any state does (statistics, expiring every
/// peer) without a panic.
pub fn tracker_snapshot(data: &[u8]) {
    let mut state = TrackerState::new(StateConfig::default());
    if let Err(e) = state.restore(data) {
        assert!(!e.0.is_empty());
        return;
    }
    let first = state.snapshot();
    let mut again = TrackerState::new(StateConfig::default());
    again
        .restore(&first)
        .expect("the snapshot of a restored state restores");
    assert!(again.snapshot() == first, "snapshot, restore changed it");
    let _ = state.query(&TrackerQuery::Stats);
    state.apply(1, &TrackerCommand::Expire { now_ms: 1 << 50 });
    let mut after = TrackerState::new(StateConfig::default());
    after
        .restore(&state.snapshot())
        .expect("a state that expired its peers snapshots and restores");
}

/// A snapshot of the key-value example, the whole input: restored, snapshotted and
/// restored again, it is the same store.
pub fn kv_snapshot(data: &[u8]) {
    let mut kv = Kv::default();
    if kv.restore(data).is_err() {
        return;
    }
    let mut again = Kv::default();
    again
        .restore(&kv.snapshot())
        .expect("the snapshot of a restored store restores");
    assert_eq!(again, kv);
}

// ---------------------------------------------------------------------------------------
// The peer's files.
// ---------------------------------------------------------------------------------------

/// A peer's resume file: `[flags][bytes...]`, checked against the torrent
/// `(flags >> 1) % 2` of [`resume_torrents`]. With flag `0x01` the bytes are the body and
/// get the header and checksum a writer puts around it, so the body's decoding and checks
/// are reached. The decoder promises a reason, never a panic, for any file it refuses;
/// one it accepts encodes to a file it accepts as the same content.
pub fn resume_file(data: &[u8]) {
    let Some((flags, bytes)) = data.split_first() else {
        return;
    };
    let known = &resume_torrents()[usize::from(flags >> 1) % resume_torrents().len()];
    let file = if flags & 1 != 0 {
        peer::fuzzing::frame_resume_body(bytes)
    } else {
        bytes.to_vec()
    };
    match peer::fuzzing::decode_resume(&file, &known.torrent) {
        Ok(resume) => {
            assert!(resume.pieces() <= known.torrent.piece_count());
            let again = peer::fuzzing::decode_resume(&resume.encode(), &known.torrent)
                .expect("an accepted resume file re-encodes to one that is accepted");
            assert_eq!(again, resume);
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
}

/// A `bt status` file (JSON), the whole input. One that decodes encodes to JSON that
/// decodes to the same status (rates compared within a rounding step: JSON numbers are
/// decimal).
pub fn status_file(data: &[u8]) {
    let Ok(status) = peer::fuzzing::decode_status(data) else {
        return;
    };
    let json = serde_json::to_vec(&status).expect("a status encodes");
    let again = peer::fuzzing::decode_status(&json).expect("an encoded status decodes");
    let (status, again) = (without_rates(status), without_rates(again));
    assert_eq!(
        serde_json::to_string(&status).expect("encodes"),
        serde_json::to_string(&again).expect("encodes")
    );
}

/// The status with every rate set to 0, after checking the rates of `a` round-tripped.
fn without_rates(mut status: peer::status_file::ProcessStatus) -> peer::status_file::ProcessStatus {
    for torrent in &mut status.torrents {
        torrent.download_rate = 0.0;
        torrent.upload_rate = 0.0;
        for neighbour in &mut torrent.neighbours {
            neighbour.rate = 0.0;
        }
    }
    status
}

// ---------------------------------------------------------------------------------------
// The tracker's web site.
// ---------------------------------------------------------------------------------------

/// What the web site reads from browsers and scripts: `[which][bytes...]`. `which % 6`:
/// the four POST forms (sign-up/sign-in, token, disable-user, CSRF only) as
/// `application/x-www-form-urlencoded` bodies, a search's query string, and the JSON body
/// of `POST /api/tokens`. Each is decoded by the handler's own extractor or parser; what
/// it refuses is an error answer, never a panic.
pub fn web_forms(data: &[u8]) {
    use tracker::fuzzing::{FormKind, decode_form, decode_new_token, decode_search};
    let Some((which, bytes)) = data.split_first() else {
        return;
    };
    match usize::from(*which) % 6 {
        form @ 0..4 => {
            let _ = decode_form(FormKind::ALL[form], bytes);
        }
        4 => {
            if let Ok(query) = std::str::from_utf8(bytes)
                && let Ok(search) = decode_search(query)
                && let Err(why) = search.order
            {
                assert!(!why.is_empty());
            }
        }
        _ => {
            let _ = decode_new_token(bytes);
        }
    }
}

/// Boundaries the `web_upload` target picks from: a short one, a browser's, one at the
/// longest RFC 2046 allows (70 characters), and one with the characters that need quotes.
pub const UPLOAD_BOUNDARIES: [&str; 4] = [
    "X",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "1234567890123456789012345678901234567890123456789012345678901234567890",
    "a b(c)d:e",
];

/// `Content-Type`s other than a form with the chosen boundary (flag `0x10`).
const OTHER_CONTENT_TYPES: [&str; 4] = [
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "application/x-www-form-urlencoded",
    "multipart/mixed; boundary=X",
];

/// The `web_upload` flags: send the signed-in user's cookies; build the body from fields
/// (see [`web_upload`]); send the body's `Content-Length`; declare a length over any
/// upload's; send another `Content-Type` than a form; send the body in small chunks.
pub mod upload_flags {
    /// Send the signed-in user's cookies.
    pub const SIGNED_IN: u8 = 0x01;
    /// Build the body from fields.
    pub const FIELDS: u8 = 0x02;
    /// Send the body's `Content-Length`.
    pub const LENGTH: u8 = 0x04;
    /// Declare a `Content-Length` over any upload's.
    pub const HUGE: u8 = 0x08;
    /// Send another `Content-Type` than a form.
    pub const OTHER_TYPE: u8 = 0x10;
    /// Send the body in small chunks.
    pub const CHUNKS: u8 = 0x20;
}

/// The largest body the upload page reads (a torrent file's largest size and room for
/// the form around it); a declared length over it is refused unread.
const MAX_UPLOAD_BODY: u64 = (tracker::torrent::MAX_TORRENT_FILE_LEN + 64 * 1024) as u64;

/// An upload to the tracker's web site: `[flags][choice][body...]`, POSTed to `/upload`
/// of a real site (see [`crate::web`]) through its real router, with
/// `Content-Type: multipart/form-data; boundary=B` (`B` one of [`UPLOAD_BOUNDARIES`],
/// `choice % 4`). [`upload_flags`] say what else: the signed-in user's cookies, the
/// body's length, a declared length over the limit, another content type
/// (`choice / 4 % 4` of a few), the body in chunks of sizes seeded by `choice`.
///
/// With [`upload_flags::FIELDS`] the body is a list of fields (see [`crate::input`]) that
/// the target puts in a valid envelope, so the fuzzer reaches the handler's own checks:
/// each `[kind][bytes...]`, `kind % 5`: the user's correct CSRF token, a `csrf` field of
/// `bytes`, a `torrent` file of `bytes`, a field named by `bytes[0]` (`torrent`, `csrf`,
/// another, none) holding the rest, or a part's raw header lines and content.
///
/// Whatever the bytes: no panic and no 5xx. Anything refused is a 4xx page whose error
/// notice is a sentence; a declared length over the limit is a 413. A success is only
/// for a signed-in user: a redirect to the new torrent's page, or a page that says the
/// torrent is there already.
pub fn web_upload(data: &[u8]) {
    use upload_flags::*;
    let [flags, choice, body @ ..] = data else {
        return;
    };
    let boundary = UPLOAD_BOUNDARIES[usize::from(*choice) % UPLOAD_BOUNDARIES.len()];
    let body = if flags & FIELDS != 0 {
        upload_fields(boundary, body)
    } else {
        body.to_vec()
    };
    let content_type = if flags & OTHER_TYPE != 0 {
        OTHER_CONTENT_TYPES[usize::from(*choice / 4) % OTHER_CONTENT_TYPES.len()].to_owned()
    } else if boundary.contains(' ') {
        format!("multipart/form-data; boundary=\"{boundary}\"")
    } else {
        format!("multipart/form-data; boundary={boundary}")
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, header_value(&content_type));
    if flags & SIGNED_IN != 0 {
        headers.insert(header::COOKIE, header_value(&UploadSite::cookies()));
    }
    let declared = match (flags & HUGE != 0, flags & LENGTH != 0) {
        (true, _) => Some(MAX_UPLOAD_BODY + 1),
        (false, true) => Some(body.len() as u64),
        (false, false) => None,
    };
    if let Some(len) = declared {
        headers.insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
    }
    let mut sizes = read_sizes(*choice);
    let chunks = (flags & CHUNKS != 0).then_some(&mut sizes as &mut dyn Iterator<Item = usize>);
    let answer = post_upload(headers, body, chunks);
    check_upload_answer(&answer, flags & SIGNED_IN != 0, flags & HUGE != 0);
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("the target's header values are visible ASCII")
}

/// The form the fields in `data` make (see [`web_upload`]).
fn upload_fields(boundary: &str, data: &[u8]) -> Vec<u8> {
    const NAMES: [&str; 4] = ["torrent", "csrf", "comment", ""];
    let csrf = UploadSite::csrf_token();
    let mut fields = Vec::new();
    for part in split(data) {
        let Some((kind, bytes)) = part.split_first() else {
            continue;
        };
        fields.push(match kind % 5 {
            0 => Field::Text {
                name: "csrf",
                value: csrf.as_bytes(),
            },
            1 => Field::Text {
                name: "csrf",
                value: bytes,
            },
            2 => Field::File {
                name: "torrent",
                filename: "upload.torrent",
                content: bytes,
            },
            3 => {
                let (name, value) = bytes.split_first().map_or((0, &[][..]), |(n, v)| (*n, v));
                Field::Text {
                    name: NAMES[usize::from(name) % NAMES.len()],
                    value,
                }
            }
            _ => Field::Raw(bytes),
        });
    }
    form_body(boundary, &fields)
}

/// What [`web_upload`] asserts of an answer.
fn check_upload_answer(answer: &Answer, signed_in: bool, huge: bool) {
    let status = answer.status;
    assert!(
        !status.is_server_error(),
        "an upload was answered {answer:?}"
    );
    if huge {
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer:?}");
    }
    if status.is_client_error() {
        let notice = error_notice(&answer.body)
            .unwrap_or_else(|| panic!("a refusal without an error notice: {answer:?}"));
        assert!(
            notice.split(' ').count() >= 3 && notice.starts_with(char::is_uppercase),
            "a refusal that is not a sentence: {notice:?}"
        );
        return;
    }
    assert!(
        signed_in,
        "an upload without a session succeeded: {answer:?}"
    );
    match status {
        StatusCode::SEE_OTHER => {
            let location = answer.location.as_deref().unwrap_or_default();
            let hash = location.strip_prefix("/torrents/").unwrap_or_default();
            assert!(
                hash.parse::<tracker::torrent::InfoHash>().is_ok(),
                "a redirect to {location:?} after an upload"
            );
        }
        StatusCode::OK => assert!(
            answer.body.contains("already-published"),
            "an upload answered 200 without saying it was there already: {answer:?}"
        ),
        other => panic!("an upload was answered {other}: {answer:?}"),
    }
}

/// Where the seed corpus of `target` is, in this repository.
pub fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target)
}
