//! The `hgn` binary: everything lives in the library; see [`hgn::cli`].

fn main() -> std::process::ExitCode {
    hgn::cli::main()
}
