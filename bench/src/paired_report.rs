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
