//! Waiting for SIGTERM or SIGINT.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT handlers, installed before the process announces that it
/// listens, so that a signal sent right after the `listening on` line is never lost to
/// the default action (which would end the process without a clean shutdown).
pub struct Signals(Option<(Signal, Signal)>);

/// Installs the handlers. Call it inside the tokio runtime, before printing
/// `listening on`.
pub fn install() -> Signals {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Signals(Some((term, int))),
        _ => {
            tracing::error!("could not install signal handlers; stop the process with SIGKILL");
            Signals(None)
        }
    }
}

impl Signals {
    /// Resolves on the first SIGTERM or SIGINT. A second one exits the process at once.
    pub async fn terminated(self) {
        let Some((mut term, mut int)) = self.0 else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            eprintln!("switchyard: second signal; exiting without a clean shutdown");
            std::process::exit(130);
        });
    }
}
