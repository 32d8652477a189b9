//! The `rxl` binary.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    rxl::main()
}
