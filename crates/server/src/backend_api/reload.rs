//! `POST /api/admin/reload`: the configuration read again and applied (see
//! [`crate::reload`]). `200` with what changed; an invalid configuration is
//! `400 invalid_config` with a message naming the key and the file, and changes
//! nothing.

use std::sync::Arc;

use http::StatusCode;
use switchyard_protocol::ErrorCode;

use crate::http::response::json;
use crate::http::{ApiError, Response};
use crate::reload::{ReloadError, Reloader};

/// Runs the reload and answers it. The reload runs on a task of its own: a client
/// that goes away mid-way (its connection cut) must not leave it half applied.
pub(super) async fn answer(reloader: Option<&Arc<Reloader>>) -> Result<Response, ApiError> {
    let Some(reloader) = reloader else {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            "this backend has no configuration to reload",
        ));
    };
    let reloader = Arc::clone(reloader);
    let outcome = match tokio::spawn(async move { reloader.reload().await }).await {
        Ok(outcome) => outcome,
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "the backend is shutting down and the reload did not run to its end; check the configuration in force after the restart",
            ));
        }
    };
    match outcome {
        Ok(report) => Ok(json(StatusCode::OK, &report)),
        Err(ReloadError::Config(error)) => {
            tracing::warn!(%error, "configuration not reloaded; the running one stays in force");
            Err(ApiError::new(
                ErrorCode::InvalidConfig,
                error.client_message(),
            ))
        }
        Err(error @ ReloadError::NoSource) => {
            Err(ApiError::new(ErrorCode::Unsupported, error.to_string()))
        }
    }
}
