//! Reloading a listener's TLS files on SIGHUP: certificate, key and client CA are
//! read again and checked as at start-up; new connections get the new ones, open
//! connections keep theirs. A file that fails the checks is logged and the old
//! configuration stays in force.

use tokio::signal::unix::{SignalKind, signal};

use crate::config::ServerTlsFiles;
use crate::http::ServerTls;

/// Reloads `files` into `tls` on every SIGHUP, until the task is aborted.
pub async fn on_sighup(files: ServerTlsFiles, tls: ServerTls) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("could not install the SIGHUP handler; TLS files will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        reload(&files, &tls).await;
    }
}

/// Reads `files` again (off the async threads) and, when they pass the checks,
/// serves new connections with them.
pub async fn reload(files: &ServerTlsFiles, tls: &ServerTls) {
    let loading = files.clone();
    match tokio::task::spawn_blocking(move || loading.load()).await {
        Ok(Ok(settings)) => {
            tls.replace(settings.config);
            tracing::info!(
                cert_file = %files.cert.path.display(),
                "TLS files reloaded; new connections use them"
            );
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "TLS files not reloaded; the previous ones stay in force");
        }
        Err(error) => {
            tracing::error!(%error, "TLS reload task failed; the previous files stay in force");
        }
    }
}
