//! `tracing` set-up: a filter from the settings, pretty or JSON lines on stdout and, with the
//! `otlp` feature and `log.otlp_endpoint` set, every span exported over OTLP/gRPC (a query's
//! stages under its `rpc` span, a consumer batch's under its `batch` span).

use std::io::IsTerminal;

use skye_core::settings::{LogFormat, LogSettings};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Keeps the trace export alive; dropping it flushes the spans not yet sent.
#[derive(Debug, Default)]
pub struct Guard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("skye: the last traces were not exported: {e}");
        }
    }
}

/// Installs the logger (and the trace export). Call inside the runtime: the OTLP client is a
/// tonic channel, whose connection tasks run on it.
pub fn init(log: &LogSettings) -> anyhow::Result<Guard> {
    let filter = EnvFilter::try_new(&log.level)
        .map_err(|e| anyhow::anyhow!("invalid log level '{}': {e}", log.level))?;
    let ansi = std::io::stdout().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(true)
        .with_ansi(ansi);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match log.format {
        LogFormat::Json => fmt.json().flatten_event(false).with_filter(filter).boxed(),
        LogFormat::Pretty => fmt.compact().with_filter(filter).boxed(),
    };
    let (export, guard) = export(log)?;
    let layers: Vec<_> = std::iter::once(lines).chain(export).collect();
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    if !log.otlp_endpoint.is_empty() {
        tracing::info!(endpoint = %log.otlp_endpoint, service = %log.otlp_service_name,
            "exporting traces over OTLP");
    }
    Ok(guard)
}

type ExportLayer = Option<Box<dyn Layer<Registry> + Send + Sync>>;

#[cfg(feature = "otlp")]
fn export(log: &LogSettings) -> anyhow::Result<(ExportLayer, Guard)> {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::WithExportConfig;

    if log.otlp_endpoint.is_empty() {
        return Ok((None, Guard::default()));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&log.otlp_endpoint)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot export traces to {}: {e}", log.otlp_endpoint))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(log.otlp_service_name.clone())
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    // The stages of a search or a batch are debug spans: nothing without an export, and
    // exported (not logged) with one.
    let stages = format!(
        "{},skye=debug,skye_engine=debug,skye_serving=debug,skye_backends=debug",
        log.level
    );
    let filter = EnvFilter::try_new(&stages)
        .map_err(|e| anyhow::anyhow!("invalid log level '{}': {e}", log.level))?;
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("skye"))
        .with_filter(filter);
    Ok((
        Some(layer.boxed()),
        Guard {
            provider: Some(provider),
        },
    ))
}

#[cfg(not(feature = "otlp"))]
fn export(log: &LogSettings) -> anyhow::Result<(ExportLayer, Guard)> {
    match log.otlp_endpoint.is_empty() {
        true => Ok((None, Guard::default())),
        false => anyhow::bail!(
            "log.otlp_endpoint is set ({}) but this binary was built without trace export: \
             rebuild with `--features otlp`, or unset it (OTEL_EXPORTER_OTLP_ENDPOINT)",
            log.otlp_endpoint
        ),
    }
}
