//! Workers: the drivers that run them and the core that records what they do.

pub(crate) mod core;
pub mod driver;
pub mod echo;
pub mod process;
pub(crate) mod utf8;

pub(crate) use core::Worker;
