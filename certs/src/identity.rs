//! A node's key pair and certificate chain.

use std::path::Path;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::pem_file::{certificates_pem, read_certificates, read_key_pair, write_atomically};
use crate::{CertError, Fingerprint};

/// A key pair and the certificate chain that presents it.
///
/// The chain starts with the node's own certificate; for a node issued by a [`ClusterCa`]
/// the CA certificate follows it.
///
/// [`ClusterCa`]: crate::ClusterCa
pub struct Identity {
    key: KeyPair,
    chain: Vec<CertificateDer<'static>>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Parameters of an end-entity certificate for `name`, usable for TLS server and client auth.
pub(crate) fn node_params(name: &str) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

impl Identity {
    /// Generates a new key pair (ECDSA P-256) and a self-signed certificate naming `name`.
    pub fn generate_self_signed(name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let cert = node_params(name)?.self_signed(&key)?;
        Ok(Self::from_parts(key, vec![cert.der().clone()]))
    }

    /// A new self-signed certificate for the same key: the fingerprint stays the same.
    pub fn renew_self_signed(&self, name: &str) -> Result<Self, CertError> {
        let key = KeyPair::try_from(self.key.serialized_der())?;
        let cert = node_params(name)?.self_signed(&key)?;
        Ok(Self::from_parts(key, vec![cert.der().clone()]))
    }

    pub(crate) fn from_parts(key: KeyPair, chain: Vec<CertificateDer<'static>>) -> Self {
        use rcgen::PublicKeyData;
        let fingerprint = Fingerprint::of_public_key(&key.subject_public_key_info());
        Identity {
            key,
            chain,
            fingerprint,
        }
    }

    /// Who this node is: the fingerprint of its public key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The certificate chain, the node's own certificate first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The node's own certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The private key, PKCS#8 DER, as TLS libraries take it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }

    /// Writes the chain to `cert_path` and the private key to `key_path` (mode 0600),
    /// each atomically.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_atomically(key_path, self.key.serialize_pem().as_bytes(), true)?;
        write_atomically(cert_path, certificates_pem(&self.chain).as_bytes(), false)
    }

    /// Loads an identity saved by [`Identity::save`], checking that the key is the one
    /// the certificate presents.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CertError> {
        let chain = read_certificates(cert_path)?;
        let key = read_key_pair(key_path)?;
        let identity = Self::from_parts(key, chain);
        let presented = Fingerprint::of_certificate(identity.certificate())
            .map_err(|e| CertError::bad_file(cert_path, e.to_string()))?;
        if presented != identity.fingerprint {
            return Err(CertError::Mismatch {
                certificate: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_hashes_the_public_key_so_renewal_keeps_it() {
        let id = Identity::generate_self_signed("a").unwrap();
        let renewed = id.renew_self_signed("a").unwrap();
        assert_ne!(id.certificate(), renewed.certificate());
        assert_eq!(id.fingerprint(), renewed.fingerprint());
        assert_eq!(
            Fingerprint::of_certificate(renewed.certificate()).unwrap(),
            id.fingerprint()
        );
    }

    #[test]
    fn two_identities_have_different_fingerprints() {
        let a = Identity::generate_self_signed("a").unwrap();
        let b = Identity::generate_self_signed("a").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn save_and_load_round_trip_with_private_key_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("node.crt"), dir.path().join("node.key"));
        let id = Identity::generate_self_signed("n").unwrap();
        id.save(&cert, &key).unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = Identity::load(&cert, &key).unwrap();
        assert_eq!(loaded.fingerprint(), id.fingerprint());
        assert_eq!(loaded.chain(), id.chain());
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn load_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            Identity::load(&dir.path().join("nope.crt"), &dir.path().join("nope.key")).unwrap_err();
        assert!(err.to_string().contains("nope.crt"), "{err}");
    }

    #[test]
    fn load_names_the_corrupt_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("node.crt"), dir.path().join("node.key"));
        Identity::generate_self_signed("n")
            .unwrap()
            .save(&cert, &key)
            .unwrap();
        std::fs::write(&key, "garbage").unwrap();
        let err = Identity::load(&cert, &key).unwrap_err().to_string();
        assert!(
            err.contains("node.key") && err.contains("private key"),
            "{err}"
        );
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = Identity::load(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("node.crt") && err.contains("X.509"), "{err}");
        std::fs::write(&cert, "").unwrap();
        let err = Identity::load(&cert, &key).unwrap_err().to_string();
        assert!(
            err.contains("node.crt") && err.contains("no certificate"),
            "{err}"
        );
    }

    #[test]
    fn load_refuses_a_key_that_does_not_match_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("a.crt"), dir.path().join("a.key"));
        let (cert_b, key_b) = (dir.path().join("b.crt"), dir.path().join("b.key"));
        Identity::generate_self_signed("a")
            .unwrap()
            .save(&cert, &key)
            .unwrap();
        Identity::generate_self_signed("b")
            .unwrap()
            .save(&cert_b, &key_b)
            .unwrap();
        let err = Identity::load(&cert, &key_b).unwrap_err();
        assert!(matches!(err, CertError::Mismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("a.crt") && text.contains("b.key"), "{text}");
    }
}
