//! Reading and writing PEM files; private keys are written atomically with mode 0600.

use std::fs;
use std::io::Write;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::CertError;

/// Unix permissions for files holding private keys: readable by the owner only.
const PRIVATE_MODE: u32 = 0o600;
/// Unix permissions for certificates: public information.
const PUBLIC_MODE: u32 = 0o644;

/// Writes `contents` to `path` so that a reader sees either the old file or the whole new
/// one, never a torn one: temporary file beside it, fsync, rename, fsync the directory.
pub(crate) fn write_atomically(
    path: &Path,
    contents: &[u8],
    private: bool,
) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| CertError::bad_file(path, "is not a file name"))?;
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let mode = if private { PRIVATE_MODE } else { PUBLIC_MODE };
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        CertError::io(path, e)
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    fs::read(path).map_err(|e| CertError::io(path, e))
}

/// Reads every certificate in a PEM file, in order. At least one is required.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::bad_file(path, format!("corrupt PEM: {e}")))?;
    if certs.is_empty() {
        return Err(CertError::bad_file(
            path,
            "holds no certificate (expected a '-----BEGIN CERTIFICATE-----' block)",
        ));
    }
    for (i, cert) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
            CertError::bad_file(
                path,
                format!("certificate #{} is not valid X.509: {e}", i + 1),
            )
        })?;
    }
    Ok(certs)
}

/// Reads a PKCS#8 private key from a PEM file and checks that it can sign.
pub(crate) fn read_key_pair(path: &Path) -> Result<rcgen::KeyPair, CertError> {
    let bytes = read(path)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        CertError::bad_file(
            path,
            format!("holds no readable private key (expected a '-----BEGIN PRIVATE KEY-----' block): {e}"),
        )
    })?;
    rcgen::KeyPair::try_from(&key)
        .map_err(|e| CertError::bad_file(path, format!("private key is not usable: {e}")))
}

/// PEM text of a chain of certificates.
pub(crate) fn certificates_pem(chain: &[CertificateDer<'_>]) -> String {
    chain
        .iter()
        .map(|c| pem_block("CERTIFICATE", c.as_ref()))
        .collect()
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use data_encoding::BASE64;
    let body = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
