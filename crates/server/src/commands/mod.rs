//! What each subcommand does once its settings are loaded.

#[cfg(feature = "cli")]
pub mod client;
pub mod reaper;
pub mod runtime;
pub mod serve;
pub mod signals;
#[cfg(feature = "cli")]
pub mod token;
