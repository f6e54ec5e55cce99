//! Layers the configuration: defaults → file → environment → command-line flags.

use std::path::Path;

use anyhow::{Context, bail};
use skye_core::settings::{LogFormat, PortTarget, Settings};

use crate::cli::{Cli, Command, LogFormatArg};

/// Reads a config file; the format follows the extension (`.yaml`/`.yml` = YAML, else TOML).
pub fn read_file(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "yaml" | "yml" => serde_yaml_ng::from_str(&text)
            .with_context(|| format!("invalid YAML in {}", path.display())),
        _ => toml::from_str(&text).with_context(|| format!("invalid TOML in {}", path.display())),
    }
}

/// The effective settings for `cli`, validated.
pub fn load(
    cli: &Cli,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Settings> {
    let mut settings = match &cli.global.config {
        Some(path) => read_file(path)?,
        None => Settings::default(),
    };
    let target = match cli.command {
        Command::Consumers(_) => PortTarget::Consumers,
        Command::Serving(_) => PortTarget::Serving,
        _ => PortTarget::Admin,
    };
    if let Err(errors) = settings.apply_env(env, target) {
        bail!("invalid environment: {errors}");
    }
    apply_flags(cli, &mut settings);
    if let Err(errors) = settings.validate() {
        bail!("invalid configuration: {errors}");
    }
    Ok(settings)
}

fn apply_flags(cli: &Cli, s: &mut Settings) {
    let g = &cli.global;
    if let Some(dir) = &g.data_dir {
        s.data_dir = dir.clone();
    }
    if let Some(format) = g.log_format {
        s.log.format = match format {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Pretty => LogFormat::Pretty,
        };
    }
    if let Some(level) = &g.log_level {
        s.log.level = level.clone();
    }
    if let Some(host) = &g.bind {
        s.admin.host = host.clone();
        s.serving.listen.host = host.clone();
        s.consumers.listen.host = host.clone();
    }
    match &cli.command {
        Command::Standalone(a) => {
            if let Some(p) = a.admin_port {
                s.admin.port = p;
            }
            if let Some(p) = a.serving_port {
                s.serving.listen.port = p;
            }
            if let Some(p) = a.consumers_port {
                s.consumers.listen.port = p;
            }
        }
        Command::Admin(a) => {
            if let Some(p) = a.port {
                s.admin.port = p;
            }
        }
        Command::Serving(a) => {
            if let Some(p) = a.port {
                s.serving.listen.port = p;
            }
        }
        Command::Consumers(a) => {
            if let Some(p) = a.port {
                s.consumers.listen.port = p;
            }
        }
        Command::Config(_) | Command::Ingest(_) | Command::Bench(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    /// Every leaf of the default settings as a TOML path.
    fn leaf_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    leaf_paths(v, &format!("{prefix}{k}."), out);
                }
            }
            _ => out.push(prefix.trim_end_matches('.').to_string()),
        }
    }

    fn toml_value() -> impl Strategy<Value = toml::Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            (-3i64..70_000).prop_map(toml::Value::Integer),
            any::<f64>().prop_map(toml::Value::Float),
            any::<bool>().prop_map(toml::Value::Boolean),
            "\\PC{0,12}".prop_map(toml::Value::String),
            prop::sample::select(vec!["json", "pretty", "etcd", "embedded", "0", "-1", ""])
                .prop_map(|s| toml::Value::String(s.to_string())),
        ];
        leaf.prop_recursive(1, 6, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(toml::Value::Array),
                prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                    .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
            ]
        })
    }

    fn set(root: &mut toml::Value, path: &str, value: toml::Value) {
        let mut node = root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let toml::Value::Table(t) = node else { return };
            if parts.peek().is_none() {
                t.insert(part.to_string(), value);
                return;
            }
            node = t
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()));
        }
    }

    proptest! {
        /// Config files with any key set to any value, and arbitrary text, are either loaded
        /// and validated or refused with a message; never a panic.
        #[test]
        fn any_config_file_is_loaded_or_refused_clearly(
            edits in prop::collection::vec((any::<usize>(), toml_value()), 1..6),
            garbage in "\\PC{0,40}",
        ) {
            let mut root = toml::Value::try_from(Settings::default()).unwrap();
            let mut paths = Vec::new();
            leaf_paths(&root, "", &mut paths);
            for (i, value) in edits {
                set(&mut root, &paths[i % paths.len()], value);
            }
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in [
                ("skye.toml", toml::to_string(&root).unwrap_or_default()),
                ("garbage.toml", garbage.clone()),
                ("garbage.yaml", garbage),
            ] {
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                match read_file(&path) {
                    Ok(settings) => {
                        if let Err(errors) = settings.validate() {
                            prop_assert!(!errors.to_string().is_empty());
                        }
                    }
                    Err(e) => {
                        let message = format!("{e:#}");
                        prop_assert!(!message.is_empty());
                    }
                }
            }
        }

        /// Any value in any of the environment variables Skye reads is applied or reported.
        #[test]
        fn any_environment_is_applied_or_refused_clearly(
            vars in prop::collection::vec((0usize..42, "\\PC{0,12}"), 0..8),
        ) {
            const NAMES: [&str; 42] = [
                "APP_NAME", "APP_ENV", "APP_LOG_LEVEL", "LOG_LEVEL", "LOG_FORMAT",
                "SKYE_DATA_DIR", "DATA_DIR", "AUTH_TOKENS", "PORT", "APP_PORT",
                "IN_MEMORY_CACHE_SIZE_IN_BYTES", "ADMIN_HOST", "ADMIN_PORT",
                "ADMIN_TIMEOUT_IN_MS", "ETCD_SERVER", "ETCD_USERNAME", "ETCD_PASSWORD",
                "ETCD_WATCHER_ENABLED", "SKYE_CONFIG_STORE", "CONFIG_STORE", "KAFKA_BROKER",
                "KAFKA_SESSION_TIMEOUT_MS", "KAFKA_MAX_POLL_INTERVAL_MS", "REDIS_ADDR",
                "SKYE_RECALL_SAMPLE_EVERY", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
                "REDIS_PASSWORD", "REDIS_DB", "unknown_var", "port", "Log_Format",
                "EMBEDDING_CONSUMER_KAFKA_IDS", "REALTIME_CONSUMER_KAFKA_IDS",
                "REALTIME_DELTA_CONSUMER_KAFKA_ID", "KAFKA_1_TOPICS", "KAFKA_1_BOOTSTRAP_SERVERS",
                "KAFKA_1_BATCH_SIZE", "KAFKA_2_BOOTSTRAP_SERVERS", "KAFKA_PRODUCER_1_TOPICS",
                "STORAGE_EMBEDDING_STORE_1_PORT", "STORAGE_AGGREGATOR_DB_1_CONTACT_POINTS",
            ];
            let env: Vec<(String, String)> = vars
                .into_iter()
                .map(|(i, v)| (NAMES[i].to_string(), v))
                .collect();
            for target in [PortTarget::Admin, PortTarget::Serving, PortTarget::Consumers] {
                let mut settings = Settings::default();
                match settings.apply_env(env.clone(), target) {
                    Ok(()) => {
                        if let Err(errors) = settings.validate() {
                            prop_assert!(!errors.to_string().is_empty());
                        }
                    }
                    Err(errors) => prop_assert!(!errors.to_string().is_empty()),
                }
            }
        }
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("skye").chain(args.iter().copied()))
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("skye.toml");
        std::fs::write(
            &file,
            "app_env = \"file\"\n[admin]\nport = 1111\n[log]\nlevel = \"debug\"\n",
        )
        .unwrap();
        let c = cli(&[
            "--config",
            file.to_str().unwrap(),
            "admin",
            "--port",
            "3333",
        ]);
        let env = [
            ("PORT".to_string(), "2222".to_string()),
            ("app_env".to_string(), "env".to_string()),
        ];
        let s = load(&c, env).unwrap();
        assert_eq!(s.admin.port, 3333);
        assert_eq!(s.app_env, "env");
        assert_eq!(s.log.level, "debug");
    }

    #[test]
    fn yaml_files_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("skye.yaml");
        std::fs::write(&yaml, "serving:\n  port: 7000\n  max_limit: 50\n").unwrap();
        let s = load(&cli(&["--config", yaml.to_str().unwrap(), "serving"]), []).unwrap();
        assert_eq!((s.serving.listen.port, s.serving.max_limit), (7000, 50));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[admin]\nprot = 1\n").unwrap();
        let err = load(&cli(&["--config", bad.to_str().unwrap(), "admin"]), []).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `prot`"),
            "{err:#}"
        );
    }

    #[test]
    fn the_deploy_example_config_loads_and_validates() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/skye.scaleout.toml"
        );
        for command in ["admin", "serving", "consumers"] {
            let s = load(&cli(&["--config", path, command]), []).unwrap();
            assert_eq!(
                s.backends.config_store,
                skye_core::settings::ConfigStoreKind::Etcd
            );
            assert_eq!(s.backends.kafka.broker, "kafka:9092");
            assert_eq!(s.backends.redis.addr, "redis:6379");
            assert_eq!(s.serving.listen.port, 9090);
        }
    }

    #[test]
    fn invalid_results_are_refused_with_every_reason() {
        let err = load(
            &cli(&["standalone", "--admin-port", "9090"]),
            [("REDIS_DB".into(), "x".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("REDIS_DB"), "{err}");
        let err = load(&cli(&["standalone", "--admin-port", "9090"]), []).unwrap_err();
        assert!(
            err.to_string()
                .contains("admin.port: 9090 is also serving.port"),
            "{err}"
        );
    }
}
