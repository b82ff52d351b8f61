//! Who to trust: the TLS certificate verifiers and the rustls configurations built on them.
//!
//! Three policies, each TLS 1.3 only, each with the `ring` provider passed explicitly
//! (no process-wide default provider is ever installed):
//!
//! * **pinned** (peer to peer): the server must present one self-contained certificate
//!   whose public key has the expected [`Fingerprint`], and prove it holds the private
//!   key through the TLS 1.3 `CertificateVerify` signature. Chains are refused.
//! * **cluster** (tracker node to tracker node, mutual): the certificate must chain to the
//!   cluster CA; a dialled server's SAN must name the node we meant to reach, and an
//!   accepted client's SAN must name a cluster member.
//! * **open** (a tracker serving peers): any client that proves a key is accepted, and the
//!   application learns its fingerprint.
//!
//! Peers dialling a tracker use a fourth expectation, *cluster member*: the server's chain
//! must end in a CA certificate with a known fingerprint (torrent files carry it) and the
//! node certificate must be signed by it.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use certs::{CertificateDer, Fingerprint, Identity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::TransportError;

/// The crypto provider used for every configuration: `ring`.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which clients an endpoint accepts.
#[derive(Clone, Debug)]
pub enum InboundTrust {
    /// Any client that proves possession of a key; its fingerprint is reported.
    Open,
    /// Only cluster members: the client certificate must chain to `ca` and its DNS SAN
    /// must be one of `members`.
    Cluster {
        /// The cluster CA certificate.
        ca: CertificateDer<'static>,
        /// Names of the nodes allowed to connect (a set that may grow while the
        /// endpoint runs, as members join).
        members: ClusterNames,
    },
}

/// The certificate names a cluster endpoint accepts clients from. Cheap to clone; all
/// clones share one set, so a name added after the endpoint was bound (a node that
/// joined the cluster) is accepted from the next handshake on.
#[derive(Clone, Debug, Default)]
pub struct ClusterNames(Arc<std::sync::RwLock<std::collections::BTreeSet<String>>>);

impl ClusterNames {
    /// Accepts `name` from now on.
    pub fn insert(&self, name: impl Into<String>) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into());
    }

    /// Whether `name` is accepted.
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// The accepted names, sorted.
    pub fn to_vec(&self) -> Vec<String> {
        let names = self.0.read().unwrap_or_else(|e| e.into_inner());
        names.iter().cloned().collect()
    }
}

impl<N: Into<String>> FromIterator<N> for ClusterNames {
    fn from_iter<I: IntoIterator<Item = N>>(names: I) -> Self {
        let set = names.into_iter().map(Into::into).collect();
        ClusterNames(Arc::new(std::sync::RwLock::new(set)))
    }
}

/// What a dialler expects of the server it reaches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// A peer: the server must prove the key with this fingerprint. Chains are refused.
    Fingerprint(Fingerprint),
    /// A tracker node, dialled by another node: the server certificate must chain to the
    /// endpoint's cluster CA and name `name` in its SAN.
    ClusterNode(String),
    /// Any tracker node, dialled by a peer that knows only the CA's fingerprint: the
    /// server's chain must end in a CA with this fingerprint that signed the node's
    /// certificate.
    ClusterMember(Fingerprint),
}

#[derive(Debug)]
struct FingerprintMismatch {
    expected: Fingerprint,
    got: Fingerprint,
}

impl fmt::Display for FingerprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the remote presented fingerprint {}, expected {}",
            self.got, self.expected
        )
    }
}

impl std::error::Error for FingerprintMismatch {}

#[derive(Debug)]
struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse(reason: impl Into<String>) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        Refusal(reason.into()),
    ))))
}

fn fingerprint_of(cert: &CertificateDer<'_>) -> Result<Fingerprint, rustls::Error> {
    Fingerprint::of_certificate(cert).map_err(|_| CertificateError::BadEncoding.into())
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

/// The signature half of a verifier that holds `algorithms`: TLS 1.2 refused, the TLS 1.3
/// `CertificateVerify` signature checked against the presented certificate's key (the
/// proof that the remote holds the private key).
macro_rules! proof_of_possession_tls13_only {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(tls12_refused())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

/// Checks a self-contained certificate against an expected fingerprint.
#[derive(Debug)]
struct PinnedServerVerifier {
    expected: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(refuse(format!(
                "a pinned peer must present a single certificate, got a chain of {}",
                intermediates.len() + 1
            )));
        }
        let got = fingerprint_of(end_entity)?;
        if got != self.expected {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(FingerprintMismatch {
                    expected: self.expected,
                    got,
                })),
            )));
        }
        // Possession of the key is proven by the handshake signature, checked below.
        Ok(ServerCertVerified::assertion())
    }

    proof_of_possession_tls13_only!();
}

/// Accepts a tracker node whose chain ends in the CA with a known fingerprint.
#[derive(Debug)]
struct ClusterMemberServerVerifier {
    ca: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ClusterMemberServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca_cert = intermediates
            .iter()
            .find(|c| fingerprint_of(c).is_ok_and(|fp| fp == self.ca))
            .ok_or_else(|| {
                refuse(format!(
                    "the tracker did not present the cluster CA {} in its chain",
                    self.ca
                ))
            })?;
        let anchor = webpki::anchor_from_trusted_cert(ca_cert)
            .map_err(|_| rustls::Error::from(CertificateError::BadEncoding))?;
        let end_entity = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::from(CertificateError::BadEncoding))?;
        end_entity
            .verify_for_usage(
                self.algorithms.all,
                &[anchor],
                &[],
                now,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(|e| {
                refuse(format!(
                    "the tracker's certificate does not chain to the cluster CA: {e}"
                ))
            })?;
        Ok(ServerCertVerified::assertion())
    }

    proof_of_possession_tls13_only!();
}

/// Accepts any client that proves possession of the key in its certificate.
#[derive(Debug)]
struct AnyKeyClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyKeyClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        fingerprint_of(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    proof_of_possession_tls13_only!();
}

/// Accepts clients whose certificate chains to the cluster CA and names a member.
#[derive(Debug)]
struct ClusterClientVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    members: ClusterNames,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClusterClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = certs::dns_names(end_entity)
            .map_err(|_| rustls::Error::from(CertificateError::BadEncoding))?;
        if !names.iter().any(|n| self.members.contains(n)) {
            return Err(refuse(format!(
                "the client certificate names {names:?}, none of which is a cluster member ({:?})",
                self.members.to_vec()
            )));
        }
        Ok(verified)
    }

    proof_of_possession_tls13_only!();
}

fn config_error(e: impl fmt::Display) -> TransportError {
    TransportError::Config(e.to_string())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<rustls::RootCertStore>, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).map_err(config_error)?;
    Ok(Arc::new(roots))
}

/// The rustls server configuration of an endpoint.
pub(crate) fn server_config(
    identity: &Identity,
    inbound: &InboundTrust,
    alpns: &[Vec<u8>],
) -> Result<rustls::ServerConfig, TransportError> {
    let provider = provider();
    let verifier: Arc<dyn ClientCertVerifier> = match inbound {
        InboundTrust::Open => Arc::new(AnyKeyClientVerifier {
            algorithms: provider.signature_verification_algorithms,
        }),
        InboundTrust::Cluster { ca, members } => Arc::new(ClusterClientVerifier {
            chain: rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots(ca)?,
                provider.clone(),
            )
            .build()
            .map_err(config_error)?,
            members: members.clone(),
            algorithms: provider.signature_verification_algorithms,
        }),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain().to_vec(), identity.private_key())
        .map_err(config_error)?;
    config.alpn_protocols = alpns.to_vec();
    Ok(config)
}

/// Why this side refused the server's certificate in one handshake, in words: the
/// handshake error itself carries only a TLS alert code and rustls' debug text.
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusalNote(Arc<Mutex<Option<Refused>>>);

/// Why a server's certificate was refused.
#[derive(Debug)]
pub(crate) enum Refused {
    /// A pinned peer proved another key.
    Fingerprint {
        /// The fingerprint expected.
        expected: Fingerprint,
        /// The one presented.
        got: Fingerprint,
    },
    /// Anything else, in words.
    Other(String),
}

impl RefusalNote {
    /// The reason noted, if the certificate was refused.
    pub(crate) fn take(&self) -> Option<Refused> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn note(&self, error: &rustls::Error) {
        let refused = match error {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                match other.0.downcast_ref::<FingerprintMismatch>() {
                    Some(m) => Refused::Fingerprint {
                        expected: m.expected,
                        got: m.got,
                    },
                    None => Refused::Other(other.0.to_string()),
                }
            }
            other => Refused::Other(other.to_string()),
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(refused);
    }
}

/// A server verifier that notes why it refused, for the dialler's error message.
#[derive(Debug)]
struct Noting {
    inner: Arc<dyn ServerCertVerifier>,
    note: RefusalNote,
}

impl ServerCertVerifier for Noting {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|e| self.note.note(e))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls client configuration for dialling a server we expect to be `expect`; a
/// refusal of the server's certificate is noted in `note`.
pub(crate) fn client_config(
    identity: &Identity,
    expect: &Expect,
    cluster_ca: Option<&CertificateDer<'static>>,
    alpn: &[u8],
    note: &RefusalNote,
) -> Result<rustls::ClientConfig, TransportError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match expect {
        Expect::Fingerprint(expected) => Arc::new(PinnedServerVerifier {
            expected: *expected,
            algorithms,
        }),
        Expect::ClusterMember(ca) => Arc::new(ClusterMemberServerVerifier {
            ca: *ca,
            algorithms,
        }),
        Expect::ClusterNode(_) => {
            let ca = cluster_ca.ok_or_else(|| {
                TransportError::Config(
                    "dialling a cluster node needs an endpoint with cluster trust (a CA)".into(),
                )
            })?;
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots(ca)?,
                provider.clone(),
            )
            .build()
            .map_err(config_error)?
        }
    };
    let verifier = Arc::new(Noting {
        inner: verifier,
        note: note.clone(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain().to_vec(), identity.private_key())
        .map_err(config_error)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// The TLS server name to send for an expectation: the node's name for cluster nodes,
/// a fixed placeholder otherwise (peers are identified by key, not name).
pub(crate) fn server_name(expect: &Expect) -> &str {
    match expect {
        Expect::ClusterNode(name) => name,
        Expect::Fingerprint(_) => "peer.bytetorrent",
        Expect::ClusterMember(_) => "tracker.bytetorrent",
    }
}
