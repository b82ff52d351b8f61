//! The one error type of this crate.

use std::path::PathBuf;

/// What went wrong while making, saving or loading keys and certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The file was read but does not hold what it should.
    #[error("{}: {what}", path.display())]
    BadFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with its contents.
        what: String,
    },
    /// A certificate and a private key that were loaded together do not belong together.
    #[error(
        "{} and {} do not match: the certificate's public key is not the key's \
         (was one of them replaced?)",
        certificate.display(),
        key.display()
    )]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// Bytes that should have been a certificate are not one.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// rcgen could not generate or sign.
    #[error("could not generate a key or certificate: {0}")]
    Generate(rcgen::Error),
}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError::Generate(e)
    }
}

impl CertError {
    pub(crate) fn invalid_certificate(what: impl Into<String>) -> Self {
        CertError::InvalidCertificate(what.into())
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CertError::Io {
            path: path.to_owned(),
            error: source,
        }
    }

    pub(crate) fn bad_file(path: &std::path::Path, what: impl Into<String>) -> Self {
        CertError::BadFile {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}
