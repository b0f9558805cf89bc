//! [`Relay`]: a user-space TCP relay that injects faults between the backends and a
//! runtime host, standing in for netem (which this kernel lacks).
//!
//! - **Delay**: every chunk is held for the one-way delay in each direction, and a
//!   new connection waits one round trip before anything flows (the TCP handshake a
//!   real link would cost). TLS passes through untouched, so its handshakes pay their
//!   round trips too.
//! - **Bandwidth**: each direction is a link of the given bytes per second shared by
//!   every connection of the relay; chunks queue for it in order.
//! - **Connection loss**: [`Relay::cut_all`] closes every connection it carries
//!   (both sides), as a middlebox or a failing link would; new connections are still
//!   accepted.
//!
//! Faults can change while traffic flows ([`Relay::set_faults`]); chunks already in
//! flight keep their delay, and a connection never reorders its bytes. Each
//! direction of a connection holds at most [`QUEUED_CHUNKS`] chunks of up to 16 KiB
//! in flight: a slow link pushes back on the sender instead of growing a queue.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// Chunks in flight per direction of a connection.
pub const QUEUED_CHUNKS: usize = 64;

/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;

/// The faults a relay injects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added in each direction (so the round trip grows by twice this).
    pub one_way_delay: Duration,
    /// Bytes per second in each direction, shared by all connections; unlimited
    /// when `None`.
    pub bandwidth: Option<u64>,
}

impl Faults {
    /// A link with `rtt` round-trip time and no other fault.
    pub fn rtt(rtt: Duration) -> Self {
        Self {
            one_way_delay: rtt / 2,
            bandwidth: None,
        }
    }
}

/// A relay listening on `127.0.0.1:<free port>` in front of one target.
#[derive(Debug)]
pub struct Relay {
    /// Where the relay listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    target: SocketAddr,
    faults: Mutex<Faults>,
    connections: Mutex<Vec<AbortHandle>>,
    /// One link per direction: towards the target, towards the client.
    links: [Link; 2],
    accepted: AtomicUsize,
    cut: AtomicUsize,
}

impl Shared {
    fn faults(&self) -> Faults {
        *lock(&self.faults)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One direction's bandwidth: the time at which the link is free again.
#[derive(Debug)]
struct Link {
    free_at: Mutex<Instant>,
}

impl Link {
    fn new() -> Self {
        Self {
            free_at: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `len` bytes have crossed the link at `rate` bytes per second,
    /// after whatever is queued before them.
    async fn pace(&self, len: usize, rate: Option<u64>) {
        let Some(rate) = rate.filter(|r| *r > 0) else {
            return;
        };
        let done = {
            let mut free_at = lock(&self.free_at);
            let start = (*free_at).max(Instant::now());
            *free_at = start + Duration::from_secs_f64(len as f64 / rate as f64);
            *free_at
        };
        tokio::time::sleep_until(done).await;
    }
}

impl Relay {
    /// Starts a relay on `127.0.0.1:0` towards `target` with `faults`.
    pub async fn start(target: SocketAddr, faults: Faults) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            faults: Mutex::new(faults),
            connections: Mutex::new(Vec::new()),
            links: [Link::new(), Link::new()],
            accepted: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
        });
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            addr,
            shared,
            acceptor,
        })
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Changes the faults for every chunk from now on.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Closes every connection carried right now; returns how many were live.
    pub fn cut_all(&self) -> usize {
        let mut connections = lock(&self.shared.connections);
        let live = connections.iter().filter(|c| !c.is_finished()).count();
        for connection in connections.drain(..) {
            connection.abort();
        }
        self.shared.cut.fetch_add(live, Ordering::SeqCst);
        live
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections cut so far.
    pub fn cut(&self) -> usize {
        self.shared.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let mut connections = lock(&shared.connections);
        connections.retain(|c| !c.is_finished());
        let task = tokio::spawn(relay_connection(inbound, shared.clone()));
        connections.push(task.abort_handle());
    }
}

/// One connection: the handshake's round trip, then both directions until each
/// side has finished sending.
async fn relay_connection(inbound: TcpStream, shared: Arc<Shared>) {
    tokio::time::sleep(shared.faults().one_way_delay * 2).await;
    let Ok(outbound) = TcpStream::connect(shared.target).await else {
        return; // dropping `inbound` closes it: the target looks down
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::join!(
        direction(in_read, out_write, &shared, 0),
        direction(out_read, in_write, &shared, 1),
    );
}

/// Carries one direction: a reader stamps each chunk with its due time, a writer
/// delivers it then (paced by the link), in order; EOF is passed on as a shutdown.
async fn direction(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: &Shared, link: usize) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let due = Instant::now() + shared.faults().one_way_delay;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    // Owns the receiver: when it gives up (the other side is gone), the reader's
    // next send fails and it stops too.
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            shared.links[link]
                .pace(chunk.len(), shared.faults().bandwidth)
                .await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback: writes back what it reads until EOF.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> Duration {
        let started = Instant::now();
        stream.write_all(payload).await.unwrap();
        let mut back = vec![0u8; payload.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, payload);
        started.elapsed()
    }

    #[tokio::test]
    async fn forwards_both_ways_and_passes_eof_on() {
        let relay = Relay::start(echo_server().await, Faults::default())
            .await
            .unwrap();
        let mut stream = TcpStream::connect(relay.addr).await.unwrap();
        round_trip(&mut stream, b"hello").await;
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(crate::WAIT, stream.read_to_end(&mut rest))
            .await
            .expect("EOF comes back")
            .unwrap();
        assert!(rest.is_empty());
        assert_eq!(relay.accepted(), 1);
    }

    #[tokio::test]
    async fn delay_adds_to_every_round_trip_and_can_change() {
        let relay = Relay::start(echo_server().await, Faults::rtt(Duration::from_millis(60)))
            .await
            .unwrap();
        let mut stream = TcpStream::connect(relay.addr).await.unwrap();
        // The first exchange also pays the emulated handshake.
        assert!(round_trip(&mut stream, b"a").await >= Duration::from_millis(120));
        for _ in 0..3 {
            assert!(round_trip(&mut stream, b"b").await >= Duration::from_millis(60));
        }
        relay.set_faults(Faults::default());
        assert_eq!(relay.faults(), Faults::default());
        // (No upper bound asserted: timing targets live in benchmarks.)
        round_trip(&mut stream, b"c").await;
    }

    #[tokio::test]
    async fn bandwidth_paces_each_direction() {
        let faults = Faults {
            one_way_delay: Duration::ZERO,
            bandwidth: Some(256 * 1024),
        };
        let relay = Relay::start(echo_server().await, faults).await.unwrap();
        let mut stream = TcpStream::connect(relay.addr).await.unwrap();
        let payload = vec![7u8; 64 * 1024];
        // 64 KiB out and 64 KiB back, each direction at 256 KiB/s: at least 0.25 s
        // (the two directions overlap).
        let took = round_trip(&mut stream, &payload).await;
        assert!(took >= Duration::from_millis(240), "{took:?}");
    }

    #[tokio::test]
    async fn cut_all_closes_live_connections_and_new_ones_still_work() {
        let relay = Relay::start(echo_server().await, Faults::default())
            .await
            .unwrap();
        let mut first = TcpStream::connect(relay.addr).await.unwrap();
        let mut second = TcpStream::connect(relay.addr).await.unwrap();
        round_trip(&mut first, b"1").await;
        round_trip(&mut second, b"2").await;
        assert_eq!(relay.cut_all(), 2);
        assert_eq!(relay.cut(), 2);
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(crate::WAIT, first.read(&mut buf))
            .await
            .expect("the cut shows");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let mut third = TcpStream::connect(relay.addr).await.unwrap();
        round_trip(&mut third, b"3").await;
    }

    #[tokio::test]
    async fn a_dead_target_closes_the_client_side() {
        let dead = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let relay = Relay::start(dead, Faults::default()).await.unwrap();
        let mut stream = TcpStream::connect(relay.addr).await.unwrap();
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(crate::WAIT, stream.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}
