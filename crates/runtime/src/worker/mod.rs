//! Workers: the drivers that run them and the core that records what they do.

pub(crate) mod core;
pub mod driver;
pub(crate) mod echo;
mod idle;
pub(crate) mod process;
pub(crate) mod pty;
pub(crate) mod screen;
mod session;
mod teardown;
pub(crate) mod utf8;

pub(crate) use core::Worker;
