//! The `ecops` binary: see `ecops --help`.

fn main() -> std::process::ExitCode {
    ecops::cli::main()
}
