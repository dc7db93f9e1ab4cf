//! The `lephi` command: see `lephi --help`.

fn main() -> std::process::ExitCode {
    lephi::cli::main()
}
