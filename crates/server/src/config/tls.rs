//! TLS in the configuration: the `[tls]` table (and `--tls-*` flags) of both
//! processes' listeners, and the TLS keys of a backend's `[[remote]]`.
//!
//! PEM files are read through rustls-pki-types' `PemObject`; every problem (a file
//! that is missing, unreadable, not PEM, holds no certificate or key, or a
//! certificate that does not match its key) is a [`ConfigError`] naming the key and
//! the file. Texts never repeat a file's contents.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use switchyard_transport::tls::crypto_provider;
use switchyard_transport::{ClientIdentity, ClientTls, TlsSetupError};

use super::cert_validity::warn_if_unusable;
use super::error::{ConfigError, Origin};
use super::file::RemoteFile;
use super::parse::FileContext;

/// A file named by a configuration key: where it was named, by which key, and the
/// resolved path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    /// The file or command line that named it.
    pub origin: Origin,
    /// The dotted key or flag that named it (`tls.cert_file`, `--tls-cert`).
    pub key: String,
    /// The file, resolved.
    pub path: PathBuf,
}

/// The files of a listener's TLS: certificate chain, key, and the CA that client
/// certificates must be signed by (mTLS) when set. Kept so that the files can be
/// read again (the runtime reloads them on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// `tls.cert_file` / `--tls-cert`: the PEM certificate chain, leaf first.
    pub cert: NamedFile,
    /// `tls.key_file` / `--tls-key`: the PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: NamedFile,
    /// `tls.client_ca_file` / `--tls-client-ca`: require client certificates signed
    /// by this CA.
    pub client_ca: Option<NamedFile>,
}

/// A listener's TLS: its files and the rustls configuration read from them.
#[derive(Clone)]
pub struct ServerTlsSettings {
    /// Where the configuration came from.
    pub files: ServerTlsFiles,
    /// The configuration, checked at start-up (certificate matches key).
    pub config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsSettings")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTlsFiles {
    /// Reads the files and builds the rustls configuration: HTTP/1.1 only, client
    /// certificates required when `client_ca` is set. Blocking file I/O.
    pub fn load(&self) -> Result<ServerTlsSettings, ConfigError> {
        let chain = read_certificates(&self.cert)?;
        let key = read_private_key(&self.key)?;
        warn_if_unusable(&self.cert, &chain, "clients", SystemTime::now());
        let provider = crypto_provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                invalid(
                    &self.cert,
                    format!("no TLS protocol version available: {e}"),
                )
            })?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for (i, cert) in read_certificates(ca)?.into_iter().enumerate() {
                    roots.add(cert).map_err(|e| {
                        invalid(ca, format!("certificate {} is not a usable CA: {e}", i + 1))
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| invalid(ca, format!("not a usable CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => ConfigError::TlsKeyMismatch {
                origin: self.cert.origin.clone(),
                key: self.cert.key.clone(),
                other: self.key.key.clone(),
                files: Box::new([self.cert.path.clone(), self.key.path.clone()]),
            },
            other => invalid(&self.key, format!("the key cannot be used: {other}")),
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTlsSettings {
            files: self.clone(),
            config: Arc::new(config),
        })
    }
}

/// The raw `[tls]` keys and their overriding flags, merged: `(key, flag)` pairs of
/// where each file came from.
pub(crate) struct ListenerTlsInput<'a> {
    /// The `[tls]` table, if the file has one, and the file's context.
    pub table: Option<(&'a super::file::TlsFile, &'a FileContext)>,
    /// `--tls-cert`.
    pub cert_flag: Option<&'a Path>,
    /// `--tls-key`.
    pub key_flag: Option<&'a Path>,
    /// `--tls-client-ca`.
    pub client_ca_flag: Option<&'a Path>,
}

/// The listener's TLS from the `[tls]` table and the flags (flags win, key by key);
/// `None` when neither names a certificate or key. Reads and checks the files.
pub(crate) fn listener_tls(
    input: ListenerTlsInput<'_>,
) -> Result<Option<ServerTlsSettings>, ConfigError> {
    let pick = |flag: Option<&Path>,
                flag_name: &str,
                file_value: Option<&PathBuf>,
                file_key: &str| {
        match (flag, input.table, file_value) {
            (Some(path), _, _) => Some(NamedFile {
                origin: Origin::CommandLine,
                key: flag_name.to_owned(),
                path: super::parse::absolute(path),
            }),
            (None, Some((_, ctx)), Some(path)) => Some(NamedFile {
                origin: ctx.origin(),
                key: file_key.to_owned(),
                path: ctx.resolve(path),
            }),
            _ => None,
        }
    };
    let table = input.table.map(|(t, _)| t);
    let cert = pick(
        input.cert_flag,
        "--tls-cert",
        table.and_then(|t| t.cert_file.as_ref()),
        "tls.cert_file",
    );
    let key = pick(
        input.key_flag,
        "--tls-key",
        table.and_then(|t| t.key_file.as_ref()),
        "tls.key_file",
    );
    let client_ca = pick(
        input.client_ca_flag,
        "--tls-client-ca",
        table.and_then(|t| t.client_ca_file.as_ref()),
        "tls.client_ca_file",
    );
    // Where a missing key should be reported: the table if there is one, else the
    // command line.
    let missing = |key: &str, flag: &str, hint: &str| match input.table {
        Some((_, ctx)) => ConfigError::MissingKey {
            origin: ctx.origin(),
            key: key.to_owned(),
            hint: hint.to_owned(),
        },
        None => ConfigError::MissingKey {
            origin: Origin::CommandLine,
            key: flag.to_owned(),
            hint: hint.to_owned(),
        },
    };
    match (cert, key) {
        (None, None) => match (client_ca, input.table) {
            (None, None) => Ok(None),
            _ => Err(missing(
                "tls.cert_file",
                "--tls-cert",
                "TLS needs the server's certificate chain and key: add cert_file and key_file to [tls] (or --tls-cert and --tls-key)",
            )),
        },
        (Some(_), None) => Err(missing(
            "tls.key_file",
            "--tls-key",
            "the certificate needs its private key: add key_file to [tls] (or --tls-key)",
        )),
        (None, Some(_)) => Err(missing(
            "tls.cert_file",
            "--tls-cert",
            "the key needs its certificate chain: add cert_file to [tls] (or --tls-cert)",
        )),
        (Some(cert), Some(key)) => ServerTlsFiles {
            cert,
            key,
            client_ca,
        }
        .load()
        .map(Some),
    }
}

/// The TLS of one `[[remote]]`: for an `https` base URL, what it trusts (`ca_file`
/// or the system's roots), its client certificate and `tls_server_name`; for an
/// `http` one, nothing (and the TLS keys are refused), but a host that is not
/// loopback needs `insecure_http = true`.
pub(crate) fn remote_tls(
    ctx: &FileContext,
    table: &str,
    base_url: &str,
    raw: &RemoteFile,
) -> Result<Option<ClientTls>, ConfigError> {
    let fo = ctx.origin();
    let key = |name: &str| format!("{table}.{name}");
    let named = |name: &str, path: &Path| NamedFile {
        origin: fo.clone(),
        key: key(name),
        path: ctx.resolve(path),
    };
    let https = base_url.starts_with("https://");
    if !https {
        let tls_keys = [
            ("ca_file", raw.ca_file.is_some()),
            ("client_cert_file", raw.client_cert_file.is_some()),
            ("client_key_file", raw.client_key_file.is_some()),
            ("tls_server_name", raw.tls_server_name.is_some()),
        ];
        if let Some((name, _)) = tls_keys.iter().find(|(_, set)| *set) {
            return Err(ConfigError::InvalidValue {
                origin: fo,
                key: key(name),
                problem: "applies only to an https:// base_url; change base_url to https:// or remove this key".to_owned(),
            });
        }
        if !raw.insecure_http.unwrap_or(false) && !is_loopback_url(base_url) {
            return Err(ConfigError::InsecureRemote {
                origin: fo,
                key: key("base_url"),
                insecure: key("insecure_http"),
            });
        }
        return Ok(None);
    }
    if raw.insecure_http.is_some() {
        return Err(ConfigError::InvalidValue {
            origin: fo,
            key: key("insecure_http"),
            problem: "applies only to an http:// base_url; remove it".to_owned(),
        });
    }
    let roots = match &raw.ca_file {
        Some(path) => Some(read_certificates(&named("ca_file", path))?),
        None => None,
    };
    let identity = match (&raw.client_cert_file, &raw.client_key_file) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::MissingKey {
                origin: fo,
                key: key("client_key_file"),
                hint: "client_cert_file needs its private key: add client_key_file".to_owned(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::MissingKey {
                origin: fo,
                key: key("client_cert_file"),
                hint: "client_key_file needs its certificate: add client_cert_file".to_owned(),
            });
        }
        (Some(cert), Some(private)) => {
            let cert = named("client_cert_file", cert);
            let private = named("client_key_file", private);
            let chain = read_certificates(&cert)?;
            warn_if_unusable(&cert, &chain, "runtimes", SystemTime::now());
            Some((chain, read_private_key(&private)?, cert, private))
        }
    };
    let (identity, files) = match identity {
        Some((chain, key, cert, private)) => {
            (Some(ClientIdentity { chain, key }), Some((cert, private)))
        }
        None => (None, None),
    };
    let server_name = raw.tls_server_name.as_deref();
    let built = match &roots {
        Some(roots) => ClientTls::new(roots, identity, server_name),
        None => ClientTls::with_system_roots(identity, server_name),
    };
    built.map_err(|e| match (e, files) {
        (TlsSetupError::KeyMismatch, Some((cert, private))) => ConfigError::TlsKeyMismatch {
            origin: fo.clone(),
            key: cert.key,
            other: private.key,
            files: Box::new([cert.path, private.path]),
        },
        (TlsSetupError::BadIdentity(problem), Some((_, private))) => invalid(&private, problem),
        (TlsSetupError::BadServerName, _) => ConfigError::InvalidValue {
            origin: fo.clone(),
            key: key("tls_server_name"),
            problem: "must be a DNS name or an IP address".to_owned(),
        },
        (other @ (TlsSetupError::NoRoots | TlsSetupError::BadRoot { .. }), _) => match &raw.ca_file {
            Some(path) => invalid(&named("ca_file", path), other.to_string()),
            None => ConfigError::MissingKey {
                origin: fo.clone(),
                key: key("ca_file"),
                hint: "the system has no usable CA certificates; set ca_file to the CA that signed the runtime's certificate".to_owned(),
            },
        },
        // A client certificate problem without the files at hand, and kinds newer than
        // this code.
        (other, _) => {
            ConfigError::InvalidValue {
                origin: fo.clone(),
                key: table.to_owned(),
                problem: format!("TLS cannot be set up: {other}"),
            }
        }
    })
    .map(Some)
}

/// True when `base_url`'s host is a loopback address or `localhost`: plain HTTP
/// then never leaves the machine.
pub(crate) fn is_loopback_url(base_url: &str) -> bool {
    let Ok(uri) = base_url.parse::<http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

fn invalid(file: &NamedFile, problem: impl Into<String>) -> ConfigError {
    ConfigError::TlsFileInvalid {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.path.clone(),
        problem: problem.into(),
    }
}

fn read(file: &NamedFile) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(&file.path).map_err(|source| ConfigError::TlsFileUnreadable {
        origin: file.origin.clone(),
        key: file.key.clone(),
        path: file.path.clone(),
        source,
    })
}

/// What is wrong with a PEM file, without repeating any of it.
fn pem_problem(error: &pem::Error, what: &str) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => {
            "a PEM section has no END line (is the file truncated?)".to_owned()
        }
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_owned(),
        pem::Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        pem::Error::NoItemsFound => format!("it holds no {what} (expected PEM)"),
        _ => format!("it is not a PEM file holding {what}"),
    }
}

/// The certificates in a PEM file, in order; at least one.
pub(crate) fn read_certificates(
    file: &NamedFile,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(file)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(file, pem_problem(&e, "CERTIFICATE block")))?;
    if certs.is_empty() {
        return Err(invalid(
            file,
            pem_problem(&pem::Error::NoItemsFound, "CERTIFICATE block"),
        ));
    }
    Ok(certs)
}

/// The first private key in a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub(crate) fn read_private_key(file: &NamedFile) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let bytes = read(file)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let encrypted = bytes
            .windows(b"ENCRYPTED PRIVATE KEY".len())
            .any(|w| w == b"ENCRYPTED PRIVATE KEY");
        if encrypted {
            invalid(
                file,
                "the private key is encrypted; store it unencrypted, readable only by this service's user (openssl pkey -in KEY -out KEY.plain)",
            )
        } else {
            invalid(
                file,
                pem_problem(&e, "PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for url in [
            "http://127.0.0.1:1",
            "http://127.3.4.5:1",
            "http://localhost:1",
            "http://LOCALHOST:1/p",
            "http://[::1]:1",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "http://10.0.0.1:1",
            "http://build-1.internal:1",
            "http://localhost.evil.test:1",
            "http://[::2]:1",
            "http://0.0.0.0:1",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
