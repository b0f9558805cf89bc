//! The cluster harness behind `cargo xtask cluster`, `cargo xtask cluster-test` and
//! `cargo xtask scaling`.
//!
//! A [`Cluster`] is real processes and real sockets on one machine:
//!
//! - **runtime hosts**: one network namespace each (`ip netns`), joined to this
//!   machine by a veth pair on a private /30 inside `10.77.0.0/16` ([`net`]); a
//!   `switchyard runtime` runs inside each (`ip netns exec`), serving HTTPS with
//!   client certificates on the namespace's address, with a token ([`runtime_host`]);
//! - **replicas**: two or three `switchyard serve` processes on loopback with the
//!   same configuration, no embedded runtime, every runtime host as a remote
//!   ([`replica`]);
//! - **HAProxy** (Debian's package) in front of the replicas on loopback, checking
//!   `GET /readyz`, carrying WebSockets, retrying what is safe to retry
//!   ([`haproxy`]);
//! - optionally a **fault-injecting relay** between the backends and a runtime host
//!   (delay, bandwidth cap, cut connections; [`relay`]).
//!
//! Traffic goes only to loopback and to the namespaces the cluster created.
//! Everything it creates is removed when it is dropped (processes first, then
//! namespaces and links); a cluster whose owner died without cleaning up (SIGKILL) is
//! removed by the next one that finds its claim ([`net::Claim`]).
//!
//! [`viewer`] and [`load`] drive a cluster from the outside (event viewers that
//! resume with their cursor and check every event arrives exactly once; bounded REST
//! load), [`figures`] records what the scenarios measured, and [`scaling`] measures
//! the aggregate worker list against 1 to 1,000 runtimes.

pub mod cluster;
pub mod error;
pub mod figures;
pub mod haproxy;
pub mod load;
pub mod net;
pub mod pki;
pub mod process;
pub mod relay;
pub mod replica;
pub mod runtime_host;
pub mod scaling;
pub mod sys;
pub mod viewer;

/// Percentiles and medians, shared with the benchmark harness (`bench/`) rather
/// than copied: the same file, compiled into both.
#[path = "../../bench/src/stats.rs"]
pub mod stats;

/// SVG line and bar charts, shared with the benchmark harness (`bench/`).
#[path = "../../bench/src/svg.rs"]
pub mod svg;

pub use cluster::{Cluster, ClusterOptions};
pub use error::ClusterError;

/// The upper bound of any single wait of the harness (a process's first line, a
/// server state, a reconnection).
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
