//! Property tests of the server's decoders and validators: query strings, JSON
//! bodies, bearer headers, session cookies, `Host` and `Origin`, token hashes, and
//! both configuration files. No input panics; what is valid round-trips; what is not
//! is a typed refusal.

mod config;
mod http;
