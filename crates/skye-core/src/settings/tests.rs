//! Settings: defaults, the original's environment names, validation and masking.

use super::*;

#[test]
fn defaults_are_valid() {
    Settings::default().validate().unwrap();
}

#[test]
fn original_env_names_apply_in_any_case() {
    let mut s = Settings::default();
    s.apply_env(
        [
            ("port", "9000"),
            ("APP_PORT", "9191"),
            ("Auth_Tokens", "a, b,"),
            ("etcd_server", "127.0.0.1:2379,127.0.0.2:2379"),
            ("REDIS_ADDR", "localhost:6379"),
            ("redis_key_format", "Original"),
            ("kafka_broker", "localhost:9092"),
            ("APP_ENV", "int"),
            ("HOME", "/root"),
        ],
        PortTarget::Admin,
    )
    .unwrap();
    assert_eq!(s.admin.port, 9000);
    assert_eq!(s.serving.listen.port, 9191);
    assert_eq!(s.auth_tokens, ["a", "b"]);
    assert_eq!(s.backends.config_store, ConfigStoreKind::Etcd);
    assert_eq!(s.backends.etcd.endpoints.len(), 2);
    assert_eq!(s.backends.redis.addr, "localhost:6379");
    assert_eq!(s.backends.redis.key_format, CacheKeyFormat::Original);
    assert_eq!(s.backends.kafka.broker, "localhost:9092");
    assert_eq!(s.app_env, "int");
}

#[test]
fn port_goes_to_the_component_being_run_and_bad_values_are_all_reported() {
    let mut s = Settings::default();
    s.apply_env([("PORT", "7000")], PortTarget::Consumers)
        .unwrap();
    assert_eq!(s.consumers.listen.port, 7000);
    let err = s
        .apply_env(
            [
                ("PORT", "http"),
                ("REDIS_DB", "x"),
                ("LOG_FORMAT", "xml"),
                ("REDIS_KEY_FORMAT", "v2"),
            ],
            PortTarget::Admin,
        )
        .unwrap_err();
    assert_eq!(err.0.len(), 4, "{err}");
    assert!(
        err.to_string().contains("'v2' is not 'skye' or 'original'"),
        "{err}"
    );
}

#[test]
fn storage_blocks_go_to_their_conf_id() {
    let mut s = Settings::default();
    s.apply_env(
        [
            ("STORAGE_EMBEDDING_STORE_COUNT", "3"),
            ("STORAGE_EMBEDDING_STORE_1_CONTACT_POINTS", "a1,a2"),
            ("STORAGE_EMBEDDING_STORE_1_KEYSPACE", "ks1"),
            ("STORAGE_EMBEDDING_STORE_3_CONTACT_POINTS", "c1"),
            ("storage_embedding_store_3_keyspace", "ks3"),
            ("STORAGE_AGGREGATOR_DB_2_CONTACT_POINTS", "b1"),
            ("STORAGE_AGGREGATOR_DB_2_KEYSPACE", "agg2"),
            ("STORAGE_AGGREGATOR_DB_0_KEYSPACE", "ignored"),
        ],
        PortTarget::Consumers,
    )
    .unwrap();
    let b = &s.backends;
    assert_eq!(b.scylla_embeddings.contact_points, ["a1", "a2"]);
    assert_eq!(b.embeddings_blocks()[&3].keyspace, "ks3");
    assert_eq!(b.aggregator_blocks()[&2].contact_points, ["b1"]);
    assert!(!b.scylla_aggregator.enabled());
    s.validate().unwrap();

    s.backends
        .scylla_embeddings_by_conf_id
        .insert("one".into(), ScyllaSettings::default());
    let err = s.validate().unwrap_err().to_string();
    assert!(err.contains("scylla_embeddings_by_conf_id.one"), "{err}");
    assert!(err.contains("must not be empty"), "{err}");
}

#[test]
fn validation_reports_port_clashes_and_missing_etcd_endpoints() {
    let mut s = Settings::default();
    s.serving.listen.port = s.admin.port;
    s.backends.config_store = ConfigStoreKind::Etcd;
    s.auth_tokens = vec![" padded".into()];
    let err = s.validate().unwrap_err();
    assert_eq!(err.0.len(), 3, "{err}");
}

#[test]
fn masking_hides_every_secret() {
    let mut s = Settings {
        auth_tokens: vec!["secret-token".into()],
        ..Settings::default()
    };
    s.backends.redis.password = "pw".into();
    s.backends.scylla_aggregator_by_conf_id.insert(
        "2".into(),
        ScyllaSettings {
            password: "scylla-pw".into(),
            ..ScyllaSettings::default()
        },
    );
    let m = s.masked();
    let text = format!("{m:?}");
    assert!(!text.contains("secret-token") && !text.contains("\"pw\""));
    assert!(!text.contains("scylla-pw"), "{text}");
    assert_eq!(m.auth_tokens, [MASK]);
}

#[test]
fn the_integrity_check_runs_in_the_background_by_default_and_can_be_turned_off() {
    let mut s = Settings::default();
    assert_eq!(s.backends.integrity_check, IntegrityCheck::Background);
    s.apply_env([("SKYE_INTEGRITY_CHECK", "Off")], PortTarget::Admin)
        .unwrap();
    assert_eq!(s.backends.integrity_check, IntegrityCheck::Off);
    let err = s
        .apply_env([("SKYE_INTEGRITY_CHECK", "sometimes")], PortTarget::Admin)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("'sometimes' is not full, background or off"),
        "{err}"
    );
    let file: Settings =
        serde_json::from_value(serde_json::json!({"backends": {"integrity_check": "off"}}))
            .unwrap();
    assert_eq!(file.backends.integrity_check, IntegrityCheck::Off);
}
