//! The report's scenario 5, the TLS hop: its table and its target (what TLS on the
//! hop to the remote costs the backend, relative to plain HTTP, against what it
//! costs nginx).

use std::fmt::Write as _;

use crate::api::Target;
use crate::report::{Check, Report};
use crate::rest::{Cell, Route};
use crate::stats::ratio;

/// Points of throughput ratio within which the backend counts as keeping up with
/// nginx (run-to-run noise on a shared 2-CPU machine is of that order).
const NOISE: f64 = 0.05;

/// The name of the target, as the issue states it.
const TARGET: &str =
    "TLS to the remote costs the backend no more, relative to plain HTTP, than it costs nginx";

impl Report<'_> {
    /// The median of `f` over `target`'s cell for `route` × `connections`, or zero.
    fn tls_median(
        &self,
        route: Route,
        connections: u32,
        target: Target,
        f: fn(&Cell) -> crate::stats::Summary,
    ) -> f64 {
        self.tls
            .get(route, connections, target)
            .map_or(0.0, |c| f(c).median)
    }

    /// TLS / plain throughput of nginx and of the backend for one route and count.
    fn tls_ratios(&self, route: Route, connections: u32) -> (f64, f64) {
        let rps = |t| self.tls_median(route, connections, t, Cell::rps);
        (
            ratio(rps(Target::NginxTls), rps(Target::Nginx)),
            ratio(rps(Target::BackendTls), rps(Target::Backend)),
        )
    }

    /// Every route × connection count measured, labelled.
    fn tls_groups(&self) -> Vec<(Route, u32, String)> {
        Route::ALL
            .iter()
            .flat_map(|route| {
                self.plan
                    .rest_connections
                    .iter()
                    .map(move |c| (*route, *c, format!("{} ×{c}", route.label())))
            })
            .collect()
    }

    /// The target of scenario 5, judged.
    pub(crate) fn tls_check(&self) -> Check {
        let mut behind = Vec::new();
        let mut worst: Option<(f64, f64, String)> = None;
        for (route, c, label) in self.tls_groups() {
            let (nginx, backend) = self.tls_ratios(route, c);
            if backend < nginx - NOISE {
                behind.push(label.clone());
            }
            let gap = backend - nginx;
            if worst.as_ref().is_none_or(|(g, _, _)| gap < *g) {
                worst = Some((
                    gap,
                    backend,
                    format!("{label}: backend {backend:.2}, nginx {nginx:.2}"),
                ));
            }
        }
        let (_, _, worst_at) = worst.unwrap_or((f64::NAN, f64::NAN, String::new()));
        Check {
            name: TARGET,
            met: behind.is_empty(),
            standing: format!(
                "TLS/plain req/s, worst case against nginx: {worst_at}; more than {:.0} points behind nginx in {} of {} cases",
                NOISE * 100.0,
                behind.len(),
                self.tls_groups().len()
            ),
            why: "The backend's TLS client is rustls (ring) over its pooled keep-alive \
                  connections, so the handshake is paid once per pooled connection; per \
                  request, TLS adds record encryption and decryption on both ends of the \
                  hop. Where the backend falls behind, compare the extra proxy CPU per \
                  request in the table: on two shared CPUs that is what sets throughput."
                .to_owned(),
        }
    }

    /// Section 5 of the report.
    pub(crate) fn tls_section(&self, md: &mut String) {
        let _ = writeln!(md, "## 5. TLS on the hop to the remote\n");
        let _ = writeln!(
            md,
            "The REST routes of section 1 through nginx and through the backend, each to \
             a remote runtime over plain HTTP and to a second, identically configured \
             runtime that serves HTTPS only (`[tls]`, an ECDSA P-256 certificate from a \
             test CA). The client's hop to the proxy is plain HTTP in all four cases; only \
             the proxy→runtime hop changes. The backend trusts the CA with `ca_file`; \
             nginx proxies with `proxy_pass https://`, `proxy_ssl_verify on` against the \
             same CA, `proxy_ssl_session_reuse on` and an upstream with `keepalive 64`. \
             The four targets run side by side in every round. The target: the backend's \
             TLS/plain throughput ratio at least nginx's (within {:.0} points of noise).\n",
            NOISE * 100.0
        );
        let _ = writeln!(
            md,
            "| route | connections | nginx req/s | nginx TLS req/s | nginx TLS/plain | backend req/s | backend TLS req/s | backend TLS/plain | backend ÷ nginx ratio | extra proxy CPU µs/req nginx | extra proxy CPU µs/req backend | p99 ms nginx TLS | p99 ms backend TLS | failed |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (route, c, _) in self.tls_groups() {
            let cell = |t| self.tls.get(route, c, t);
            let rps = |t| cell(t).map_or_else(|| "–".to_owned(), |c: &Cell| c.rps().show(0));
            let p99 = |t| cell(t).map_or_else(|| "–".to_owned(), |c: &Cell| c.p99().show(3));
            let cpu = |t| self.tls_median(route, c, t, Cell::proxy_cpu);
            let failed: u64 = Target::TLS_HOP
                .iter()
                .filter_map(|t| cell(*t))
                .map(Cell::errors)
                .sum();
            let (nginx, backend) = self.tls_ratios(route, c);
            let _ = writeln!(
                md,
                "| {} | {c} | {} | {} | {} | {} | {} | {} | {} | {:+.1} | {:+.1} | {} | {} | {failed} |",
                route.label(),
                rps(Target::Nginx),
                rps(Target::NginxTls),
                show(nginx),
                rps(Target::Backend),
                rps(Target::BackendTls),
                show(backend),
                show(ratio(backend, nginx)),
                cpu(Target::NginxTls) - cpu(Target::Nginx),
                cpu(Target::BackendTls) - cpu(Target::Backend),
                p99(Target::NginxTls),
                p99(Target::BackendTls),
            );
        }
        let _ = writeln!(md);
        crate::paired_report::table(
            md,
            self.tls,
            &[
                (Target::Backend, Target::Nginx),
                (Target::BackendTls, Target::NginxTls),
            ],
        );
    }
}

fn show(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "–".to_owned()
    }
}
