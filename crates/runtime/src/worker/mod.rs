//! Workers: the drivers that run them and the core that records what they do.

pub(crate) mod core;
pub mod driver;
pub mod echo;
mod idle;
pub mod process;
pub mod pty;
pub(crate) mod screen;
mod session;
pub(crate) mod utf8;

pub(crate) use core::Worker;
