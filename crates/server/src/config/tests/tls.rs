//! TLS in the configuration: `[tls]` and `--tls-*` for both listeners, and the TLS
//! keys of `[[remote]]`. Every bad file or combination is a `ConfigError` naming the
//! key and the file (exit 2) without repeating any key material; good ones load.

use std::path::PathBuf;

use switchyard_e2e::certs::Ca;

use super::support::{Dir, SECRET, assert_names, env_of, no_env, runtime_args, serve_args};
use crate::config::{
    ConfigError, Origin, RuntimeArgs, ServeArgs, load_backend_settings, load_runtime_settings,
};

/// Certificates and broken files in a temporary directory, under `tls/`.
struct Files {
    dir: Dir,
    /// A line of the server key's base64: must never appear in an error.
    key_material: String,
}

impl Files {
    fn new() -> Self {
        let dir = Dir::new();
        let ca = Ca::new("Runtimes CA");
        let backends = Ca::new("Backends CA");
        let server = ca.server(&["runtime.test", "127.0.0.1"]);
        let other = ca.server(&["runtime.test"]);
        let client = backends.client("backend-1");
        dir.write("tls/ca.crt", &ca.pem());
        dir.write("tls/backends.crt", &backends.pem());
        dir.write("tls/runtime.crt", &server.cert_pem);
        dir.write("tls/runtime.key", &server.key_pem);
        dir.write("tls/other.key", &other.key_pem);
        dir.write("tls/backend.crt", &client.cert_pem);
        dir.write("tls/backend.key", &client.key_pem);
        dir.write("tls/garbage.pem", "this is not PEM at all\n");
        dir.write(
            "tls/truncated.crt",
            &server.cert_pem[..server.cert_pem.len() / 2],
        );
        dir.write(
            "tls/encrypted.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        dir.write("secrets/t.token", SECRET);
        let key_material = server
            .key_pem
            .lines()
            .find(|l| l.len() > 40 && !l.starts_with("-----"))
            .expect("a base64 line")
            .to_owned();
        Self { dir, key_material }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path(rel)
    }

    fn runtime(&self, text: &str) -> Result<crate::config::RuntimeSettings, ConfigError> {
        let path = self.dir.write("runtime.toml", text);
        load_runtime_settings(&runtime_args(&path), &no_env)
    }

    fn backend(&self, text: &str) -> Result<crate::config::BackendSettings, ConfigError> {
        let path = self.dir.write("backend.toml", text);
        load_backend_settings(&serve_args(&path), &env_of(&[("T", SECRET)]))
    }

    /// The error names `key` and the config file, and never the key material.
    fn assert_error(&self, err: &ConfigError, config: &str, key: &str) {
        assert_names(err, &self.path(config), key);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(
                !text.contains(&self.key_material),
                "key material in: {text}"
            );
        }
    }
}

/// A `[tls]` table from `(key, file under tls/)` pairs.
fn tls_table(keys: &[(&str, &str)]) -> String {
    let mut text = String::from("[tls]\n");
    for (key, file) in keys {
        text.push_str(&format!("{key} = \"tls/{file}\"\n"));
    }
    text
}

/// One bad `[tls]` table: the keys, the key the error must name, the file it must
/// name (under tls/), and a phrase the message must contain.
struct ListenerCase {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
    key: &'static str,
    file: Option<&'static str>,
    says: &'static str,
}

const LISTENER_CASES: &[ListenerCase] = &[
    ListenerCase {
        name: "missing certificate file",
        keys: &[("cert_file", "nope.crt"), ("key_file", "runtime.key")],
        key: "tls.cert_file",
        file: Some("nope.crt"),
        says: "cannot read",
    },
    ListenerCase {
        name: "missing key file",
        keys: &[("cert_file", "runtime.crt"), ("key_file", "nope.key")],
        key: "tls.key_file",
        file: Some("nope.key"),
        says: "cannot read",
    },
    ListenerCase {
        name: "certificate file is not PEM",
        keys: &[("cert_file", "garbage.pem"), ("key_file", "runtime.key")],
        key: "tls.cert_file",
        file: Some("garbage.pem"),
        says: "holds no CERTIFICATE block",
    },
    ListenerCase {
        name: "certificate file holds a key",
        keys: &[("cert_file", "runtime.key"), ("key_file", "runtime.key")],
        key: "tls.cert_file",
        file: Some("runtime.key"),
        says: "CERTIFICATE",
    },
    ListenerCase {
        name: "truncated certificate",
        keys: &[("cert_file", "truncated.crt"), ("key_file", "runtime.key")],
        key: "tls.cert_file",
        file: Some("truncated.crt"),
        says: "no END line",
    },
    ListenerCase {
        name: "key file holds a certificate",
        keys: &[("cert_file", "runtime.crt"), ("key_file", "runtime.crt")],
        key: "tls.key_file",
        file: Some("runtime.crt"),
        says: "PRIVATE KEY",
    },
    ListenerCase {
        name: "encrypted key",
        keys: &[("cert_file", "runtime.crt"), ("key_file", "encrypted.key")],
        key: "tls.key_file",
        file: Some("encrypted.key"),
        says: "encrypted",
    },
    ListenerCase {
        name: "certificate and key do not match",
        keys: &[("cert_file", "runtime.crt"), ("key_file", "other.key")],
        key: "tls.cert_file",
        file: Some("other.key"),
        says: "does not match",
    },
    ListenerCase {
        name: "client CA is not PEM",
        keys: &[
            ("cert_file", "runtime.crt"),
            ("key_file", "runtime.key"),
            ("client_ca_file", "garbage.pem"),
        ],
        key: "tls.client_ca_file",
        file: Some("garbage.pem"),
        says: "CERTIFICATE",
    },
    ListenerCase {
        name: "client CA file missing",
        keys: &[
            ("cert_file", "runtime.crt"),
            ("key_file", "runtime.key"),
            ("client_ca_file", "nope.crt"),
        ],
        key: "tls.client_ca_file",
        file: Some("nope.crt"),
        says: "cannot read",
    },
    ListenerCase {
        name: "certificate without key",
        keys: &[("cert_file", "runtime.crt")],
        key: "tls.key_file",
        file: None,
        says: "missing key",
    },
    ListenerCase {
        name: "key without certificate",
        keys: &[("key_file", "runtime.key")],
        key: "tls.cert_file",
        file: None,
        says: "missing key",
    },
    ListenerCase {
        name: "client CA alone",
        keys: &[("client_ca_file", "backends.crt")],
        key: "tls.cert_file",
        file: None,
        says: "missing key",
    },
    ListenerCase {
        name: "empty table",
        keys: &[],
        key: "tls.cert_file",
        file: None,
        says: "missing key",
    },
];

fn check_listener(files: &Files, case: &ListenerCase, err: ConfigError, config: &str) {
    let message = err.to_string();
    files.assert_error(&err, config, case.key);
    if let Some(file) = case.file {
        let named = files.path(&format!("tls/{file}")).display().to_string();
        assert!(
            message.contains(&named),
            "{}: no {named} in: {message}",
            case.name
        );
    }
    assert!(
        message.contains(case.says),
        "{}: expected {:?} in: {message}",
        case.name,
        case.says
    );
}

#[test]
fn bad_tls_tables_name_the_key_and_the_file_for_both_processes() {
    let files = Files::new();
    for case in LISTENER_CASES {
        let err = files.runtime(&tls_table(case.keys)).expect_err(case.name);
        check_listener(&files, case, err, "runtime.toml");
        let err = files
            .backend(&format!("[embedded]\n{}", tls_table(case.keys)))
            .expect_err(case.name);
        check_listener(&files, case, err, "backend.toml");
    }
}

#[test]
fn unknown_key_in_tls_table() {
    let files = Files::new();
    let err = files
        .runtime("[tls]\ncert = \"tls/runtime.crt\"\n")
        .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
    files.assert_error(&err, "runtime.toml", "tls.cert");
}

#[test]
fn a_good_tls_table_loads_for_both_processes() {
    let files = Files::new();
    let table = tls_table(&[
        ("cert_file", "runtime.crt"),
        ("key_file", "runtime.key"),
        ("client_ca_file", "backends.crt"),
    ]);
    let s = files.runtime(&table).unwrap();
    let tls = s.tls.expect("TLS settings");
    assert_eq!(tls.files.cert.path, files.path("tls/runtime.crt"));
    assert_eq!(tls.files.cert.key, "tls.cert_file");
    assert_eq!(tls.files.key.path, files.path("tls/runtime.key"));
    assert_eq!(
        tls.files.client_ca.as_ref().map(|f| f.path.clone()),
        Some(files.path("tls/backends.crt"))
    );
    assert!(!format!("{tls:?}").contains(&files.key_material));
    let s = files.backend(&format!("[embedded]\n{table}")).unwrap();
    assert!(s.tls.is_some());
    // No table, no TLS.
    assert!(files.runtime("runtime_id = \"a\"\n").unwrap().tls.is_none());
}

fn flags(files: &Files, cert: Option<&str>, key: Option<&str>, ca: Option<&str>) -> RuntimeArgs {
    let path = |f: Option<&str>| f.map(|f| files.path(&format!("tls/{f}")));
    RuntimeArgs {
        tls_cert: path(cert),
        tls_key: path(key),
        tls_client_ca: path(ca),
        ..RuntimeArgs::default()
    }
}

#[test]
fn flags_alone_and_flags_over_the_file() {
    let files = Files::new();
    let s = load_runtime_settings(
        &flags(&files, Some("runtime.crt"), Some("runtime.key"), None),
        &no_env,
    )
    .unwrap();
    let tls = s.tls.unwrap();
    assert_eq!(tls.files.cert.origin, Origin::CommandLine);
    assert_eq!(tls.files.cert.key, "--tls-cert");
    assert!(tls.files.client_ca.is_none());

    // --tls-key replaces a mismatched key_file; the file's cert_file stays.
    let path = files.dir.write(
        "runtime.toml",
        &tls_table(&[("cert_file", "runtime.crt"), ("key_file", "other.key")]),
    );
    let args = RuntimeArgs {
        config: Some(path.clone()),
        ..flags(&files, None, Some("runtime.key"), None)
    };
    let tls = load_runtime_settings(&args, &no_env).unwrap().tls.unwrap();
    assert_eq!(tls.files.cert.key, "tls.cert_file");
    assert_eq!(tls.files.key.key, "--tls-key");

    // The backend takes the same flags.
    let args = ServeArgs {
        tls_cert: Some(files.path("tls/runtime.crt")),
        tls_key: Some(files.path("tls/runtime.key")),
        ..ServeArgs::default()
    };
    assert!(load_backend_settings(&args, &no_env).unwrap().tls.is_some());
}

#[test]
fn bad_flags_name_the_flag() {
    let files = Files::new();
    let cases: [(RuntimeArgs, &str); 4] = [
        (flags(&files, Some("runtime.crt"), None, None), "--tls-key"),
        (flags(&files, None, Some("runtime.key"), None), "--tls-cert"),
        (
            flags(&files, None, None, Some("backends.crt")),
            "--tls-cert",
        ),
        (
            flags(&files, Some("runtime.crt"), Some("other.key"), None),
            "--tls-cert",
        ),
    ];
    for (args, key) in cases {
        let err = load_runtime_settings(&args, &no_env).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        assert_eq!(err.origin(), Some(&Origin::CommandLine), "{err}");
        assert!(err.to_string().contains(key), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
    let err = load_runtime_settings(
        &flags(&files, Some("runtime.crt"), Some("other.key"), None),
        &no_env,
    )
    .unwrap_err();
    let message = err.to_string();
    for file in ["tls/runtime.crt", "tls/other.key"] {
        let named = files.path(file).display().to_string();
        assert!(message.contains(&named), "no {named} in {message}");
    }
}

/// A `[[remote]]` with `base_url` and `extra` lines.
fn remote(base_url: &str, extra: &str) -> String {
    format!("[[remote]]\nruntime_id = \"a\"\nbase_url = \"{base_url}\"\ntoken_env = \"T\"\n{extra}")
}

#[test]
fn bad_remote_tls_keys_name_the_key() {
    let files = Files::new();
    let https = "https://runtime.test:7701";
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "plain http off loopback",
            remote("http://build-1.internal:7701", ""),
            "remote[0].base_url",
            "insecure_http",
        ),
        (
            "ca_file on http",
            remote("http://127.0.0.1:7701", "ca_file = \"tls/ca.crt\"\n"),
            "remote[0].ca_file",
            "https://",
        ),
        (
            "tls_server_name on http",
            remote(
                "http://127.0.0.1:7701",
                "tls_server_name = \"runtime.test\"\n",
            ),
            "remote[0].tls_server_name",
            "https://",
        ),
        (
            "insecure_http on https",
            remote(https, "ca_file = \"tls/ca.crt\"\ninsecure_http = true\n"),
            "remote[0].insecure_http",
            "http://",
        ),
        (
            "client certificate without its key",
            remote(
                https,
                "ca_file = \"tls/ca.crt\"\nclient_cert_file = \"tls/backend.crt\"\n",
            ),
            "remote[0].client_key_file",
            "client_cert_file needs",
        ),
        (
            "client key without its certificate",
            remote(
                https,
                "ca_file = \"tls/ca.crt\"\nclient_key_file = \"tls/backend.key\"\n",
            ),
            "remote[0].client_cert_file",
            "needs its certificate",
        ),
        (
            "missing ca_file",
            remote(https, "ca_file = \"tls/nope.crt\"\n"),
            "remote[0].ca_file",
            "cannot read",
        ),
        (
            "ca_file is not PEM",
            remote(https, "ca_file = \"tls/garbage.pem\"\n"),
            "remote[0].ca_file",
            "CERTIFICATE",
        ),
        (
            "client certificate and key do not match",
            remote(
                https,
                "ca_file = \"tls/ca.crt\"\nclient_cert_file = \"tls/backend.crt\"\nclient_key_file = \"tls/runtime.key\"\n",
            ),
            "remote[0].client_cert_file",
            "does not match",
        ),
        (
            "client key is not a key",
            remote(
                https,
                "ca_file = \"tls/ca.crt\"\nclient_cert_file = \"tls/backend.crt\"\nclient_key_file = \"tls/garbage.pem\"\n",
            ),
            "remote[0].client_key_file",
            "PRIVATE KEY",
        ),
        (
            "tls_server_name is not a name",
            remote(
                https,
                "ca_file = \"tls/ca.crt\"\ntls_server_name = \"not a name\"\n",
            ),
            "remote[0].tls_server_name",
            "DNS name",
        ),
        (
            "unknown TLS key",
            remote(https, "ca_fle = \"tls/ca.crt\"\n"),
            "remote[0].ca_fle",
            "unknown key",
        ),
    ];
    for (name, text, key, says) in cases {
        let err = files.backend(text).expect_err(name);
        files.assert_error(&err, "backend.toml", key);
        let message = err.to_string();
        assert!(
            message.contains(says),
            "{name}: expected {says:?} in: {message}"
        );
        assert!(
            !message.contains("build-1.internal") && !message.contains("runtime.test:7701"),
            "{name}: URL echoed: {message}"
        );
    }
}

#[test]
fn good_remote_tls_keys_load() {
    let files = Files::new();
    let s = files
        .backend(&remote(
            "https://127.0.0.1:7701",
            "ca_file = \"tls/ca.crt\"\nclient_cert_file = \"tls/backend.crt\"\nclient_key_file = \"tls/backend.key\"\ntls_server_name = \"runtime.test\"\n",
        ))
        .unwrap();
    let remote_settings = &s.remotes[0];
    assert_eq!(remote_settings.base_url, "https://127.0.0.1:7701");
    assert!(remote_settings.tls.is_some());
    assert!(!remote_settings.insecure_http);
    let debug = format!("{s:?}");
    assert!(
        !debug.contains(SECRET) && !debug.contains(&files.key_material),
        "{debug}"
    );

    // Plain HTTP: to loopback as it is; elsewhere only when told, and then flagged.
    let s = files.backend(&remote("http://localhost:7701", "")).unwrap();
    assert!(!s.remotes[0].insecure_http && s.remotes[0].tls.is_none());
    let s = files
        .backend(&remote("http://10.1.2.3:7701", "insecure_http = true\n"))
        .unwrap();
    assert!(s.remotes[0].insecure_http);
    // insecure_http = false is the same as leaving it out.
    let err = files
        .backend(&remote("http://10.1.2.3:7701", "insecure_http = false\n"))
        .unwrap_err();
    assert!(matches!(err, ConfigError::InsecureRemote { .. }), "{err}");
}

#[test]
fn paths_resolve_against_the_config_file() {
    let files = Files::new();
    let nested = files.dir.write(
        "conf/runtime.toml",
        "[tls]\ncert_file = \"../tls/runtime.crt\"\nkey_file = \"../tls/runtime.key\"\n",
    );
    let s = load_runtime_settings(&runtime_args(&nested), &no_env).unwrap();
    let tls = s.tls.unwrap();
    assert_eq!(tls.files.cert.path, files.path("conf/../tls/runtime.crt"));
    assert_eq!(tls.files.key.path, files.path("conf/../tls/runtime.key"));
}
