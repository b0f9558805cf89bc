//! Hyper bindings of Switchyard's two HTTP surfaces (the Runtime API under `/v1` and,
//! later, the backend API under `/api`), their configuration, and the command line.

pub mod auth;
pub mod backend_api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod http;
pub mod metrics;
pub mod openapi;
#[cfg(test)]
mod properties;
pub mod reload;
pub mod runtime_api;
