//! `skye`: one binary for every Skye component.

mod cli;
mod components;
mod ingest_api;
mod logging;
mod settings_loader;

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
        Command::Standalone(_) => Components {
            admin: true,
            serving: true,
            consumers: true,
        },
        Command::Admin(_) => Components {
            admin: true,
            serving: false,
            consumers: false,
        },
        Command::Serving(_) => Components {
            admin: false,
            serving: true,
            consumers: false,
        },
        Command::Consumers(_) => Components {
            admin: false,
            serving: false,
            consumers: true,
        },
    };
    if let Err(e) = logging::init(&settings.log) {
        eprintln!("skye: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skye: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
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
