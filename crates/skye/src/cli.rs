//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "skye",
    version,
    about = "Skye: vector similarity search for similar-items retrieval"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts; they override the config file and the environment.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (TOML, or YAML with a .yaml/.yml extension).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded backends' files.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log output format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Log filter, e.g. `info` or `skye_engine=debug,info`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Address every component binds to (default 0.0.0.0).
    #[arg(long, global = true, value_name = "HOST")]
    pub bind: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Admin, serving and consumers in one process on embedded backends.
    Standalone(StandaloneArgs),
    /// The admin HTTP API alone.
    Admin(PortArgs),
    /// The serving API alone.
    Serving(PortArgs),
    /// The ingestion consumers alone.
    Consumers(PortArgs),
    /// Ingest a file into a model through a running Skye (job, events, EOFs, wait).
    Ingest(Box<IngestArgs>),
    /// Measurements (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The embedded ingestion path in-process: log append, consume, index build.
    Ingest(BenchIngestArgs),
    /// Closed-loop search load against a running Skye (or the engine, `--in-process`).
    Grpc(Box<BenchGrpcArgs>),
    /// Steady searches and real-time events against a `skye standalone` child for a long
    /// period, with its RSS and latency sampled; fails if memory grows or a request fails.
    Soak(BenchSoakArgs),
    /// A catalog of N points (with payloads) through `skye ingest` into a `skye standalone` child:
    /// ingest rate, time to COMPLETED, RSS with the engine's breakdown, restart-to-serving time,
    /// QPS / p50 / p99 / recall@10 unfiltered and filtered; one line per size.
    Scale(BenchScaleArgs),
    /// Skye embedded, Skye serving from Qdrant, and Qdrant queried directly over gRPC, on the
    /// same catalog in one run: ingest rate and time to searchable, recall@10 and QPS / p50 /
    /// p99 at each concurrency, unfiltered and filtered (needs a build with `--features qdrant`).
    Qdrant(BenchQdrantArgs),
}

#[derive(Debug, Args)]
pub struct BenchQdrantArgs {
    /// A float32 `.npy` matrix (the last `--queries` rows are held out as queries); default:
    /// `--points` clustered unit vectors of `--dim` dimensions.
    #[arg(long, value_name = "FILE")]
    pub vectors: Option<PathBuf>,
    /// Catalog size (with `--vectors`: the first N rows, 0 = all).
    #[arg(long, default_value_t = 100_000)]
    pub points: usize,
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Queries per kind.
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// Concurrent closed-loop clients, comma-separated; each is a measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub concurrency: Vec<usize>,
    /// Seconds of load per query kind, target and concurrency.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// `hnsw_ef` values of the Qdrant-direct recall/QPS curve (unfiltered, at the highest
    /// concurrency).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    pub ef_sweep: Vec<u64>,
    /// A running Qdrant's gRPC URL; default: start one with `--qdrant-start`.
    #[arg(long, value_name = "URL")]
    pub qdrant_url: Option<String>,
    /// Script that starts a Qdrant server: `SCRIPT DATA_DIR HTTP_PORT GRPC_PORT`, printing its PID.
    #[arg(
        long,
        value_name = "SCRIPT",
        default_value = "../shared/qdrant/start.sh"
    )]
    pub qdrant_start: PathBuf,
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Events per ingest request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds to wait for each COMPLETED.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Skip timing Qdrant's own ingest (its index build takes as long as Skye → Qdrant's).
    #[arg(long)]
    pub no_direct_ingest: bool,
    /// Keep the data directory and the logs.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchScaleArgs {
    /// Catalog sizes, comma-separated; each is a full run on a fresh data directory.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    pub points: Vec<usize>,
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Partitions of the model (events are spread over them, one EOF each).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Queries per kind, for recall (exact top-10 by a scan of the catalog) and the load.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Seconds of closed-loop load per query kind.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Search workers of the load.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Events per ingest request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds to wait for COMPLETED.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Keep the data directories and server logs (default: deleted after each size).
    #[arg(long)]
    pub keep: bool,
    /// Config file for the server.
    #[arg(long, value_name = "FILE")]
    pub server_config: Option<PathBuf>,
    /// Drop the page cache between the stop and the restart (a cold restart, as after a
    /// reboot; needs root: writes /proc/sys/vm/drop_caches).
    #[arg(long)]
    pub cold_restart: bool,
    /// Send the catalog as JSON arrays (`skye ingest --json`) instead of binary events.
    #[arg(long)]
    pub json_ingest: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchSoakArgs {
    /// Seconds of load.
    #[arg(long, default_value_t = 600)]
    pub duration: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub sample: u64,
    /// Catalog size loaded before the load starts.
    #[arg(long, default_value_t = 20_000)]
    pub vectors: usize,
    #[arg(long, default_value_t = 64)]
    pub dim: usize,
    /// Search workers (closed loop, fresh random vectors: every search a cache miss).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Real-time flag events per second sent through the HTTP ingest API.
    #[arg(long, default_value_t = 50)]
    pub events_per_second: u64,
    /// RSS growth tolerated from the first to the last quarter of the run (or 10 %, if larger).
    #[arg(long, default_value_t = 64)]
    pub max_rss_growth_mb: u64,
    /// Keep the data directory and server log afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Config file for the server (e.g. a low `serving.max_concurrent_searches` for an
    /// overload run).
    #[arg(long, value_name = "FILE")]
    pub server_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BenchIngestArgs {
    #[arg(long, default_value_t = 100_000)]
    pub vectors: usize,
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Events per log append and per consumer batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Stop after the consume phase.
    #[arg(long)]
    pub skip_index: bool,
    /// Append the events as their JSON text (what Kafka carries) instead of the binary encoding
    /// the ingest API stores in the embedded log.
    #[arg(long)]
    pub json_records: bool,
    /// Give every item payload fields to filter on: `cat` (keyword, 100 values, 1 % each),
    /// `shop` (keyword, 10,000 values), `price` (integer, 0..10,000), independent of each other.
    #[arg(long)]
    pub payload: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchGrpcArgs {
    /// Serving URL.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub url: String,
    /// Query the engine on `--data-dir` directly instead (Skye must not be running on it).
    #[arg(long)]
    pub in_process: bool,
    /// Send the calls through tonic's `Channel` instead of the SDK's direct HTTP/2 transport.
    #[arg(long)]
    pub tonic_channel: bool,
    #[arg(long, default_value = "skye")]
    pub app_name: String,
    #[arg(long)]
    pub entity: String,
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub variant: String,
    /// Dimension of the random query vectors.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Query by candidate ids drawn from `0..N` instead of by vectors.
    #[arg(long, value_name = "N")]
    pub ids: Option<u64>,
    /// Distinct queries cycled through (1 = every request after the first hits the cache; 0 =
    /// a fresh random query every time, never a cache hit).
    #[arg(long, default_value_t = 10_000)]
    pub distinct: usize,
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, env = "SKYE_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A request filter, `FIELD:OP:V1|V2…` (OP as in the API: IN, NIN, EX, SEARCH, LTE, GTE, BTWE,
    /// BTW, LT, GT, LAST_X_DAYS, WTHN); repeatable, all in one global group.
    #[arg(long = "filter", value_name = "FIELD:OP:VALUES")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Entity of the model.
    #[arg(long)]
    pub entity: String,
    /// Model to ingest into.
    #[arg(long)]
    pub model: String,
    /// Variants to (re)build (repeatable); default: every enabled variant of the model.
    #[arg(long = "variant")]
    pub variants: Vec<String>,
    /// Candidate ids of a `.npy` input, one per line (default: row numbers).
    #[arg(long, value_name = "FILE")]
    pub ids: Option<PathBuf>,
    /// Admin base URL (default: http://127.0.0.1:<admin port>).
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// Consumers base URL (default: http://127.0.0.1:<consumers port>).
    #[arg(long, value_name = "URL")]
    pub consumers_url: Option<String>,
    /// Topic to post to (default: the model's topic-name, else skye.embedding).
    #[arg(long)]
    pub topic: Option<String>,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Return once the events are accepted instead of waiting for COMPLETED.
    #[arg(long)]
    pub no_wait: bool,
    /// Send the events as JSON arrays instead of Skye's binary events (for a server older
    /// than the binary ingest format, or to see what goes over the wire).
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for COMPLETED.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Auth token (default: the first configured auth token).
    #[arg(long, env = "SKYE_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// JSON lines (.jsonl), float32 NumPy (.npy) or Parquet (.parquet) file.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// Admin HTTP port (0 = any free port).
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Serving port (0 = any free port).
    #[arg(long)]
    pub serving_port: Option<u16>,
    /// Consumers HTTP port (0 = any free port).
    #[arg(long)]
    pub consumers_port: Option<u16>,
    /// Load a small demo catalog through the real pipeline and print a first search.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// Port to listen on (0 = any free port).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults → file → environment → flags), secrets masked.
    Print,
}
