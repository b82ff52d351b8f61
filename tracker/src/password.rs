//! Users' passwords: the one place that decides what a password may be, hashes it for
//! storage and checks it at sign-in.
//!
//! Passwords are hashed with argon2id (the `argon2` crate's default parameters) into a
//! PHC string (`$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`), which carries its own salt
//! and parameters; only that string is replicated. Hashing and checking take tens of
//! milliseconds on purpose, so both run on tokio's blocking threads.

/// Shortest password accepted, in characters.
pub(crate) const MIN_LEN: usize = 8;

/// Longest password accepted, in bytes: longer input is refused before it costs a hash.
pub(crate) const MAX_LEN: usize = 1024;

/// Why a new password is refused, in words a person reads.
pub(crate) fn refuse(password: &str) -> Option<String> {
    if password.chars().count() < MIN_LEN {
        Some(format!(
            "the password must have at least {MIN_LEN} characters"
        ))
    } else if password.len() > MAX_LEN {
        Some(format!("the password may have at most {MAX_LEN} bytes"))
    } else {
        None
    }
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub(crate) async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| format!("cannot make a salt: {e}"))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("cannot hash the password: {e}"))
    })
    .await
    .map_err(|e| format!("password hashing failed: {e}"))?
}

/// Whether `password` matches the PHC string `phc`; false for a malformed string or a
/// password longer than [`MAX_LEN`] (never hashed, so never stored).
pub(crate) async fn verify(password: String, phc: String) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_another_does_not() {
        let phc = hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse".into(), phc.clone()).await);
        assert!(!verify("wrong horse".into(), phc.clone()).await);
        assert!(!verify("correct horse".into(), "not a phc string".into()).await);
    }

    #[test]
    fn short_and_overlong_passwords_are_refused_in_words() {
        assert!(refuse("1234567").unwrap().contains("at least 8"));
        assert!(refuse("12345678").is_none());
        assert!(
            refuse(&"x".repeat(MAX_LEN + 1))
                .unwrap()
                .contains("at most 1024")
        );
    }
}
