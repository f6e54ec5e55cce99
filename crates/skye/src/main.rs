//! `skye`: one binary for every Skye component.

/// mimalloc returns freed memory to the OS; glibc's per-thread arenas kept RSS growing under
/// steady churn (RELIABILITY.md, soak).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench_cmd;
mod child;
mod cli;
mod components;
mod console;
mod demo;
mod http_client;
mod ingest_api;
mod ingest_cli;
mod logging;
mod parquet_rows;
mod rng;
mod scale;
mod settings_loader;
#[cfg(feature = "qdrant")]
mod side;
mod soak;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::components::Components;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match settings_loader::load(&cli, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skye: {e:#}");
            return ExitCode::from(2);
        }
    };
    let which = match &cli.command {
        Command::Config(ConfigCommand::Print) => return print_config(&settings),
        Command::Ingest(args) => return ingest(&settings, args),
        Command::Bench(cmd) => return bench(&cli, &settings, cmd),
        Command::Standalone(args) => Components {
            admin: true,
            serving: true,
            consumers: true,
            demo: args.demo,
        },
        Command::Admin(_) => Components {
            admin: true,
            serving: false,
            consumers: false,
            demo: false,
        },
        Command::Serving(_) => Components {
            admin: false,
            serving: true,
            consumers: false,
            demo: false,
        },
        Command::Consumers(_) => Components {
            admin: false,
            serving: false,
            consumers: true,
            demo: false,
        },
    };
    let Some(runtime) = runtime(true) else {
        return ExitCode::FAILURE;
    };
    // Dropped before the runtime: the last traces are flushed while their client still runs.
    let _logging = match runtime.block_on(async { logging::init(&settings.log) }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("skye: {e:#}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(components::run(settings, which)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "skye stopped");
            eprintln!("skye: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `skye config print`: the effective configuration as TOML, secrets masked.
fn print_config(settings: &skye_core::settings::Settings) -> ExitCode {
    use std::io::Write;
    match toml::to_string_pretty(&settings.masked()) {
        Ok(text) => {
            // A closed pipe (`skye config print | head`) is not an error worth a panic.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skye: cannot render the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `skye ingest`: runs a job against a running Skye.
fn ingest(settings: &skye_core::settings::Settings, args: &cli::IngestArgs) -> ExitCode {
    use std::io::Write;
    if args.batch == 0 {
        eprintln!("skye: --batch must be positive");
        return ExitCode::from(2);
    }
    let job = ingest_cli::IngestJob {
        entity: args.entity.clone(),
        model: args.model.clone(),
        variants: args.variants.clone(),
        file: args.file.clone(),
        ids: args.ids.clone(),
        admin: args
            .admin_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", settings.admin.port)),
        consumers: args
            .consumers_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", settings.consumers.listen.port)),
        topic: args.topic.clone(),
        batch: args.batch,
        wait: !args.no_wait,
        timeout: std::time::Duration::from_secs(args.timeout),
        json: args.json,
    };
    let token = args
        .token
        .clone()
        .or_else(|| settings.auth_tokens.first().cloned());
    let Some(runtime) = runtime(false) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(ingest_cli::run(job, http_client::HttpClient::new(token))) {
        Ok(summary) => {
            let _ = writeln!(std::io::stdout().lock(), "{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skye ingest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `skye bench ...`.
fn bench(cli: &Cli, settings: &skye_core::settings::Settings, cmd: &cli::BenchCommand) -> ExitCode {
    let Some(runtime) = runtime(true) else {
        return ExitCode::FAILURE;
    };
    let outcome = runtime.block_on(async {
        match cmd {
            cli::BenchCommand::Ingest(args) => {
                bench_cmd::ingest(args, cli.global.data_dir.as_deref()).await
            }
            cli::BenchCommand::Grpc(args) => bench_cmd::grpc(args, &settings.data_dir).await,
            cli::BenchCommand::Soak(args) => soak::soak(args).await,
            cli::BenchCommand::Scale(args) => {
                scale::scale(args, cli.global.data_dir.as_deref()).await
            }
            #[cfg(feature = "qdrant")]
            cli::BenchCommand::Qdrant(args) => {
                side::side_by_side(args, cli.global.data_dir.as_deref()).await
            }
            #[cfg(not(feature = "qdrant"))]
            cli::BenchCommand::Qdrant(_) => Err(anyhow::anyhow!(
                "skye bench qdrant needs the Qdrant client: build with `--features qdrant`"
            )),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skye bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The tokio runtime (multi-threaded for servers and benchmarks); `None` after reporting why not.
fn runtime(multi_thread: bool) -> Option<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    match builder.enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("skye: cannot start the async runtime: {e}");
            None
        }
    }
}
