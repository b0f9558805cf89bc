//! The `switchyard` binary.

// mimalloc instead of the C library's allocator: the proxy path allocates a little
// for every request (see docs/bench/ANALYSIS.md for what it saves). Linked with its
// `override` feature, it defines `malloc` and `free` themselves, so Rust's default
// allocator, which calls `malloc` for every ordinary alignment, reaches mimalloc's
// fast path; `mimalloc::MiMalloc` as the global allocator would call its aligned
// entry point, whose generic path costs ~150 instructions for every block over 1 KiB.
use mimalloc as _;

fn main() -> std::process::ExitCode {
    switchyard_server::cli::main()
}
