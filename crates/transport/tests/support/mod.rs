//! Helpers shared by the transport's test files.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

/// Everything logged (every level, formatted as the binary's log lines are) on this
/// thread while `body` runs.
pub async fn logs_during(body: impl Future<Output = ()>) -> String {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::default());
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    body.await;
    let bytes = sink.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes).into_owned()
}
