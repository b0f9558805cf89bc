//! The certificates of the TLS hop (scenario 5): a CA and a server certificate for
//! `localhost` and `127.0.0.1` from it, minted with the test harness's rcgen fixture
//! and written into the stack's scratch directory.

use std::path::Path;

use switchyard_e2e::certs::Ca;

use crate::Result;

/// The CA certificate, which the backend (`ca_file`) and nginx
/// (`proxy_ssl_trusted_certificate`) trust.
pub const CA_CERT: &str = "tls-ca.crt";
/// The HTTPS runtime's certificate.
pub const RUNTIME_CERT: &str = "tls-runtime.crt";
/// The HTTPS runtime's private key.
pub const RUNTIME_KEY: &str = "tls-runtime.key";

/// Writes [`CA_CERT`], [`RUNTIME_CERT`] and [`RUNTIME_KEY`] into `dir`.
pub fn generate(dir: &Path) -> Result<()> {
    let ca = Ca::new("Switchyard bench CA");
    std::fs::write(dir.join(CA_CERT), ca.pem())?;
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    std::fs::write(dir.join(RUNTIME_CERT), &leaf.cert_pem)?;
    std::fs::write(dir.join(RUNTIME_KEY), &leaf.key_pem)?;
    Ok(())
}
