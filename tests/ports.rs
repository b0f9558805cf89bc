//! Loopback ports for tests that need one nothing answers on.

use std::net::SocketAddr;

/// A loopback port that refuses connections while this lives: bound, never
/// listening, so no other test (nor a process a test starts) can take it meanwhile,
/// as it could a port that was bound and released.
#[derive(Debug)]
pub struct Refused {
    _socket: tokio::net::TcpSocket,
    /// The address.
    pub addr: SocketAddr,
}

/// A loopback address that refuses connections (see [`Refused`]).
pub fn refused_addr() -> Refused {
    // Bound but not listening (std's `TcpListener::bind` would listen).
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("a loopback port");
    let addr = socket.local_addr().expect("its address");
    Refused {
        _socket: socket,
        addr,
    }
}
