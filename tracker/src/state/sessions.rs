//! Web sessions: the hash of each signed-in browser's random session id, with its user and
//! expiry, replicated so that any node can check a session cookie.
//!
//! Only hashes are stored, like API tokens: the log and snapshots never hold a session id
//! that could be replayed. Expiry is decided by the `now_ms` that commands and queries
//! carry, never by a replica's clock, so every replica prunes the same sessions at the same
//! slot.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::ApiError;

use super::TokenHash;

/// Most sessions a user may hold at once; creating one more ends the one that expires
/// first. 64: a person signs in from a handful of browsers, and the bound keeps a script
/// that signs in in a loop from growing the replicated state.
pub const MAX_SESSIONS_PER_USER: usize = 64;

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionEntry {
    pub(crate) user: String,
    pub(crate) expires_ms: u64,
}

/// Every live session, with an index by expiry so that pruning costs what it removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sessions {
    pub(crate) by_hash: BTreeMap<TokenHash, SessionEntry>,
    by_expiry: BTreeSet<(u64, TokenHash)>,
}

impl Sessions {
    /// Stores a session for `user` (whose existence the caller checked) and prunes the
    /// expired ones. Storing the same hash again for the same user changes nothing.
    pub(crate) fn create(
        &mut self,
        session_hash: TokenHash,
        user: &str,
        expires_ms: u64,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.prune(now_ms);
        if let Some(existing) = self.by_hash.get(&session_hash) {
            return if existing.user == user {
                Ok(())
            } else {
                Err(ApiError::BadRequest(
                    "this session id is already in use; make a new random one".into(),
                ))
            };
        }
        if expires_ms <= now_ms {
            return Err(ApiError::BadRequest(
                "the session expires before it starts".into(),
            ));
        }
        let mine: Vec<(u64, TokenHash)> = self
            .by_expiry
            .iter()
            .filter(|(_, h)| self.by_hash.get(h).is_some_and(|s| s.user == user))
            .copied()
            .collect();
        if mine.len() >= MAX_SESSIONS_PER_USER {
            for (_, h) in mine.iter().take(mine.len() + 1 - MAX_SESSIONS_PER_USER) {
                self.end(*h);
            }
        }
        self.insert(session_hash, user.to_owned(), expires_ms);
        Ok(())
    }

    pub(crate) fn insert(&mut self, session_hash: TokenHash, user: String, expires_ms: u64) {
        self.by_expiry.insert((expires_ms, session_hash));
        self.by_hash
            .insert(session_hash, SessionEntry { user, expires_ms });
    }

    /// Ends a session; ending one that does not exist (signed out twice, expired) is fine.
    pub(crate) fn end(&mut self, session_hash: TokenHash) {
        if let Some(entry) = self.by_hash.remove(&session_hash) {
            self.by_expiry.remove(&(entry.expires_ms, session_hash));
        }
    }

    /// Removes every session with `expires_ms <= now_ms`; returns how many.
    pub(crate) fn prune(&mut self, now_ms: u64) -> usize {
        let mut removed = 0;
        while let Some(&(expires_ms, hash)) = self.by_expiry.first() {
            if expires_ms > now_ms {
                break;
            }
            self.by_expiry.pop_first();
            self.by_hash.remove(&hash);
            removed += 1;
        }
        removed
    }

    /// The user of a session that has not expired at `now_ms`.
    pub(crate) fn user(&self, session_hash: &TokenHash, now_ms: u64) -> Option<&str> {
        let entry = self.by_hash.get(session_hash)?;
        (entry.expires_ms > now_ms).then_some(entry.user.as_str())
    }

    /// Number of sessions stored.
    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
    }
}
