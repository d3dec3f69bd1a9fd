//! The command line: parses arguments, starts logging and the async
//! runtime, dispatches to the command (`cli`) and turns its outcome into
//! the exit code (`cli::exit`). The binary (this file and `cli/`) is the
//! one place `anyhow` is used.

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::{Cli, Command};

fn main() -> ExitCode {
    few_malloc_arenas();
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
/// core) and keeps what each frees: the probes' buffers on the runtime's
/// workers and the renders of `/metrics` and `/status` on the blocking
/// threads then hold about 10 MiB more at 3,000 members (README,
/// "Performance"). Two arenas serve a daemon whose work is short critical
/// sections; set before any thread starts. musl (the container image) has
/// no arenas.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other
        // thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
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
