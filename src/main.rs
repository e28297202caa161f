//! The `hgn` binary: the command line ([`cli`]: flags, printing, exit codes) over the library,
//! which does the work and never prints.

mod cli;

/// mimalloc keeps freed pages for reuse instead of returning them to the kernel; a training step
/// allocates and frees gigabytes of tensors, which with the system allocator become page faults
/// (measured in `docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
