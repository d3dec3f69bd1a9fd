//! The command line: parses arguments, starts logging and the async
//! runtime, dispatches to the command (`cli`) and turns its outcome into
//! the exit code (`cli::exit`). The binary (this file and `cli/`) is the
//! one place `anyhow` is used.

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::{Cli, Command};

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    cli::exit::code(runtime.block_on(dispatch(cli.command)))
}

/// glibc gives each thread that allocates its own arena (up to eight per
/// core) and keeps what each frees, and it raises its mmap threshold each
/// time a large block is freed, so the next renders of `/metrics` and
/// `/status` (a megabyte or two each at 3,000 members) come from the heap
/// and stay there. Two arenas serve a daemon whose work is short critical
/// sections, and a fixed threshold of 256 KiB gives every large buffer
/// back when it is dropped (docs/benchmarks.md). Set before any thread
/// starts; an operator's `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_`
/// wins. musl (the container image) has neither.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; no other
        // thread exists yet.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            }
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { config } => cli::check::run(&config),
        Command::Run { config } => cli::run::run(&config).await,
        Command::Plan { config } => cli::plan::run(&config).await,
        Command::Parity { config, json } => cli::parity::run(&config, json).await,
        Command::Init(args) => cli::init::run(args).await,
        Command::Demo { listen } => cli::demo::run(listen).await,
        Command::Status(args) => cli::oncall::status(args).await,
        Command::Events(args) => cli::oncall::events(args).await,
        Command::OnCall(command) => cli::oncall::on_call(command).await,
    }
}
