//! The `dashscope` command-line tool; everything it does lives in `dashscope_oss::cli`.

fn main() -> std::process::ExitCode {
    dashscope_oss::cli::main()
}
