//! The peer's identity on disk: made once, shared by every process using the state directory.

use std::path::Path;

use certs::Identity;

use super::error::PeerError;

/// Loads the peer's identity from `dir`, or makes one and saves it there.
///
/// Several processes may start at once on a fresh state directory: making the identity
/// holds an exclusive lock on `identity.lock`, and whoever gets it second finds the
/// identity the first one saved and loads it, so all of them end with the same one. The
/// files are `identity.crt` and `identity.key`, as always, so an existing identity keeps
/// its fingerprint.
pub fn load_or_create_identity(dir: &Path) -> Result<Identity, PeerError> {
    let cert = dir.join("identity.crt");
    let key = dir.join("identity.key");
    let wrap = |error| PeerError::Identity {
        dir: dir.to_path_buf(),
        error,
    };
    // The key is saved before the certificate, each atomically, and a complete pair is
    // never replaced: once the certificate is there, the pair is whole.
    if cert.exists() && key.exists() {
        return Identity::load(&cert, &key).map_err(wrap);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| PeerError::Io { path, error }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock_path = dir.join("identity.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    // Blocks while another process makes the identity: that takes milliseconds.
    lock.lock().map_err(io(&lock_path))?;
    if cert.exists() && key.exists() {
        return Identity::load(&cert, &key).map_err(wrap);
    }
    let identity = Identity::generate_self_signed("bytetorrent-peer").map_err(wrap)?;
    identity.save(&cert, &key).map_err(wrap)?;
    Ok(identity)
}
