//! `POST /api/admin/reload`: the configuration read again and applied (see
//! [`crate::reload`]). `200` with what changed; an invalid configuration is
//! `400 invalid_config` with a message naming the key and the file, and changes
//! nothing.

use http::StatusCode;
use switchyard_protocol::ErrorCode;

use crate::http::response::json;
use crate::http::{ApiError, Response};
use crate::reload::{ReloadError, Reloader};

/// Runs the reload and answers it.
pub(super) async fn answer(reloader: Option<&Reloader>) -> Result<Response, ApiError> {
    let Some(reloader) = reloader else {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            "this backend has no configuration to reload",
        ));
    };
    match reloader.reload().await {
        Ok(report) => Ok(json(StatusCode::OK, &report)),
        Err(ReloadError::Config(error)) => {
            tracing::warn!(%error, "configuration not reloaded; the running one stays in force");
            Err(ApiError::new(ErrorCode::InvalidConfig, error.to_string()))
        }
        Err(error @ ReloadError::NoSource) => {
            Err(ApiError::new(ErrorCode::Unsupported, error.to_string()))
        }
    }
}
