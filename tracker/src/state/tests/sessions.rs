//! Web sessions.

use super::*;
use crate::state::{MAX_SESSIONS_PER_USER, SNAPSHOT_VERSION, UserRecord};

fn session(n: u32) -> TokenHash {
    TokenHash::of(&format!("session {n}"))
}

fn create(user: &str, n: u32, expires_ms: u64, now_ms: u64) -> Command {
    Command::CreateSession {
        session_hash: session(n),
        user: user.into(),
        expires_ms,
        now_ms,
    }
}

fn who(h: &Harness, n: u32, now_ms: u64) -> Option<String> {
    match h.query(Query::Session {
        session_hash: session(n),
        now_ms,
    }) {
        Output::Session(user) => user.map(|u: UserRecord| u.name),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_session_names_its_user_until_it_expires_or_ends() {
    let mut h = Harness::new();
    h.ok(create("bob", 1, 1_000, 10));
    assert_eq!(who(&h, 1, 999).as_deref(), Some("bob"));
    assert_eq!(who(&h, 1, 1_000), None, "expired at its expiry time");
    assert_eq!(who(&h, 2, 10), None, "unknown session");
    // Retrying the same creation changes nothing; another user cannot take the hash.
    h.ok(create("bob", 1, 1_000, 11));
    assert!(matches!(
        h.err(create("alice", 1, 1_000, 12)),
        ApiError::BadRequest(_)
    ));
    h.ok(Command::EndSession {
        session_hash: session(1),
    });
    assert_eq!(who(&h, 1, 20), None);
    h.ok(Command::EndSession {
        session_hash: session(1),
    });
}

#[test]
fn sessions_of_unknown_or_disabled_users_do_not_work() {
    let mut h = Harness::new();
    assert_eq!(
        h.err(create("nobody", 1, 1_000, 10)),
        ApiError::Unauthorized
    );
    h.ok(create("bob", 2, 1_000, 10));
    h.ok(Command::SetUserDisabled {
        name: "bob".into(),
        disabled: true,
    });
    assert_eq!(who(&h, 2, 20), None);
    assert_eq!(h.err(create("bob", 3, 1_000, 10)), ApiError::Unauthorized);
    h.ok(Command::SetUserDisabled {
        name: "bob".into(),
        disabled: false,
    });
    assert_eq!(who(&h, 2, 20).as_deref(), Some("bob"));
}

#[test]
fn expired_sessions_are_pruned_by_the_commands_clock() {
    let mut h = Harness::new();
    h.ok(create("bob", 1, 100, 10));
    h.ok(create("bob", 2, 5_000, 10));
    assert_eq!(h.state.sessions.len(), 2);
    // A creation prunes with its own clock...
    h.ok(create("alice", 3, 5_000, 200));
    assert_eq!(h.state.sessions.len(), 2);
    // ...and so does the leader's periodic expiry.
    assert!(matches!(
        h.apply(Command::Expire { now_ms: 6_000 }),
        Output::Expired(_)
    ));
    assert_eq!(h.state.sessions.len(), 0);
}

#[test]
fn a_user_holds_a_bounded_number_of_sessions() {
    let mut h = Harness::new();
    let n = MAX_SESSIONS_PER_USER as u32;
    for i in 0..n + 5 {
        h.ok(create("bob", i, 10_000 + u64::from(i), 10));
    }
    assert_eq!(h.state.sessions.len(), MAX_SESSIONS_PER_USER);
    // The ones expiring first went.
    assert_eq!(who(&h, 4, 20), None);
    assert_eq!(who(&h, 5, 20).as_deref(), Some("bob"));
    assert_eq!(who(&h, n + 4, 20).as_deref(), Some("bob"));
}

#[test]
fn sessions_survive_a_snapshot_and_version_1_snapshots_still_restore() {
    let mut h = Harness::new();
    let before_sessions = h.state.snapshot();
    h.ok(create("bob", 1, 1_000, 10));
    let snap = h.state.snapshot();
    assert_eq!(snap[0], SNAPSHOT_VERSION);
    let mut restored = TrackerState::new(StateConfig { peer_ttl_ms: TTL });
    restored.restore(&snap).unwrap();
    assert_eq!(restored.snapshot(), snap);
    assert_eq!(
        restored.query(&Query::Session {
            session_hash: session(1),
            now_ms: 20
        }),
        h.query(Query::Session {
            session_hash: session(1),
            now_ms: 20
        })
    );

    // Version 1: the same image without its last element (the sessions). With no
    // sessions that element is an empty array (0x90) at the very end, and the image's
    // array header (fixarray, 0x90 + length) counts one element less.
    assert_eq!(before_sessions.last(), Some(&0x90));
    let mut v1 = vec![1u8, before_sessions[1] - 1];
    v1.extend_from_slice(&before_sessions[2..before_sessions.len() - 1]);
    let mut old = TrackerState::new(StateConfig { peer_ttl_ms: TTL });
    old.restore(&v1).unwrap();
    assert_eq!(old.snapshot(), before_sessions);

    // A session of a user the snapshot lacks is refused.
    let mut broken = h.state.clone();
    broken.users = Default::default();
    let err = restored.restore(&broken.snapshot()).unwrap_err();
    assert!(err.0.contains("session of unknown user"), "{err}");
}
