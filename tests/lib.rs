//! The end-to-end test harness: start the real `switchyard` binary on loopback, talk
//! HTTP and WebSocket to it, and signal it; drive its client subcommands on a real
//! terminal (tmux) and against a scripted fake backend. The crates' own in-process
//! tests use the HTTP helpers too.

pub mod certs;
pub mod client;
pub mod fake_backend;
pub mod ports;
pub mod proc;
pub mod prometheus;
pub mod raw_http;
pub mod tcp_proxy;
pub mod tmux;
pub mod ws;

/// How long any single wait in a test may take; generous, since CI machines are small.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
