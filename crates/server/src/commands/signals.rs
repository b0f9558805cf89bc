//! Waiting for SIGTERM or SIGINT; reloading the backend's or the runtime's
//! configuration on SIGHUP.

use std::future::Future;
use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;

use crate::reload::Reloader;
use crate::reload::runtime::RuntimeReloader;

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
            // The shell's convention: 128 + the signal's number.
            let signal = tokio::select! {
                _ = term.recv() => nix::sys::signal::Signal::SIGTERM,
                _ = int.recv() => nix::sys::signal::Signal::SIGINT,
            };
            say_then_exit(
                "switchyard: second signal; exiting without a clean shutdown",
                128 + signal as i32,
            );
        });
    }
}

/// Writes `message` to standard error and exits with `status`, waiting at most
/// [`LAST_WORDS_WAIT`] for the write: a standard error nobody reads (a full pipe)
/// must not keep a process from exiting on the signal that says to exit now.
fn say_then_exit(message: &'static str, status: i32) -> ! {
    let (said, written) = std::sync::mpsc::sync_channel(1);
    let writer = std::thread::Builder::new()
        .name("switchyard-last-words".to_owned())
        .spawn(move || {
            eprintln!("{message}");
            let _ = said.send(());
        });
    if writer.is_ok() {
        let _ = written.recv_timeout(LAST_WORDS_WAIT);
    }
    std::process::exit(status);
}

/// How long [`say_then_exit`] waits for its message to be written.
const LAST_WORDS_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Reloads the backend's configuration on every SIGHUP, until the task is aborted: a
/// refused configuration is logged (naming the key and the file) and changes
/// nothing. The handler is installed before this returns, so a SIGHUP sent right
/// after `listening on` is never lost to the default action (which ends the
/// process). `None` when it cannot be installed (logged).
pub fn on_hangup(reloader: Arc<Reloader>) -> Option<JoinHandle<()>> {
    reload_on_hangup(
        "could not install the SIGHUP handler; reload with POST /api/admin/reload",
        move || {
            let reloader = reloader.clone();
            async move { reloader.reload().await.map(drop) }
        },
    )
}

/// Reloads a standalone runtime's configuration on every SIGHUP, until the task is
/// aborted: a refused configuration (a file, token file or TLS file that fails a
/// check) is logged, naming the key and the file, and changes nothing. As for the
/// backend, the handler is installed before this returns. `None` when it cannot
/// be installed (logged).
pub fn on_runtime_hangup(reloader: Arc<RuntimeReloader>) -> Option<JoinHandle<()>> {
    reload_on_hangup(
        "could not install the SIGHUP handler; the configuration will not be reloaded",
        move || {
            let reloader = reloader.clone();
            async move { reloader.reload().await.map(drop) }
        },
    )
}

/// Installs the SIGHUP handler now and runs `reload` on every SIGHUP from a task;
/// a failed reload is logged. `None` (with `cannot_install` logged) when the
/// handler cannot be installed.
fn reload_on_hangup<F, R, E>(cannot_install: &'static str, reload: F) -> Option<JoinHandle<()>>
where
    F: Fn() -> R + Send + 'static,
    R: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("{cannot_install}");
        return None;
    };
    Some(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received; reloading the configuration");
            if let Err(error) = reload().await {
                tracing::error!(%error, "configuration not reloaded; the running one stays in force");
            }
        }
    }))
}
