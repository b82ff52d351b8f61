//! `bt-tracker certs`: the cluster CA with the operator certificate, and nodes'
//! certificates.

use std::path::Path;

use super::CliError;
use crate::admin;
use crate::cert_files::CertDir;

/// `certs ca`: makes the CA and the operator certificate in `dir` and prints the CA
/// fingerprint that torrent files carry.
pub fn create_ca(dir: &Path) -> Result<(), CliError> {
    let fingerprint = admin::create_ca(dir)?;
    println!(
        "created the cluster CA and the operator certificate in {}",
        dir.display()
    );
    println!("CA fingerprint: {fingerprint}");
    Ok(())
}

/// `certs node NAME`: issues node `name`'s certificate with the CA in `dir`.
pub fn create_node_cert(dir: &Path, name: &str) -> Result<(), CliError> {
    admin::create_node_cert(dir, name)?;
    let files = CertDir::new(dir);
    println!(
        "issued {} and {}",
        files.cert(name).display(),
        files.key(name).display()
    );
    Ok(())
}
