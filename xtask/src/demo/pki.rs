//! The demo's certificates, generated with rcgen: a CA, the runtime's server
//! certificate (for `localhost` and `127.0.0.1`) and the backend's client
//! certificate, all written as PEM under `tls/` (keys readable by the owner only).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Writes `tls/ca.crt`, `tls/runtime.{crt,key}` and `tls/backend.{crt,key}` in `dir`.
pub fn generate(dir: &Path) -> Result<(), String> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).map_err(|e| format!("creating {}: {e}", tls.display()))?;

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail("CA"))?;
    ca.distinguished_name
        .push(DnType::CommonName, "Switchyard demo CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(fail("CA key"))?)
        .map_err(fail("CA"))?;
    write(&tls, "ca.crt", &ca.pem())?;

    let leaves: [(&str, Vec<String>, ExtendedKeyUsagePurpose); 2] = [
        (
            "runtime",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "backend",
            vec!["switchyard-backend".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ];
    for (name, names, usage) in leaves {
        let mut params = CertificateParams::new(names).map_err(fail(name))?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Switchyard demo {name}"));
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().map_err(fail(name))?;
        let cert = params.signed_by(&key, &ca).map_err(fail(name))?;
        write(&tls, &format!("{name}.crt"), &cert.pem())?;
        write_private(&tls, &format!("{name}.key"), &key.serialize_pem())?;
    }
    Ok(())
}

/// An error-mapping closure naming what was being generated.
fn fail(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("generating the {what}: {e}")
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
}

/// Writes a private key readable by its owner only.
fn write_private(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(name))
        .map_err(|e| format!("writing {name}: {e}"))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("writing {name}: {e}"))
}
