//! Users and their API tokens.
//!
//! Only hashes of tokens are stored. A token works while it exists and its owner is
//! enabled, so disabling a user stops every one of its tokens at once without touching
//! them, and enabling the user again brings them back.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::ApiError;

use super::{Role, TokenHash, TokenRecord, UserRecord};

/// Longest user name, in characters.
pub(crate) const MAX_USER_NAME_LEN: usize = 64;

/// Longest token label, in bytes: a label is for people to recognise a token by, not a
/// place to store data in the replicated log.
pub(crate) const MAX_TOKEN_LABEL_LEN: usize = 256;

/// Longest stored password hash, in bytes. An argon2 PHC string is about 100 bytes; the
/// limit only keeps a broken node from filling the state.
pub(crate) const MAX_PASSWORD_HASH_LEN: usize = 1024;

/// A user with the hashes of its tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserEntry {
    pub(crate) record: UserRecord,
    pub(crate) tokens: BTreeSet<TokenHash>,
}

/// A token: its owner and record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenEntry {
    pub(crate) owner: String,
    pub(crate) record: TokenRecord,
}

/// Every user and token, in B-trees so that listings and snapshots come out in one order
/// on every replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Users {
    pub(crate) users: BTreeMap<String, UserEntry>,
    pub(crate) tokens: BTreeMap<TokenHash, TokenEntry>,
}

/// Checks a user name: 1 to 64 characters of ASCII letters, digits, `_`, `.` and `-`,
/// so that names are safe in URLs, logs and file names without escaping.
pub(crate) fn validate_user_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_USER_NAME_LEN {
        return Err(ApiError::BadRequest(format!(
            "a user name has 1 to {MAX_USER_NAME_LEN} characters, this one has {}",
            name.chars().count()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(ApiError::BadRequest(format!(
            "a user name may only contain letters, digits, '_', '.' and '-', not {c:?}"
        )));
    }
    Ok(())
}

impl Users {
    /// Adds a user; refuses a taken or malformed name.
    pub(crate) fn add(
        &mut self,
        name: &str,
        password_hash: &str,
        role: Role,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        validate_user_name(name)?;
        if password_hash.len() > MAX_PASSWORD_HASH_LEN {
            return Err(ApiError::BadRequest(format!(
                "a password hash has at most {MAX_PASSWORD_HASH_LEN} bytes"
            )));
        }
        if self.users.contains_key(name) {
            return Err(ApiError::UserExists(name.to_owned()));
        }
        let record = UserRecord {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            role,
            disabled: false,
            created_ms: now_ms,
        };
        self.users.insert(
            name.to_owned(),
            UserEntry {
                record,
                tokens: BTreeSet::new(),
            },
        );
        Ok(())
    }

    /// Disables or enables a user.
    pub(crate) fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<(), ApiError> {
        let entry = self
            .users
            .get_mut(name)
            .ok_or_else(|| ApiError::UnknownUser(name.to_owned()))?;
        entry.record.disabled = disabled;
        Ok(())
    }

    /// Stores a token's hash for an existing user. Storing the same hash for the same user
    /// again changes nothing; a hash owned by someone else is refused.
    pub(crate) fn create_token(
        &mut self,
        user: &str,
        token_hash: TokenHash,
        label: &str,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        if label.len() > MAX_TOKEN_LABEL_LEN {
            return Err(ApiError::BadRequest(format!(
                "a token label has at most {MAX_TOKEN_LABEL_LEN} bytes"
            )));
        }
        let entry = self
            .users
            .get_mut(user)
            .ok_or_else(|| ApiError::UnknownUser(user.to_owned()))?;
        if let Some(existing) = self.tokens.get(&token_hash) {
            return if existing.owner == user {
                Ok(())
            } else {
                Err(ApiError::BadRequest(
                    "this token is already in use; make a new random token".into(),
                ))
            };
        }
        entry.tokens.insert(token_hash);
        self.tokens.insert(
            token_hash,
            TokenEntry {
                owner: user.to_owned(),
                record: TokenRecord {
                    token_hash,
                    label: label.to_owned(),
                    created_ms: now_ms,
                },
            },
        );
        Ok(())
    }

    /// Deletes a user's token.
    pub(crate) fn revoke_token(
        &mut self,
        user: &str,
        token_hash: TokenHash,
    ) -> Result<(), ApiError> {
        let entry = self
            .users
            .get_mut(user)
            .ok_or_else(|| ApiError::UnknownUser(user.to_owned()))?;
        if !entry.tokens.remove(&token_hash) {
            return Err(ApiError::BadRequest(format!(
                "user {user:?} has no such token"
            )));
        }
        self.tokens.remove(&token_hash);
        Ok(())
    }

    /// The name of the enabled user owning a token, if any.
    pub(crate) fn token_owner(&self, token_hash: &TokenHash) -> Option<&str> {
        let token = self.tokens.get(token_hash)?;
        self.enabled_user(&token.owner)
    }

    /// The user's name, if it exists and is enabled.
    pub(crate) fn enabled_user(&self, name: &str) -> Option<&str> {
        let entry = self.users.get(name)?;
        (!entry.record.disabled).then_some(entry.record.name.as_str())
    }

    /// A user's record.
    pub(crate) fn user(&self, name: &str) -> Option<&UserRecord> {
        self.users.get(name).map(|e| &e.record)
    }

    /// A user's tokens, oldest first (ties by hash), so a web page lists them stably.
    pub(crate) fn tokens_of(&self, name: &str) -> Vec<TokenRecord> {
        let Some(entry) = self.users.get(name) else {
            return Vec::new();
        };
        let mut tokens: Vec<TokenRecord> = entry
            .tokens
            .iter()
            .filter_map(|h| self.tokens.get(h))
            .map(|t| t.record.clone())
            .collect();
        tokens.sort_by_key(|t| (t.created_ms, t.token_hash));
        tokens
    }

    /// Every user, by name.
    pub(crate) fn all(&self) -> Vec<UserRecord> {
        self.users.values().map(|e| e.record.clone()).collect()
    }

    /// Number of users.
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }
}
