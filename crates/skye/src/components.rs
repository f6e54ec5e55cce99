//! Starting the components and stopping them gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::json;
use skye_admin::{AdminState, AuthTokens};
use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::cache::DistributedCache;
use skye_core::event_log::{EventLog, topics};
use skye_core::settings::{Listen, Settings};
use skye_core::storage::{AggregatorStore, EmbeddingStore};
use skye_core::vector_store::VectorStore;
use skye_engine::breaker::{BackendObserver, BreakerConfig, GuardedCache, GuardedVectorRead};
use skye_engine::ingest::embedding::EmbeddingIngestor;
use skye_engine::ingest::failures::RedriveCounts;
use skye_engine::ingest::progress::JobProgress;
use skye_engine::ingest::realtime::{DeltaHandler, RealtimeHandler};
use skye_engine::ingest::runner::{
    self, BatchHandler, ConsumerConfig, ConsumerStats, EmbeddingHandler,
};
use skye_engine::lifecycle::{Lifecycle, Reconciler};
use skye_engine::observed::Observed;
use skye_engine::registry::Registry;
use skye_engine::routing::{StorageRouter, VectorRouter};
use skye_engine::search::embeddings::EmbeddingService;
use skye_engine::search::freshness::{EpochPublisher, SharedEpochs};
use skye_engine::search::recall::{RecallConfig, RecallMonitor};
use skye_engine::search::similar::{Limits, SimilarService};
use skye_proto::skye_embedding_service_server::SkyeEmbeddingServiceServer;
use skye_proto::skye_similar_candidate_service_server::SkyeSimilarCandidateServiceServer;
use skye_serving::{AuthInterceptor, Embeddings, Metrics, SimilarCandidates};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::ingest_api::{self, IngestState};
use crate::telemetry::Telemetry;

/// How often the lifecycle reconciler looks for work.
const RECONCILE_TICK: Duration = Duration::from_millis(200);

/// Which components run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Components {
    pub admin: bool,
    pub serving: bool,
    pub consumers: bool,
    /// Load the demo catalog and print a first search once up (standalone only).
    pub demo: bool,
}

/// A fired-once shutdown signal every server waits on.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once SIGINT or SIGTERM arrives.
    pub fn on_signals() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested; draining");
            let _ = tx.send(true);
        });
        Shutdown(rx)
    }

    /// The raw signal, for loops that select on it.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }

    pub async fn wait(mut self) {
        // An error means the sender is gone, which also means: stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn bind(component: &'static str, listen: &Listen) -> anyhow::Result<TcpListener> {
    let addr = format!("{}:{}", listen.host, listen.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("{component}: cannot listen on {addr}"))?;
    let local: SocketAddr = listener.local_addr()?;
    tracing::info!(component, addr = %local, "listening");
    Ok(listener)
}

fn serve(
    set: &mut JoinSet<anyhow::Result<()>>,
    component: &'static str,
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) {
    set.spawn(async move {
        // No Nagle: small gRPC responses must not wait for the peer's delayed ACK (~40 ms).
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.wait())
            .await
            .with_context(|| format!("{component} server failed"))?;
        tracing::info!(component, "stopped");
        Ok(())
    });
}

/// Runs the selected components until a shutdown signal, then drains them.
pub async fn run(settings: Settings, which: Components) -> anyhow::Result<()> {
    let store = skye_backends::factory::open_config_store(&settings)
        .await
        .with_context(|| {
        format!(
            "cannot open the config store under {} (separate admin/serving/consumers processes need \
             a shared config store such as etcd; `skye standalone` runs all three in one process)",
            settings.data_dir.display()
        )
    })?;
    let registry = Arc::new(Registry::open(store, &settings.app_name).await?);
    let metrics = Arc::new(Metrics::default());
    let backends = Backends::open(&settings, &registry)
        .await?
        .observed(metrics.clone());
    let lifecycle = Arc::new(Lifecycle::new(
        registry.clone(),
        backends.vectors.clone(),
        backends.embeddings.clone(),
        backends.events.clone(),
    ));
    let auth = Arc::new(AuthTokens::new(settings.auth_tokens.clone()));
    if auth.enabled() {
        tracing::info!(tokens = settings.auth_tokens.len(), "authentication on");
    } else {
        tracing::warn!("authentication off: no auth_tokens configured");
    }
    let telemetry = Telemetry::new(
        metrics,
        registry.clone(),
        backends.embedded.clone(),
        backends.events.clone(),
    );
    let shutdown = Shutdown::on_signals();
    let mut servers = JoinSet::new();
    {
        // A background index build would hold the exit until it finished (minutes at 1M
        // points): it stops between steps instead, and its points are linked after the restart.
        let (stop, embedded) = (shutdown.clone(), backends.embedded.clone());
        servers.spawn(async move {
            stop.wait().await;
            embedded.close();
            Ok(())
        });
    }
    let mut serving_port = None;
    let console_serving = crate::console::ServingPort::default();
    if which.admin {
        let listener = bind("admin", &settings.admin).await?;
        let redriven = Arc::new(RedriveCounts::default());
        telemetry.watch_redrives(redriven.clone());
        let router = skye_admin::router(AdminState {
            registry: registry.clone(),
            lifecycle: lifecycle.clone(),
            auth: auth.clone(),
            redriven,
        })
        .merge(crate::console::router(console_serving.clone()))
        .merge(metrics_route(telemetry.clone()));
        serve(&mut servers, "admin", listener, router, shutdown.clone());
        let reconciler = Reconciler::new(lifecycle.clone());
        let stop = shutdown.clone();
        servers.spawn(async move {
            reconciler.run(RECONCILE_TICK, stop.wait()).await;
            Ok(())
        });
    }
    if which.serving {
        let listener = bind("serving", &settings.serving.listen).await?;
        serving_port = listener.local_addr().ok().map(|a| a.port());
        if let Some(port) = serving_port {
            let _ = console_serving.set(port);
        }
        let metrics = telemetry.metrics().clone();
        backends.embedded.observe_plans(metrics.clone());
        // Inside the breaker: the exact re-runs reach the backend without counting as its
        // latency, and a chosen search is one the breaker let through.
        let monitor = Arc::new(RecallMonitor::new(
            backends.vectors.clone(),
            RecallConfig {
                sample_every: settings.serving.recall_sample_every,
                window: settings.serving.recall_window,
                max_in_flight: settings.serving.recall_max_in_flight,
            },
        ));
        telemetry.watch_recall(monitor.clone());
        let guarded = Arc::new(GuardedVectorRead::new(
            monitor.clone(),
            BreakerConfig {
                failure_threshold: settings.serving.breaker_failure_threshold,
                open_for: Duration::from_millis(settings.serving.breaker_open_ms),
            },
            Some(metrics.clone() as Arc<dyn BackendObserver>),
        ));
        let deadline = Duration::from_millis(settings.serving.default_deadline_ms);
        let engine = SimilarService::new(
            registry.clone(),
            guarded,
            Limits {
                max_limit: settings.serving.max_limit,
                cache_bytes: settings.serving.in_memory_cache_size_in_bytes,
                max_concurrent: settings.serving.max_concurrent_searches,
            },
        )
        .with_embeddings(backends.embeddings.clone())
        .with_aggregator(backends.aggregator.clone());
        let vectors = EmbeddingService::new(
            registry.clone(),
            backends.embeddings.clone(),
            settings.serving.in_memory_cache_size_in_bytes,
        );
        let format = settings.backends.redis.key_format;
        let (engine, vectors) = match distributed_cache(&settings)? {
            Some(cache) => {
                // Observed outside the breaker: its refusals count as failed calls.
                let observer = metrics.clone() as Arc<dyn BackendObserver>;
                let cache: Arc<dyn DistributedCache> =
                    Arc::new(Observed::new(cache, "cache", observer));
                tracing::info!(addr = %settings.backends.redis.addr, key_format = ?format,
                    "distributed cache: Redis");
                (
                    engine
                        .with_distributed_cache(cache.clone())
                        .with_distributed_format(format),
                    vectors.with_distributed_cache(cache, format),
                )
            }
            None => (engine, vectors),
        };
        telemetry.watch_cache("similar", engine.cache_figures());
        telemetry.watch_cache("embeddings", vectors.cache_figures());
        let embedding_service =
            Embeddings::new(vectors, metrics.clone()).with_default_deadline(deadline);
        let similar_service =
            SimilarCandidates::new(engine, metrics.clone()).with_default_deadline(deadline);
        let rest = skye_serving::rest::router(
            similar_service.clone(),
            embedding_service.clone(),
            AuthInterceptor::new(auth.clone()),
        );
        let embeddings = SkyeEmbeddingServiceServer::with_interceptor(
            embedding_service,
            AuthInterceptor::new(auth.clone()),
        );
        let grpc = SkyeSimilarCandidateServiceServer::with_interceptor(
            similar_service,
            AuthInterceptor::new(auth.clone()),
        );
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<SkyeSimilarCandidateServiceServer<SimilarCandidates>>()
            .await;
        health_reporter
            .set_serving::<SkyeEmbeddingServiceServer<Embeddings>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(skye_proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("cannot build the gRPC reflection service")?;
        // gRPC (HTTP/2: the API, grpc.health.v1, reflection) and the HTTP/1 health checks share
        // the port, as in the original.
        let router = tonic::service::Routes::new(grpc)
            .add_service(embeddings)
            .add_service(health)
            .add_service(reflection)
            .into_axum_router()
            .merge(rest)
            .merge(serving_health(registry.clone()))
            .merge(recall_route(registry.clone(), monitor))
            .merge(metrics_route(telemetry.clone()));
        serve(&mut servers, "serving", listener, router, shutdown.clone());
    }
    if which.consumers {
        let listener = bind("consumers", &settings.consumers.listen).await?;
        let mut stats = Vec::new();
        let progress = Arc::new(JobProgress::default());
        telemetry.watch_jobs(progress.clone());
        let consumers: [(ConsumerConfig, Arc<dyn BatchHandler>); 3] = [
            (
                ConsumerConfig {
                    name: "embedding",
                    group: group_name(
                        &settings.consumers.embedding_group,
                        &settings.app_name,
                        "embedding-consumer",
                    ),
                    topics: settings.consumers.embedding_topics.clone(),
                    failure_topic: topics::EMBEDDING_FAILURE.to_string(),
                    batch_size: settings.consumers.batch_size,
                    poll_wait: Duration::from_secs(1),
                },
                Arc::new(EmbeddingHandler(
                    EmbeddingIngestor::new(
                        backends.vectors.clone(),
                        backends.embeddings.clone(),
                        backends.aggregator.clone(),
                        lifecycle.clone(),
                    )
                    .with_progress(progress),
                )),
            ),
            (
                ConsumerConfig {
                    name: "realtime",
                    group: group_name(
                        &settings.consumers.realtime_group,
                        &settings.app_name,
                        "realtime-consumer",
                    ),
                    topics: settings.consumers.realtime_topics.clone(),
                    failure_topic: topics::REALTIME_RETRY.to_string(),
                    batch_size: settings.consumers.batch_size,
                    poll_wait: Duration::from_secs(1),
                },
                Arc::new(RealtimeHandler::new(
                    registry.clone(),
                    backends.embeddings.clone(),
                    backends.aggregator.clone(),
                    backends.events.clone(),
                )),
            ),
            (
                ConsumerConfig {
                    name: "realtime-delta",
                    group: group_name(
                        &settings.consumers.delta_group,
                        &settings.app_name,
                        "realtime-delta-consumer",
                    ),
                    topics: vec![topics::REALTIME_DELTA.to_string()],
                    failure_topic: topics::REALTIME_DELTA_FAILURE.to_string(),
                    batch_size: settings.consumers.batch_size,
                    poll_wait: Duration::from_secs(1),
                },
                Arc::new(DeltaHandler::new(
                    registry.clone(),
                    backends.vectors.clone(),
                )),
            ),
        ];
        for (config, handler) in consumers {
            let st = Arc::new(ConsumerStats::default());
            stats.push((config.name, st.clone()));
            telemetry.watch_consumer(&config, st.clone());
            let (log, stop) = (backends.events.clone(), shutdown.receiver());
            servers.spawn(async move {
                runner::run(log, config, handler, st, stop).await;
                Ok(())
            });
        }
        let ingest = IngestState {
            log: backends.events.clone(),
            embedding_topics: settings.consumers.embedding_topics.clone(),
            realtime_topics: settings.consumers.realtime_topics.clone(),
            refused: Arc::default(),
            binary_records: skye_backends::factory::embedded_event_log(&settings),
        };
        serve(
            &mut servers,
            "consumers",
            listener,
            consumers_router(registry.clone(), stats, ingest, auth.clone())
                .merge(metrics_route(telemetry.clone())),
            shutdown.clone(),
        );
    }
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        config_revision = registry.snapshot().revision,
        "skye is up"
    );
    if which.demo {
        let demo = crate::demo::Demo {
            registry: registry.clone(),
            lifecycle: lifecycle.clone(),
            events: backends.events.clone(),
            search: SimilarService::new(
                registry.clone(),
                backends.vectors.clone(),
                Limits {
                    max_limit: settings.serving.max_limit,
                    cache_bytes: 1 << 20,
                    max_concurrent: 4,
                },
            )
            .with_embeddings(backends.embeddings.clone())
            .with_aggregator(backends.aggregator.clone()),
            serving_port: serving_port.unwrap_or(settings.serving.listen.port),
        };
        servers.spawn(async move {
            if let Err(e) = demo.run().await {
                tracing::error!(error = %format!("{e:#}"), "demo failed");
            }
            Ok(())
        });
    }
    let mut result = Ok(());
    while let Some(joined) = servers.join_next().await {
        let outcome = joined.context("server task panicked").and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!(error = %format!("{e:#}"), "server stopped with an error");
            result = Err(e);
            servers.abort_all();
        }
    }
    drop(servers);
    if let Ok(registry) = Arc::try_unwrap(registry) {
        registry.shutdown().await;
    }
    result
}

/// `GET /metrics`: the process's Prometheus exposition (every component's metrics).
fn metrics_route(telemetry: Telemetry) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let telemetry = telemetry.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    telemetry.render().await,
                )
            }
        }),
    )
}

/// `GET /api/v1/models/{entity}/{model}/variants/{variant}/recall`: the recall monitor's
/// window for one variant (serving port: the monitor watches this process's searches).
fn recall_route(registry: Arc<Registry>, monitor: Arc<RecallMonitor>) -> Router {
    let sample_every = monitor.config().sample_every;
    Router::new().route(
        "/api/v1/models/{entity}/{model}/variants/{variant}/recall",
        get(
            move |axum::extract::Path((entity, model, variant)): axum::extract::Path<(
                String,
                String,
                String,
            )>| {
                let (registry, monitor) = (registry.clone(), monitor.clone());
                async move {
                    let snapshot = registry.snapshot();
                    let v = match snapshot.variant(&entity, &model, &variant) {
                        Ok(v) => v,
                        Err(e) => {
                            let body = json!({"error": e.to_string()});
                            return (axum::http::StatusCode::NOT_FOUND, axum::Json(body));
                        }
                    };
                    let figures = monitor.of(&v.key());
                    let body = json!({
                        "entity": entity, "model": model, "variant": variant,
                        "sample_every": sample_every,
                        "recall": figures.as_ref().map(|f| f.recall).filter(|r| r.is_finite()),
                        "samples": figures.as_ref().map_or(0, |f| f.samples),
                        "checked": figures.as_ref().map_or(0, |f| f.checked),
                        "skipped_busy": figures.as_ref().map_or(0, |f| f.skipped_busy),
                    });
                    (axum::http::StatusCode::OK, axum::Json(body))
                }
            },
        ),
    )
}

/// Serving's HTTP side (as the original: `/health` → pong, `/health/self` → true).
fn serving_health(registry: Arc<Registry>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({"message": "pong"})) }),
        )
        .route(
            "/health/self",
            get(|| async { axum::Json(json!({"message": "true"})) }),
        )
        .route(
            "/health/config",
            get(move || config_status(registry.clone())),
        )
}

fn consumers_router(
    registry: Arc<Registry>,
    stats: Vec<(&'static str, Arc<ConsumerStats>)>,
    ingest: IngestState,
    auth: Arc<AuthTokens>,
) -> Router {
    let refused = ingest.refused.clone();
    let api = Router::new()
        .route("/api/v1/ingest/{topic}", post(ingest_api::ingest))
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            skye_admin::require_token,
        ))
        .layer(DefaultBodyLimit::max(ingest_api::MAX_INGEST_BYTES))
        .with_state(ingest);
    let stats = Arc::new(stats);
    Router::new()
        .route(
            "/health",
            get(move || {
                let (stats, refused) = (stats.clone(), refused.clone());
                async move {
                    let consumers: serde_json::Map<String, serde_json::Value> = stats
                        .iter()
                        .map(|(name, s)| (name.to_string(), json!(s.view())))
                        .collect();
                    // Lost events mark the component degraded until it restarts (still 200: a
                    // restart by a liveness probe would only hide the loss).
                    let degraded = stats.iter().any(|(_, s)| s.degraded());
                    axum::Json(json!({
                        "message": "Application is up!!!",
                        "status": if degraded { "degraded" } else { "ok" },
                        "consumers": consumers,
                        "ingest": {"refused_event_log_full": refused.load(std::sync::atomic::Ordering::Relaxed)},
                    }))
                }
            }),
        )
        .route(
            "/health/config",
            get(move || config_status(registry.clone())),
        )
        .merge(api)
}

/// The backends, opened once per process (embedded ones under the data directory) and shared
/// by every component.
struct Backends {
    /// Every collection: the embedded engine, or the variant's remote vector DB.
    vectors: Arc<dyn VectorStore>,
    /// The embedded engine alone (its planner reports to serving's metrics).
    embedded: Arc<EmbeddedVectorStore>,
    embeddings: Arc<dyn EmbeddingStore>,
    aggregator: Arc<dyn AggregatorStore>,
    events: Arc<dyn EventLog>,
}

impl Backends {
    /// Every backend call timed and reported (`skye_backend_request_seconds`); serving's
    /// vector reads are reported by their breaker instead.
    fn observed(self, observer: Arc<Metrics>) -> Self {
        let o = observer as Arc<dyn BackendObserver>;
        Backends {
            vectors: Arc::new(Observed::new(self.vectors, "vector", o.clone())),
            embedded: self.embedded,
            embeddings: Arc::new(Observed::new(self.embeddings, "embeddings", o.clone())),
            aggregator: Arc::new(Observed::new(self.aggregator, "aggregator", o.clone())),
            events: Arc::new(Observed::new(self.events, "event_log", o)),
        }
    }
}

/// Moves the collections of a data directory written before typed collections (flat
/// `<variant>_<model>_<version>` directories) to the registered variants that own them.
fn adopt_legacy_collections(
    embedded: &EmbeddedVectorStore,
    registry: &Registry,
) -> anyhow::Result<()> {
    let claims: Vec<_> = registry
        .snapshot()
        .variants()
        .filter(|v| v.vector_db_type == skye_core::domain::VectorDbType::Embedded)
        .flat_map(|v| {
            let mut versions = vec![v.vector_db_read_version, v.vector_db_write_version];
            versions.dedup();
            versions
                .into_iter()
                .map(|n| v.collection(n))
                .collect::<Vec<_>>()
        })
        .collect();
    let ambiguous = embedded
        .adopt_legacy(&claims)
        .context("cannot move the collections of an older release")?;
    if !ambiguous.is_empty() {
        tracing::error!(collections = ?ambiguous,
            "collections of an older release that several variants claim were left in place; \
             re-run a RESET job for those variants");
    }
    Ok(())
}

impl Backends {
    async fn open(settings: &Settings, registry: &Arc<Registry>) -> anyhow::Result<Self> {
        // The collections load (snapshot parse, payload indexes) on a blocking thread while the
        // embedding store and the event log open (integrity checks) here: on two or more
        // cores the restart takes the longer of the two, not their sum.
        let collections = settings.data_dir.join("collections");
        let opening = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let store = EmbeddedVectorStore::open(&collections);
            (store, started.elapsed())
        });
        let started = Instant::now();
        let storage = skye_backends::factory::open_storage(settings)
            .await
            .context("cannot open the embedding/aggregator store");
        let events =
            skye_backends::factory::open_event_log(settings).context("cannot open the event bus");
        let stores_took = started.elapsed();
        let (embedded, took) = opening.await.context("opening the collections failed")?;
        let embedded = Arc::new(embedded.context("cannot open the embedded vector store")?);
        tracing::info!(
            collections = embedded.collection_count(),
            collections_seconds = took.as_secs_f64(),
            stores_seconds = stores_took.as_secs_f64(),
            "embedded stores open"
        );
        adopt_legacy_collections(&embedded, registry)?;
        let (storage, events) = (storage?, events?);
        let (embeddings, aggregator): (Arc<dyn EmbeddingStore>, Arc<dyn AggregatorStore>) =
            if storage.embeddings_by_conf_id.is_empty() && storage.aggregator_by_conf_id.is_empty()
            {
                (storage.embeddings, storage.aggregator)
            } else {
                tracing::info!(
                    embeddings = ?storage.embeddings_by_conf_id.keys().collect::<Vec<_>>(),
                    aggregator = ?storage.aggregator_by_conf_id.keys().collect::<Vec<_>>(),
                    "ScyllaDB blocks by store conf_id"
                );
                let router = Arc::new(StorageRouter::new(
                    registry.clone(),
                    (storage.embeddings, storage.embeddings_by_conf_id),
                    (storage.aggregator, storage.aggregator_by_conf_id),
                ));
                (router.clone(), router)
            };
        let vectors: Arc<dyn VectorStore> = Arc::new(VectorRouter::new(
            registry.clone(),
            embedded.clone(),
            skye_backends::factory::remote_vector_stores(),
        ));
        // Writes to remote collections publish their new epoch for every pod's result cache.
        let vectors = match distributed_cache(settings)? {
            Some(cache) => Arc::new(EpochPublisher::new(vectors, SharedEpochs::new(cache))),
            None => vectors,
        };
        Ok(Backends {
            vectors,
            embedded,
            embeddings,
            aggregator,
            events,
        })
    }
}

/// A consumer group: the configured name, else `<app_name>-<family>`.
fn group_name(configured: &str, app: &str, family: &str) -> String {
    if configured.is_empty() {
        format!("{app}-{family}")
    } else {
        configured.to_string()
    }
}

/// The distributed cache (Redis when configured) behind its breaker: a cache that is down or
/// frozen costs each search nothing once the breaker has opened.
fn distributed_cache(settings: &Settings) -> anyhow::Result<Option<Arc<dyn DistributedCache>>> {
    Ok(
        skye_backends::factory::open_distributed_cache(settings)?.map(|cache| {
            let config = BreakerConfig {
                failure_threshold: settings.serving.breaker_failure_threshold,
                open_for: Duration::from_millis(settings.serving.breaker_open_ms),
            };
            Arc::new(GuardedCache::new(cache, config)) as Arc<dyn DistributedCache>
        }),
    )
}

/// The revision of the config this process serves, and keys it could not decode.
async fn config_status(registry: Arc<Registry>) -> axum::Json<serde_json::Value> {
    let snap = registry.snapshot();
    axum::Json(json!({"revision": snap.revision, "load_errors": snap.load_errors}))
}
