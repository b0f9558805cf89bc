//! Scenario 1's one-connection figure, request by request ("paired"): one
//! keep-alive connection per target, one request to every target in turn, each
//! timed, the order of the targets rotating and reversing from one turn to the
//! next.
//!
//! Why: at one connection a round trip is a few hundred µs, nearly all of it the
//! kernel waking one process after another, and on a VM whose speed changes from
//! one second to the next (stolen time) wrk's one-connection runs, two seconds per
//! target one after the other, differ by half from round to round. Here every
//! target meets the same slow and fast stretches within a turn, so the median of
//! the per-turn differences between two targets resolves about a microsecond, and
//! the ratio of their mean latencies is the throughput ratio a one-connection
//! client sees.

use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Result;
use crate::api::{Endpoint, Target};
use crate::rest::Route;
use crate::stats::percentile;

/// The body every input posts, as wrk's input script does.
const INPUT_BODY: &str = r#"{"text":"ping"}"#;

/// Every turn of one route: per target, one latency per turn, µs.
#[derive(Debug, Clone)]
pub struct PairedRoute {
    /// The route.
    pub route: Route,
    /// Per target, in the order first measured, one latency per turn (µs); every
    /// target has the same number, and index `i` of each is the same turn.
    pub latencies_us: Vec<(Target, Vec<f64>)>,
}

/// The spread of per-turn differences between two targets, µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    /// Median difference.
    pub median: f64,
    /// First quartile.
    pub p25: f64,
    /// Third quartile.
    pub p75: f64,
}

impl PairedRoute {
    /// `target`'s latencies, if it was measured.
    pub fn latencies(&self, target: Target) -> Option<&[f64]> {
        self.latencies_us
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, l)| l.as_slice())
    }

    /// Median latency of `target`, µs (NaN when not measured).
    pub fn p50(&self, target: Target) -> f64 {
        self.latencies(target)
            .map_or(f64::NAN, |l| percentile(l, 50.0))
    }

    /// Mean latency of `target`, µs (NaN when not measured).
    pub fn mean(&self, target: Target) -> f64 {
        self.latencies(target)
            .filter(|l| !l.is_empty())
            .map_or(f64::NAN, |l| l.iter().sum::<f64>() / l.len() as f64)
    }

    /// `a`'s latency minus `b`'s, turn by turn.
    pub fn difference(&self, a: Target, b: Target) -> Option<Difference> {
        let (a, b) = (self.latencies(a)?, self.latencies(b)?);
        let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
        (!differences.is_empty()).then(|| Difference {
            median: percentile(&differences, 50.0),
            p25: percentile(&differences, 25.0),
            p75: percentile(&differences, 75.0),
        })
    }

    /// The throughput of `a` over `b` as a one-connection client sees it: `b`'s mean
    /// latency over `a`'s.
    pub fn throughput_ratio(&self, a: Target, b: Target) -> f64 {
        self.mean(b) / self.mean(a)
    }

    fn record(&mut self, target: Target, latency_us: f64) {
        match self.latencies_us.iter_mut().find(|(t, _)| *t == target) {
            Some((_, l)) => l.push(latency_us),
            None => self.latencies_us.push((target, vec![latency_us])),
        }
    }
}

/// One keep-alive connection to a target, driven by hyper's HTTP/1.1 client.
struct Connection {
    send: SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
    path: String,
}

impl Connection {
    async fn open(endpoint: &Endpoint, path: String) -> Result<Self> {
        let stream = TcpStream::connect(endpoint.addr).await?;
        stream.set_nodelay(true)?;
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{}: {e}", endpoint.target.label()))?;
        tokio::spawn(connection);
        Ok(Self {
            send,
            endpoint: endpoint.clone(),
            path,
        })
    }

    /// Sends one request of `route` and reads the whole answer; the time from
    /// sending to the last byte, µs.
    async fn once(&mut self, route: Route) -> Result<f64> {
        let label = self.endpoint.target.label();
        self.send
            .ready()
            .await
            .map_err(|e| format!("{label}: connection lost: {e}"))?;
        let (method, body) = match route {
            Route::Detail | Route::List => (Method::GET, Bytes::new()),
            Route::Input => (Method::POST, Bytes::from_static(INPUT_BODY.as_bytes())),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.endpoint.prefix, self.path))
            .header(header::HOST, self.endpoint.addr.to_string());
        if route == Route::Input {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = self.endpoint.authorization() {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let request = request.body(Full::new(body))?;
        let started = Instant::now();
        let response = self
            .send
            .send_request(request)
            .await
            .map_err(|e| format!("{label} {}: {e}", self.path))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        if !status.is_success() {
            return Err(format!(
                "{label} {}: {status}: {}",
                self.path,
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(elapsed.as_secs_f64() * 1e6)
    }
}

/// The order of `n` targets in turn `turn`: rotated by the turn, and reversed every
/// other full rotation, so that each target is first, last and next to each other
/// target equally often.
pub fn turn_order(n: usize, turn: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).map(|i| (i + turn) % n).collect();
    if (turn / n.max(1)) % 2 == 1 {
        order.reverse();
    }
    order
}

/// Measures `turns` turns of `route` over `endpoints` (one connection each; `path`
/// gives each endpoint's path below its prefix) and adds them to `into`.
pub async fn measure(
    endpoints: &[(Endpoint, String)],
    route: Route,
    turns: usize,
    into: &mut PairedRoute,
) -> Result<()> {
    let mut connections = Vec::with_capacity(endpoints.len());
    for (endpoint, path) in endpoints {
        connections.push(Connection::open(endpoint, path.clone()).await?);
    }
    // One untimed turn: the connections are open and every path warm.
    for c in &mut connections {
        c.once(route).await?;
    }
    for turn in 0..turns {
        for i in turn_order(connections.len(), turn) {
            let c = &mut connections[i];
            let latency = c.once(route).await?;
            into.record(c.endpoint.target, latency);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_takes_every_place_equally_often() {
        let n = 3;
        let mut places = vec![vec![0; n]; n];
        for turn in 0..2 * n {
            for (place, target) in turn_order(n, turn).into_iter().enumerate() {
                places[target][place] += 1;
            }
        }
        assert!(
            places.iter().flatten().all(|&count| count == 2),
            "{places:?}"
        );
        assert_eq!(turn_order(3, 0), [0, 1, 2]);
        assert_eq!(turn_order(3, 1), [1, 2, 0]);
        assert_eq!(turn_order(3, 3), [2, 1, 0]);
    }

    #[test]
    fn differences_are_taken_turn_by_turn() {
        let route = PairedRoute {
            route: Route::Detail,
            latencies_us: vec![
                // A slow stretch in the middle slows both alike.
                (Target::Nginx, vec![200.0, 900.0, 210.0, 205.0]),
                (Target::Backend, vec![210.0, 912.0, 220.0, 214.0]),
            ],
        };
        let d = route.difference(Target::Backend, Target::Nginx).unwrap();
        assert!((d.median - 10.0).abs() < 1.5, "{d:?}");
        assert!(route.difference(Target::Backend, Target::Direct).is_none());
        let ratio = route.throughput_ratio(Target::Backend, Target::Nginx);
        assert!((ratio - 1515.0 / 1556.0).abs() < 1e-9, "{ratio}");
    }
}
