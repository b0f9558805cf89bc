//! The `switchyard` binary.

/// mimalloc instead of the system allocator: the proxy path allocates a little for
/// every request (see docs/bench/ANALYSIS.md for what it saves).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard_server::cli::main()
}
