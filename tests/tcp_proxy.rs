//! A loopback TCP proxy for tests that need to break a connection between two real
//! processes: it forwards every connection it accepts to one target, can cut all the
//! connections it carries on demand while it keeps accepting new ones, and can
//! pretend the target is unreachable for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A TCP proxy listening on `127.0.0.1:<free port>` in front of one target address.
///
/// Each accepted connection is forwarded by its own task (`copy_bidirectional`);
/// cutting a connection aborts that task, which closes both of its sockets. Dropping
/// the proxy stops accepting and cuts everything.
#[derive(Debug)]
pub struct TcpProxy {
    /// Where the proxy listens; point clients here instead of at the target.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    refusing: AtomicBool,
    accepted: AtomicUsize,
    connections: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Vec<AbortHandle>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TcpProxy {
    /// Starts a proxy on `127.0.0.1:0` that forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a loopback port");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            target,
            refusing: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        Self {
            addr,
            shared,
            acceptor,
        }
    }

    /// The address connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Closes every connection carried right now (both sides); new connections are
    /// still accepted. Returns how many live connections were cut.
    pub fn cut_all(&self) -> usize {
        let mut connections = self.shared.connections();
        let live = connections.iter().filter(|c| !c.is_finished()).count();
        for connection in connections.drain(..) {
            connection.abort();
        }
        live
    }

    /// While `refusing`, every new connection is accepted and closed at once, as if
    /// the target were down; connections already carried are left alone.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Connections being forwarded right now.
    pub fn live_connections(&self) -> usize {
        self.shared
            .connections()
            .iter()
            .filter(|c| !c.is_finished())
            .count()
    }

    /// Connections accepted so far, forwarded or refused.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(_) => {
                // Out of descriptors or similar: back off rather than spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.refusing.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        // Registered under the lock it is spawned under, so `cut_all` either sees a
        // connection or the connection was accepted after the cut.
        let mut connections = shared.connections();
        connections.retain(|c| !c.is_finished());
        let target = shared.target;
        let task = tokio::spawn(async move {
            let mut inbound = inbound;
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return; // dropping `inbound` closes it: the target looks down
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
        connections.push(task.abort_handle());
    }
}
