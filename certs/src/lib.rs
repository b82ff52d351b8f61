//! Key pairs and certificates for ByteTorrent, made with `rcgen`.
//!
//! * [`Identity`]: a node's key pair and certificate. Peers use self-signed identities;
//!   tracker nodes use identities issued by the [`ClusterCa`].
//! * [`Fingerprint`]: who a node *is*: the BLAKE3 hash of its SubjectPublicKeyInfo DER,
//!   written as 52 characters of lowercase base32 without padding. Because it hashes the
//!   public key and not the certificate, a renewed certificate keeps its identity.
//! * [`ClusterCa`]: the tracker cluster's certificate authority. It issues node
//!   certificates that carry the node's name in the subject alternative name and may be
//!   used for both TLS server and client authentication.
//!
//! Files are PEM. Private keys are written atomically (temporary file, fsync, rename,
//! fsync of the directory) with mode 0600, and every load error names the file and what
//! is wrong with it.
//!
//! ```
//! use certs::{ClusterCa, Identity};
//!
//! let peer = Identity::generate_self_signed("peer").unwrap();
//! let text = peer.fingerprint().to_string();
//! assert_eq!(text.len(), 52);
//! assert_eq!(text.parse::<certs::Fingerprint>().unwrap(), peer.fingerprint());
//!
//! let ca = ClusterCa::generate("ByteTorrent cluster").unwrap();
//! let node = ca.issue("node1").unwrap();
//! assert_eq!(node.chain().len(), 2); // node certificate, then the CA certificate
//! ```

mod ca;
pub mod digest32;
mod error;
mod fingerprint;
mod identity;
mod pem_file;

pub use ca::ClusterCa;
pub use error::CertError;
pub use fingerprint::{Fingerprint, FingerprintParseError};
pub use identity::Identity;
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Reads the DNS names in a certificate's subject alternative name extension.
///
/// Tracker nodes are named by the DNS SAN of their cluster certificate; the transport uses
/// this to tell the application which node it is talking to.
pub fn dns_names(certificate: &CertificateDer<'_>) -> Result<Vec<String>, CertError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_err(|e| CertError::invalid_certificate(format!("not an X.509 certificate: {e}")))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    Ok(names)
}
