//! TLS towards remote runtimes (and, for the `switchyard` client, towards a
//! backend): [`ClientTls`] (trust anchors, an optional client certificate and the
//! name to verify), the connector and handshake built on it ([`HttpsConnector`],
//! [`handshake`]), the recognition of TLS failures ([`tls_failure_in`]), the crypto
//! provider every TLS configuration in the process uses ([`crypto_provider`]), and
//! the system's trust anchors ([`system_roots`]).
//!
//! Certificates are always verified: nothing here can turn verification off.
//! Reading PEM files is the configuration layer's job; this module takes DER.

mod connect;
mod failure;
mod log;

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

pub use connect::{Conn, HttpsConnector, Stream, TlsConnectError, TlsTarget, handshake};
pub use failure::tls_failure_in;
pub(crate) use log::TlsLog;

/// The crypto provider of every TLS configuration in this process: *ring*, the only
/// one compiled in (see ARCHITECTURE.md for why). Passed explicitly to every config
/// builder, so nothing depends on a process-wide default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trust anchors (the OS certificate store, honouring `SSL_CERT_FILE`
/// and `SSL_CERT_DIR`), read once per process. Blocking file I/O: call it at
/// start-up or from a blocking task. Empty when the system has none.
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "could not read some of the system's trusted certificates");
            }
            found.certs
        })
        .clone()
}

/// The backend's client certificate for mTLS: a chain (leaf first) and its key.
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Why a [`ClientTls`] could not be built. Texts name no file (the configuration
/// layer adds the key and file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// No trust anchors at all.
    #[error("no trusted CA certificates: set ca_file, or install CA certificates on the system")]
    NoRoots,
    /// A trust anchor is not a usable CA certificate.
    #[error("CA certificate {index} (counting from 1) is not a usable certificate: {reason}")]
    BadRoot {
        /// Which certificate, from 1.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The client certificate does not belong to the client key.
    #[error("the client certificate does not match the client key")]
    KeyMismatch,
    /// The client key or certificate is not usable.
    #[error("the client certificate or key is not usable: {0}")]
    BadIdentity(String),
    /// The name to verify is not a DNS name or IP address.
    #[error("not a valid DNS name or IP address")]
    BadServerName,
}

/// How the backend speaks TLS to one remote runtime: what it trusts, the client
/// certificate it presents (if any), and the name it verifies (when not the base
/// URL's host). Cheap to clone. `Debug` shows no key material.
///
/// Two are equal when they were built from the same material (trust anchors, client
/// certificate and key, name): a reload compares them to tell whether a remote's
/// TLS changed, rotated files included.
#[derive(Clone)]
pub struct ClientTls {
    /// The rustls configuration, shared by every connection to the runtime (its
    /// session cache lets reconnections resume).
    config: Arc<ClientConfig>,
    /// The name to verify instead of the base URL's host.
    server_name: Option<ServerName<'static>>,
    /// SHA-256 over the material it was built from.
    material: [u8; 32],
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.material == other.material
    }
}

impl Eq for ClientTls {}

/// SHA-256 over what a [`ClientTls`] is built from, each part length-prefixed.
fn material_digest(
    roots: Option<&[CertificateDer<'static>]>,
    identity: Option<&ClientIdentity>,
    server_name: Option<&str>,
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    let mut part = |bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };
    match roots {
        None => part(b"system roots"),
        Some(roots) => {
            part(b"roots");
            roots.iter().for_each(|root| part(root));
        }
    }
    if let Some(identity) = identity {
        part(b"identity");
        identity.chain.iter().for_each(|cert| part(cert));
        part(identity.key.secret_der());
    }
    if let Some(name) = server_name {
        part(b"server name");
        part(name.trim().as_bytes());
    }
    digest.finalize().into()
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field(
                "client_certificate",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .field("server_name_override", &self.server_name.is_some())
            .finish()
    }
}

impl ClientTls {
    /// Trusts `roots` (CA certificates), presents `identity` when given, and
    /// verifies `server_name` when given (else the base URL's host, a DNS name or
    /// an IP address).
    pub fn new(
        roots: &[CertificateDer<'static>],
        identity: Option<ClientIdentity>,
        server_name: Option<&str>,
    ) -> Result<Self, TlsSetupError> {
        let mut store = RootCertStore::empty();
        for (i, root) in roots.iter().enumerate() {
            store
                .add(root.clone())
                .map_err(|e| TlsSetupError::BadRoot {
                    index: i + 1,
                    reason: e.to_string(),
                })?;
        }
        let material = material_digest(Some(roots), identity.as_ref(), server_name);
        Self::build(store, identity, server_name, material)
    }

    /// Like [`ClientTls::new`], trusting the system's CA store ([`system_roots`]);
    /// certificates in it that rustls cannot use are skipped. Blocking file I/O the
    /// first time.
    pub fn with_system_roots(
        identity: Option<ClientIdentity>,
        server_name: Option<&str>,
    ) -> Result<Self, TlsSetupError> {
        let mut store = RootCertStore::empty();
        let (added, skipped) = store.add_parsable_certificates(system_roots());
        if skipped > 0 {
            tracing::debug!(
                added,
                skipped,
                "some of the system's CA certificates are not usable"
            );
        }
        // The system's roots are read once per process: they cannot change.
        let material = material_digest(None, identity.as_ref(), server_name);
        Self::build(store, identity, server_name, material)
    }

    fn build(
        store: RootCertStore,
        identity: Option<ClientIdentity>,
        server_name: Option<&str>,
        material: [u8; 32],
    ) -> Result<Self, TlsSetupError> {
        if store.is_empty() {
            return Err(TlsSetupError::NoRoots);
        }
        let provider = crypto_provider();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| TlsSetupError::BadRoot {
                    index: 1,
                    reason: e.to_string(),
                })?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::BadIdentity(e.to_string()))?
            .with_webpki_verifier(verifier);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(identity) => builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsSetupError::KeyMismatch,
                    other => TlsSetupError::BadIdentity(other.to_string()),
                })?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = server_name
            .map(|name| {
                ServerName::try_from(name.trim().to_owned())
                    .map_err(|_| TlsSetupError::BadServerName)
            })
            .transpose()?;
        Ok(Self {
            config: Arc::new(config),
            server_name,
            material,
        })
    }

    /// The `tls_server_name` set to verify instead of the base URL's host, if any
    /// (as secret as the host: keep it from clients).
    pub fn server_name_override(&self) -> Option<String> {
        self.server_name
            .as_ref()
            .map(|name| name.to_str().into_owned())
    }

    /// What connections to a base URL whose host is `host` need: the configuration
    /// and the name to verify (`server_name` when set, else `host`).
    pub fn target(&self, host: &str) -> Result<TlsTarget, TlsSetupError> {
        let server_name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                ServerName::try_from(host.to_owned()).map_err(|_| TlsSetupError::BadServerName)?
            }
        };
        Ok(TlsTarget {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            server_name,
        })
    }
}
