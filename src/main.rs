//! The `hgn` binary: the command line ([`cli`]: flags, printing, exit codes) over the library,
//! which does the work and never prints.

mod cli;

/// mimalloc keeps freed pages for reuse instead of returning them to the kernel; a training step
/// allocates and frees gigabytes of tensors, which with the system allocator become page faults
/// (measured in `docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t`, mimalloc v2 and v3 alike): how
/// long freed pages wait before they are returned to the kernel; −1 never returns them.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // A training step frees and reallocates the same tensor sizes every step; pages returned to
    // the kernel come back zeroed through page faults. Keeping them (purge delay −1) costs a
    // bounded amount of resident memory, the peak of one step (docs/performance.md). The
    // environment variable, when set, still decides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads it at its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    // The command runs on a worker of rayon's global pool rather than on the main thread: burn's
    // parallel operations then split their work with the other workers directly, instead of
    // handing it to the pool and sleeping until a worker wakes the main thread again (two thread
    // wake-ups per operation). The workers get the main thread's stack size or more.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK_BYTES)
        .build_global();
    match pool {
        Ok(()) => rayon::scope(|_| cli::main()),
        // The pool could not start its threads: run on this thread (burn then starts its own).
        Err(_) => cli::main(),
    }
}

/// Stack of each rayon worker, which runs the command itself (Linux gives the main thread 8 MiB).
const WORKER_STACK_BYTES: usize = 16 << 20;
