//! What each subcommand does once its settings are loaded.

pub mod client;
pub mod reaper;
pub mod runtime;
pub mod serve;
pub mod signals;
pub mod token;
