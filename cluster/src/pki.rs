//! The cluster's certificates: a private CA, one server certificate per runtime host
//! (for its namespace address and its name `rtI.cluster.test`), and the client
//! certificate the backends present (the runtimes require it: mutual TLS).

use std::path::{Path, PathBuf};

use switchyard_e2e::certs::Ca;

use crate::error::ClusterError;

/// The name in runtime host `index`'s certificate besides its address; a backend
/// that reaches the host through a relay on loopback verifies this name.
pub fn host_name(index: usize) -> String {
    format!("rt{index}.cluster.test")
}

/// Paths of the written certificates and keys.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (trust anchor of both sides).
    pub ca: PathBuf,
    /// The backends' client certificate and key.
    pub backend: (PathBuf, PathBuf),
    /// Each runtime host's certificate and key.
    pub hosts: Vec<(PathBuf, PathBuf)>,
}

impl Pki {
    /// Mints everything for hosts with `addresses` into `dir/tls/`.
    pub fn generate(dir: &Path, addresses: &[String]) -> Result<Self, ClusterError> {
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).map_err(ClusterError::io("creating the tls directory"))?;
        let ca = Ca::new("Switchyard cluster CA");
        let hosts = addresses
            .iter()
            .enumerate()
            .map(|(index, addr)| {
                let name = host_name(index);
                ca.server(&[name.as_str(), addr.as_str()])
                    .write(&tls, &format!("rt{index}"))
            })
            .collect();
        Ok(Self {
            ca: ca.write(&tls, "ca"),
            backend: ca.client("switchyard-backend").write(&tls, "backend"),
            hosts,
        })
    }
}
