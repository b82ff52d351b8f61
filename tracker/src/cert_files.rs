//! The one place that names the files of a certificate directory: `bt-tracker certs`
//! writes them, a node ([`CertPaths::in_dir`](crate::node::CertPaths::in_dir)) and the
//! operator's client ([`AdminClient`](crate::admin::AdminClient)) read them, and the dev
//! cluster reuses them.
//!
//! ```text
//! DIR/ca.crt, DIR/ca.key        the cluster CA (keep the key offline in production)
//! DIR/NAME.crt, DIR/NAME.key    a node's certificate and key, or the operator's (admin)
//! ```

use std::path::{Path, PathBuf};

/// The certificate name an operator's client presents on the cluster address; no node
/// may take it.
pub const ADMIN_NAME: &str = "admin";

/// The CA certificate's file name.
const CA_CERT: &str = "ca.crt";
/// The CA key's file name.
const CA_KEY: &str = "ca.key";
/// The extension of a node's or the operator's certificate file.
const CERT_EXTENSION: &str = "crt";
/// The extension of a node's or the operator's key file.
const KEY_EXTENSION: &str = "key";

/// The files of a certificate directory.
#[derive(Clone, Debug)]
pub struct CertDir(pub PathBuf);

impl CertDir {
    /// The directory `dir`.
    pub fn new(dir: &Path) -> Self {
        CertDir(dir.to_path_buf())
    }
    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join(CA_CERT)
    }
    /// The CA key (keep it offline in production).
    pub fn ca_key(&self) -> PathBuf {
        self.0.join(CA_KEY)
    }
    /// The certificate of `name` (a node, or [`ADMIN_NAME`]).
    pub fn cert(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.{CERT_EXTENSION}"))
    }
    /// The key of `name` (a node, or [`ADMIN_NAME`]).
    pub fn key(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.{KEY_EXTENSION}"))
    }
}
