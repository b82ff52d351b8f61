//! The tracker cluster's certificate authority.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;

use crate::identity::node_params;
use crate::pem_file::{certificates_pem, read_certificates, read_key_pair, write_atomically};
use crate::{CertError, Fingerprint, Identity};

/// A certificate authority that issues the certificates of the tracker nodes.
///
/// Nodes trust each other when their certificates chain to it; peers recognise tracker
/// nodes by the CA's [`Fingerprint`], which torrent files carry.
pub struct ClusterCa {
    key: KeyPair,
    certificate: CertificateDer<'static>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Creates a new CA with a fresh key; `name` becomes its common name.
    pub fn generate(name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key)?.der().clone();
        Ok(ClusterCa { key, certificate })
    }

    /// The CA's self-signed certificate: the trust anchor of the cluster.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The fingerprint of the CA's public key.
    pub fn fingerprint(&self) -> Fingerprint {
        use rcgen::PublicKeyData;
        Fingerprint::of_public_key(&self.key.subject_public_key_info())
    }

    /// Issues a certificate for node `name` with a fresh key: `name` is the DNS subject
    /// alternative name, and the certificate serves both TLS server and client auth.
    pub fn issue(&self, name: &str) -> Result<Identity, CertError> {
        let issuer = Issuer::from_ca_cert_der(&self.certificate, &self.key)?;
        let key = KeyPair::generate()?;
        let cert = node_params(name)?.signed_by(&key, &issuer)?;
        Ok(Identity::from_parts(
            key,
            vec![cert.der().clone(), self.certificate.clone()],
        ))
    }

    /// Writes the CA certificate and its private key (mode 0600), each atomically.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_atomically(key_path, self.key.serialize_pem().as_bytes(), true)?;
        write_atomically(
            cert_path,
            certificates_pem(std::slice::from_ref(&self.certificate)).as_bytes(),
            false,
        )
    }

    /// Loads a CA saved by [`ClusterCa::save`].
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CertError> {
        let certificate = Self::load_certificate(cert_path)?;
        let key = read_key_pair(key_path)?;
        let ca = ClusterCa { key, certificate };
        let presented = Fingerprint::of_certificate(&ca.certificate)
            .map_err(|e| CertError::bad_file(cert_path, e.to_string()))?;
        if presented != ca.fingerprint() {
            return Err(CertError::Mismatch {
                certificate: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        Ok(ca)
    }

    /// Loads only the CA certificate (what a node needs to verify its peers), checking
    /// that it is a CA certificate.
    pub fn load_certificate(cert_path: &Path) -> Result<CertificateDer<'static>, CertError> {
        let mut certs = read_certificates(cert_path)?;
        if certs.len() != 1 {
            return Err(CertError::bad_file(
                cert_path,
                format!("expected exactly one CA certificate, found {}", certs.len()),
            ));
        }
        let certificate = certs.remove(0);
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
            .map_err(|e| CertError::bad_file(cert_path, format!("not X.509: {e}")))?;
        if !parsed.is_ca() {
            return Err(CertError::bad_file(
                cert_path,
                "is not a CA certificate (its basic constraints do not allow signing)",
            ));
        }
        Ok(certificate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_node_certificate_names_the_node_and_chains_to_the_ca() {
        let ca = ClusterCa::generate("test cluster").unwrap();
        let node = ca.issue("node1").unwrap();
        assert_eq!(node.chain().len(), 2);
        assert_eq!(&node.chain()[1], ca.certificate());
        assert_eq!(crate::dns_names(node.certificate()).unwrap(), vec!["node1"]);
        let (_, parsed) = x509_parser::parse_x509_certificate(node.certificate()).unwrap();
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(!parsed.is_ca());
        // The issuer field is the CA's subject.
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(ca.certificate()).unwrap();
        assert_eq!(parsed.issuer(), ca_parsed.subject());
        assert!(
            parsed
                .verify_signature(Some(ca_parsed.public_key()))
                .is_ok()
        );
    }

    #[test]
    fn ca_save_load_round_trip_and_issue_after_load() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        let ca = ClusterCa::generate("c").unwrap();
        ca.save(&cert, &key).unwrap();
        let loaded = ClusterCa::load(&cert, &key).unwrap();
        assert_eq!(loaded.fingerprint(), ca.fingerprint());
        let node = loaded.issue("node2").unwrap();
        assert_eq!(&node.chain()[1], ca.certificate());
    }

    #[test]
    fn a_node_certificate_is_not_accepted_as_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("n.crt"), dir.path().join("n.key"));
        Identity::generate_self_signed("n")
            .unwrap()
            .save(&cert, &key)
            .unwrap();
        let err = ClusterCa::load_certificate(&cert).unwrap_err().to_string();
        assert!(err.contains("n.crt") && err.contains("not a CA"), "{err}");
    }
}
