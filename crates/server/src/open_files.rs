//! The open-file limit and `max_connections`.
//!
//! Every connection is a file descriptor, and so is each upstream socket, worker
//! pipe and store file. Many systems start a process with a soft limit of 1,024
//! open files while `max_connections` defaults to 10,000: past the file limit,
//! accepting a connection fails, and a client gets no answer at all instead of the
//! contract's `503 overloaded`. So the first server a process starts raises its
//! soft limit to the hard one (as nginx's `worker_rlimit_nofile` and Go's runtime
//! do), and a `max_connections` that still does not fit is served as the most that
//! does ([`fit_connections`]), with a warning that says how to raise the limit.
//!
//! Invariant: with a fitted limit, a connection past it is accepted and refused
//! with `503 overloaded` while a quarter of the open-file limit (at least
//! [`RESERVED`]) is left for everything else the process holds: upstream
//! connections, worker pipes, store files.

/// Fewest descriptors kept for what is not a client's connection (listeners, the
/// store, logs, the reaper, upstream connections, worker pipes): a quarter of the
/// limit, and at least this many.
pub const RESERVED: u64 = 64;

/// The soft limit on open files after raising it once (`None`: unlimited). The
/// runtime gives its worker processes the original back
/// (`switchyard_runtime::open_files`).
pub fn soft_limit() -> Option<u64> {
    switchyard_runtime::open_files::raise()
}

/// The most connections that fit `open_files` with a quarter of them (at least
/// [`RESERVED`]) kept for the rest; at least one.
pub fn connections_fitting(open_files: u64) -> usize {
    let reserved = (open_files / 4).max(RESERVED);
    usize::try_from(open_files.saturating_sub(reserved).max(1)).unwrap_or(usize::MAX)
}

/// `configured` (a listener's `max_connections`), or fewer when the open-file
/// limit cannot hold that many (logged as a warning naming both and the fix).
pub fn fit_connections(configured: usize) -> usize {
    fit(configured, soft_limit())
}

fn fit(configured: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return configured;
    };
    let fitting = connections_fitting(open_files);
    if configured <= fitting {
        return configured;
    }
    tracing::warn!(
        max_connections = configured,
        open_file_limit = open_files,
        serving_at_most = fitting,
        "max_connections does not fit the open-file limit: at most {fitting} connections are \
         served, so that the ones past them get 503 overloaded instead of no answer; raise the \
         limit (ulimit -n, systemd's LimitNOFILE=) or lower max_connections"
    );
    fitting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_is_fitted_to_the_open_file_limit() {
        // (configured, open-file limit, served)
        let cases: [(usize, Option<u64>, usize); 7] = [
            (10_000, None, 10_000),
            (10_000, Some(1_048_576), 10_000),
            (10_000, Some(1024), 768),
            (100, Some(1024), 100),
            (10_000, Some(20_000), 10_000),
            (10_000, Some(256), 192),
            (10_000, Some(10), 1),
        ];
        for (configured, limit, served) in cases {
            assert_eq!(
                fit(configured, limit),
                served,
                "{configured} under {limit:?}"
            );
        }
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use rustix::process::{Resource, getrlimit};
        let before = getrlimit(Resource::Nofile);
        let after = soft_limit();
        assert_eq!(after, getrlimit(Resource::Nofile).current);
        assert_eq!(after, before.maximum, "raised to the hard limit");
    }
}
