//! The built-in `echo` driver: every input comes back as stdout output, after an
//! optional delay. Cancel drops the output in flight and every queued input.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::{ExitInfo, OutputStream};

use super::driver::{Control, DriverInputs, DriverSink, Ending};

const NO_EXIT: ExitInfo = ExitInfo {
    code: None,
    signal: None,
};

/// Runs an echo worker until it is stopped.
pub(crate) async fn run_echo(
    delay: Duration,
    mut io: DriverInputs,
    sink: Arc<dyn DriverSink>,
) -> Ending {
    sink.started().await;
    loop {
        tokio::select! {
            biased;
            control = io.control.recv() => match control {
                Some(Control::Cancel) => cancel(&mut io, sink.as_ref()).await,
                Some(Control::Stop { .. }) | None => return Ending::Stopped(NO_EXIT),
            },
            input = io.inputs.recv() => {
                let Some(text) = input else { return Ending::Stopped(NO_EXIT) };
                if delay.is_zero() {
                    sink.output(OutputStream::Stdout, text).await;
                    continue;
                }
                tokio::select! {
                    biased;
                    control = io.control.recv() => match control {
                        Some(Control::Cancel) => cancel(&mut io, sink.as_ref()).await,
                        Some(Control::Stop { .. }) | None => return Ending::Stopped(NO_EXIT),
                    },
                    () = tokio::time::sleep(delay) => {
                        sink.output(OutputStream::Stdout, text).await;
                    }
                }
            }
        }
    }
}

/// Drops every queued input and reports the interruption.
async fn cancel(io: &mut DriverInputs, sink: &dyn DriverSink) {
    while io.inputs.try_recv().is_ok() {}
    sink.interrupted().await;
}
