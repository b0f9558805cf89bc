//! The report's table of the one-connection paired figure ([`crate::paired`]).

use std::fmt::Write as _;

use crate::api::Target;
use crate::rest::{RestResults, Route};

/// Writes the paired table of `results` (nothing when it was not measured): every
/// target's median latency, then for each `(a, b)` of `pairs` the per-turn
/// difference and the one-connection throughput ratio a/b.
pub fn table(md: &mut String, results: &RestResults, pairs: &[(Target, Target)]) {
    let Some(first) = results.paired.first() else {
        return;
    };
    let targets: Vec<Target> = first.latencies_us.iter().map(|(t, _)| *t).collect();
    let turns = first.latencies_us.first().map_or(0, |(_, l)| l.len());
    let _ = writeln!(
        md,
        "**One connection, request by request.** wrk's one-connection runs above take \
         turns two seconds at a time, and on this machine the speed of a two-second \
         stretch varies by half, so their medians over three rounds often differ by \
         more than the targets do. Here each target has one keep-alive connection \
         (hyper's client) and gets one request per turn, the order rotating and \
         reversing from turn to turn; {turns} turns per route over all rounds. A \
         difference is taken turn by turn (median, and quartiles in brackets); the \
         req/s ratio is the inverse ratio of mean latencies, what a client on one \
         connection gets.\n"
    );
    let mut head = String::from("| route |");
    let mut rule = String::from("|---|");
    for t in &targets {
        let _ = write!(head, " {} p50 µs |", t.label());
        rule.push_str("---:|");
    }
    for (a, b) in pairs {
        let _ = write!(
            head,
            " {} − {} µs per turn | {} / {} req/s |",
            a.label(),
            b.label(),
            a.label(),
            b.label()
        );
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for route in Route::ALL {
        let Some(figure) = results.paired(route) else {
            continue;
        };
        let mut row = format!("| {} |", route.label());
        for t in &targets {
            let _ = write!(row, " {:.0} |", figure.p50(*t));
        }
        for (a, b) in pairs {
            match figure.difference(*a, *b) {
                Some(d) => {
                    let _ = write!(
                        row,
                        " {:+.1} ({:+.1} to {:+.1}) | {:.3} |",
                        d.median,
                        d.p25,
                        d.p75,
                        figure.throughput_ratio(*a, *b)
                    );
                }
                None => row.push_str(" – | – |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paired::PairedRoute;

    fn results() -> RestResults {
        RestResults {
            cells: Vec::new(),
            paired: vec![PairedRoute {
                route: Route::Detail,
                latencies_us: vec![
                    (Target::Nginx, vec![200.0, 300.0, 250.0]),
                    (Target::Backend, vec![210.0, 310.0, 262.0]),
                ],
            }],
        }
    }

    #[test]
    fn a_row_per_measured_route_with_the_pairs_asked_for() {
        let mut md = String::new();
        table(&mut md, &results(), &[(Target::Backend, Target::Nginx)]);
        assert!(md.contains("3 turns per route"), "{md}");
        assert!(
            md.contains(
                "| route | nginx p50 µs | backend→remote p50 µs | \
                 backend→remote − nginx µs per turn | backend→remote / nginx req/s |"
            ),
            "{md}"
        );
        // Differences 10, 10, 12: median 10, quartiles 10 and 12; means 250 and 260.67.
        assert!(
            md.contains("| worker detail | 250 | 262 | +10.0 (+10.0 to +12.0) | 0.959 |"),
            "{md}"
        );
        assert!(
            !md.contains("| input |"),
            "a route not measured has no row: {md}"
        );
    }

    #[test]
    fn a_pair_with_a_target_not_measured_shows_dashes() {
        let mut md = String::new();
        table(
            &mut md,
            &results(),
            &[(Target::BackendTls, Target::NginxTls)],
        );
        assert!(md.contains("| worker detail | 250 | 262 | – | – |"), "{md}");
    }

    #[test]
    fn nothing_when_the_figure_was_not_measured() {
        let mut md = String::new();
        table(
            &mut md,
            &RestResults::default(),
            &[(Target::Backend, Target::Nginx)],
        );
        assert!(md.is_empty());
    }
}
