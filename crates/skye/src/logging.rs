//! `tracing` set-up: a filter from the settings and pretty or JSON lines on stdout.

use std::io::IsTerminal;

use skye_core::settings::{LogFormat, LogSettings};
use tracing_subscriber::EnvFilter;

pub fn init(log: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&log.level)
        .map_err(|e| anyhow::anyhow!("invalid log level '{}': {e}", log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let result = match log.format {
        LogFormat::Json => builder.json().flatten_event(false).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
