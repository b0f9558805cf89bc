//! Backend-owned clients for remote Switchyard runtimes, and [`SecretToken`], the type
//! every bearer token travels in.

pub mod secret;

pub use secret::SecretToken;
