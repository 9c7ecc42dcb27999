//! Whirl's composition root: the only crate that names SPI implementations.
//!
//! - [`Config`] is the whole configuration: each pluggable part is a section whose `type` string
//!   selects the implementation (a serde-tagged enum), and each implementation owns its settings
//!   struct. Unknown sections, keys or types are errors that name them.
//! - The built-in default (`default.toml`, compiled in) is the embedded standalone set; a user's
//!   file replaces whole sections of it, so the zero-config default goes through the same loading
//!   path as any user configuration.
//! - [`run_standalone`], [`run_controller`] and [`run_invoker`] wire the implementations together
//!   and serve the platform, a controller, or an invoker.

pub mod admin;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use whirl_invoker::feed::FeedConfig;
use whirl_model::identity::well_known;
use whirl_model::RuntimeManifest;
use whirl_spi::{
    ActivationStore, Authenticator, ContainerFactory, EntityStore, LoadBalancer, LogStore,
    Messaging, SubjectStore,
};

/// The built-in configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub controller: whirl_controller::ControllerConfig,
    pub invoker: whirl_invoker::InvokerConfig,
    /// The balancer every action uses unless `[load_balancer_resolver]` routes it elsewhere;
    /// named by its type.
    pub load_balancer: LoadBalancerConfig,
    /// More balancers that run beside it, by name (`[load_balancers.<name>]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub load_balancers: BTreeMap<String, LoadBalancerConfig>,
    /// Which balancer serves an action.
    #[serde(default)]
    pub load_balancer_resolver: ResolverConfig,
    pub container_factory: ContainerFactoryConfig,
    pub log_store: LogStoreConfig,
    pub messaging: MessagingConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub runtimes: RuntimeManifest,
    /// `[telemetry]`: OTLP span export (metrics and the dashboard are `[controller]` switches).
    #[serde(default)]
    pub telemetry: whirl_telemetry::TelemetryConfig,
}

/// `[server]`: where the REST API listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub port: u16,
    /// The API host actions are told (`__OW_API_HOST`); default `http://<bind>:<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_host: Option<String>,
}

/// `[load_balancer]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LoadBalancerConfig {
    Lean(whirl_lb_lean::LeanBalancerConfig),
    Sharding(whirl_lb_sharding::ShardingBalancerConfig),
    Direct(whirl_lb_direct::DirectBalancerConfig),
}

impl LoadBalancerConfig {
    /// The type name (the instance name of `[load_balancer]`).
    pub fn type_name(&self) -> &'static str {
        match self {
            LoadBalancerConfig::Lean(_) => "lean",
            LoadBalancerConfig::Sharding(_) => "sharding",
            LoadBalancerConfig::Direct(_) => "direct",
        }
    }
}

/// `[load_balancer_resolver]`: which balancer serves an action.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ResolverConfig {
    /// `[load_balancer]` serves everything.
    #[default]
    Single,
    /// By the action's kind, else `default`; an action annotated with `annotation` (a balancer's
    /// name) goes to that balancer if it is one of `annotation_allows`.
    Kind {
        default: String,
        #[serde(default)]
        kinds: HashMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation: Option<String>,
        #[serde(default)]
        annotation_allows: Vec<String>,
    },
}

/// `[container_factory]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ContainerFactoryConfig {
    Process(whirl_container_process::ProcessFactoryConfig),
    Docker(whirl_container_docker::DockerFactoryConfig),
}

/// `[log_store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LogStoreConfig {
    Activation(whirl_logstore_activation::ActivationLogStoreConfig),
    File(whirl_logstore_file::FileLogStoreConfig),
    Syslog(whirl_logstore_syslog::SyslogLogStoreConfig),
}

/// `[messaging]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MessagingConfig {
    Memory(whirl_messaging_memory::MemoryMessagingConfig),
    Nats(whirl_messaging_nats::NatsMessagingConfig),
}

/// `[store]`: entities, activations and subjects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    Sqlite(whirl_store_sqlite::SqliteStoreConfig),
    Postgres(whirl_store_postgres::PostgresStoreConfig),
}

/// The opened store of either kind: subjects through `Deref` (for `whirl admin`), the three
/// SPIs through [`OpenStore::spis`], and [`OpenStore::close`] at shutdown.
pub(crate) enum OpenStore {
    Sqlite(Arc<whirl_store_sqlite::SqliteStore>),
    Postgres(Arc<whirl_store_postgres::PostgresStore>),
}

impl OpenStore {
    /// Opens the configured store (a SQLite file defaults into `data_dir`).
    pub(crate) async fn open(cfg: &StoreConfig, data_dir: &Path) -> anyhow::Result<Self> {
        Ok(match cfg {
            StoreConfig::Sqlite(store_cfg) => {
                let db_path = store_cfg.path_in(data_dir);
                OpenStore::Sqlite(Arc::new(
                    whirl_store_sqlite::SqliteStore::open(&db_path)
                        .await
                        .with_context(|| {
                            format!("cannot open the store at {}", db_path.display())
                        })?,
                ))
            }
            StoreConfig::Postgres(store_cfg) => OpenStore::Postgres(Arc::new(
                whirl_store_postgres::PostgresStore::open(store_cfg)
                    .await
                    .context("cannot open the PostgreSQL store")?,
            )),
        })
    }

    #[allow(clippy::type_complexity)]
    fn spis(
        &self,
    ) -> (
        Arc<dyn EntityStore>,
        Arc<dyn ActivationStore>,
        Arc<dyn SubjectStore>,
    ) {
        match self {
            OpenStore::Sqlite(s) => (s.clone(), s.clone(), s.clone()),
            OpenStore::Postgres(s) => (s.clone(), s.clone(), s.clone()),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            OpenStore::Sqlite(s) => s.close().await,
            OpenStore::Postgres(s) => s.close().await,
        }
    }
}

impl std::ops::Deref for OpenStore {
    type Target = dyn SubjectStore;
    fn deref(&self) -> &Self::Target {
        match self {
            OpenStore::Sqlite(s) => &**s,
            OpenStore::Postgres(s) => &**s,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthConfig {
    Basic(whirl_auth_basic::BasicAuthConfig),
}

impl Config {
    /// The built-in defaults with the sections of `path` (if any) replacing theirs.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let user = match path {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?,
            ),
            None => None,
        };
        Self::from_sources(user.as_deref()).with_context(|| match path {
            Some(p) => format!("invalid configuration in {}", p.display()),
            None => "invalid built-in configuration".to_string(),
        })
    }

    /// Parses the defaults and an optional user file's text.
    pub fn from_sources(user: Option<&str>) -> anyhow::Result<Config> {
        let mut table: toml::Table = DEFAULT_CONFIG.parse().context("built-in config")?;
        if let Some(text) = user {
            let user: toml::Table = text.parse()?;
            for (section, value) in user {
                table.insert(section, value);
            }
        }
        let de = toml::Value::Table(table);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("{path}: {}", e.into_inner())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.runtimes.validate().context("runtimes")?;
        self.telemetry.validate().context("telemetry")?;
        let l = &self.controller.limits;
        for (name, r) in [
            ("timeout_ms", l.timeout_ms),
            ("memory_mb", l.memory_mb),
            ("logs_mb", l.logs_mb),
            ("concurrency", l.concurrency),
        ] {
            anyhow::ensure!(
                r.min <= r.std && r.std <= r.max,
                "controller.limits.{name}: need min <= std <= max"
            );
        }
        anyhow::ensure!(
            !matches!(
                (&self.log_store, &self.container_factory),
                (
                    LogStoreConfig::Syslog(_),
                    ContainerFactoryConfig::Process(_)
                )
            ),
            "log_store: type = \"syslog\" takes logs through Docker's log driver; it needs \
             [container_factory] type = \"docker\""
        );
        anyhow::ensure!(
            l.concurrency.min >= 1,
            "controller.limits.concurrency.min must be at least 1"
        );
        Ok(())
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

/// Installs the process's log and trace subscriber (`WHIRL_LOG` filters the log lines, default
/// `info`) with the `[telemetry]` span exporter. Keep the guard until the runtime has stopped.
pub fn init_telemetry(cfg: &Config) -> anyhow::Result<whirl_telemetry::TelemetryGuard> {
    whirl_telemetry::init(&cfg.telemetry, "WHIRL_LOG", "info")
}

/// Where Whirl keeps its data by default: `$XDG_DATA_HOME/whirl` or `~/.local/share/whirl`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("whirl"));
    }
    let home = std::env::var_os("HOME")
        .context("neither HOME nor XDG_DATA_HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/whirl"))
}

/// A short stable hex digest of a path (FNV-1a; only needs to tell data directories apart).
fn short_hash(p: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h as u32)
}

/// Which processes' work this one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `whirl standalone`: the controller and an invoker in this process.
    Standalone,
    /// `whirl controller`: the REST API and the load balancers; invokers elsewhere (the `lean`
    /// balancer still embeds its own invoker).
    Controller,
}

/// Runs the whole platform in this process until `shutdown` resolves, then stops cleanly: the
/// API stops accepting, in-flight requests finish, and every container is destroyed.
/// With `[load_balancer] type = "sharding"` the embedded invoker is fed over the configured
/// messaging (in memory by default), exactly as a separate `whirl invoker` would be.
pub async fn run_standalone(
    cfg: Config,
    data_dir: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_controller_role(cfg, data_dir, shutdown, Role::Standalone).await
}

/// Runs a controller (`whirl controller`): the REST API and its load balancers, joined to the
/// invokers by the configured messaging and sharing the configured store.
pub async fn run_controller(
    cfg: Config,
    data_dir: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_controller_role(cfg, data_dir, shutdown, Role::Controller).await
}

/// Opens the configured messaging.
async fn open_messaging(cfg: &MessagingConfig) -> anyhow::Result<Arc<dyn Messaging>> {
    Ok(match cfg {
        MessagingConfig::Memory(m) => {
            Arc::new(whirl_messaging_memory::MemoryMessaging::with_config(m))
        }
        MessagingConfig::Nats(n) => Arc::new(
            whirl_messaging_nats::NatsMessaging::connect(n)
                .await
                .with_context(|| format!("cannot connect to NATS at {}", n.url))?,
        ),
    })
}

/// The configured log store (a `file` store's directory defaults into `data_dir`).
fn build_log_store(cfg: &LogStoreConfig, data_dir: &Path) -> anyhow::Result<Arc<dyn LogStore>> {
    Ok(match cfg {
        LogStoreConfig::Activation(_) => Arc::new(whirl_logstore_activation::ActivationLogStore),
        LogStoreConfig::File(fc) => {
            let dir = fc.dir_in(data_dir);
            Arc::new(
                whirl_logstore_file::FileLogStore::open(fc, dir.clone()).with_context(|| {
                    format!("cannot open the file log store in {}", dir.display())
                })?,
            )
        }
        LogStoreConfig::Syslog(sc) => {
            Arc::new(whirl_logstore_syslog::SyslogLogStore::new(sc.clone()))
        }
    })
}

/// Starts an invoker with the configured container factory and log store, writing records to
/// `activations`.
async fn start_invoker(
    cfg: &Config,
    data_dir: &Path,
    logs: Arc<dyn LogStore>,
    activations: Arc<dyn ActivationStore>,
) -> anyhow::Result<whirl_invoker::Invoker> {
    // Containers are named after the invoker and its data directory, so two platforms on one
    // machine never take each other's containers for their own leftovers.
    let root_dir = data_dir.join("containers");
    let invoker_id = format!("{}-{}", cfg.invoker.id, short_hash(&root_dir));
    let factory: Arc<dyn ContainerFactory> = match &cfg.container_factory {
        ContainerFactoryConfig::Process(pf) => {
            let exe = std::env::current_exe().context("cannot find the whirl executable")?;
            let mut pf = pf.clone();
            pf.root_dir = root_dir;
            pf.runtime_command = vec![exe.to_string_lossy().into_owned(), "runtime".into()];
            pf.invoker_id = invoker_id;
            Arc::new(whirl_container_process::ProcessFactory::new(pf)?)
        }
        ContainerFactoryConfig::Docker(dc) => {
            let mut dc = dc.clone();
            dc.invoker_id = invoker_id;
            Arc::new(whirl_container_docker::DockerFactory::new(dc)?)
        }
    };
    let mut invoker_cfg = cfg.invoker.clone();
    invoker_cfg.api_host = api_host(cfg);
    whirl_invoker::Invoker::start(
        invoker_cfg,
        whirl_invoker::InvokerDeps {
            factory,
            logs,
            activations,
            manifest: Arc::new(cfg.runtimes.clone()),
            max_payload_bytes: cfg.controller.limits.max_payload_bytes,
        },
    )
    .await
    .context("cannot start the invoker")
}

/// The API host actions are told (`__OW_API_HOST`).
fn api_host(cfg: &Config) -> String {
    cfg.server
        .api_host
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", cfg.server.bind, cfg.server.port))
}

/// The bus feed of an invoker: its index and how many activations it holds at once.
fn feed_config(cfg: &Config, invoker: &whirl_invoker::Invoker) -> anyhow::Result<FeedConfig> {
    let index = cfg.invoker.instance_index().with_context(|| {
        format!(
            "[invoker] id = \"{}\" has no instance index: end the id with a number or set `index`",
            cfg.invoker.id
        )
    })?;
    Ok(FeedConfig {
        index,
        max_peek: max_peek(
            invoker.pool().user_memory_mb,
            cfg.controller.limits.concurrency.max,
        ),
        ping_interval: std::time::Duration::from_secs(1),
        health_retention: std::time::Duration::from_secs(60),
    })
}

/// The invoker in this process, started by the first balancer that needs it.
async fn embedded(
    slot: &mut Option<whirl_invoker::Invoker>,
    cfg: &Config,
    data_dir: &Path,
    logs: &Arc<dyn LogStore>,
    activations: &Arc<dyn ActivationStore>,
) -> anyhow::Result<whirl_invoker::Invoker> {
    if let Some(i) = slot {
        return Ok(i.clone());
    }
    let invoker = start_invoker(cfg, data_dir, logs.clone(), activations.clone()).await?;
    *slot = Some(invoker.clone());
    Ok(invoker)
}

/// OpenWhisk's maxPeek: as many activations as the smallest (128 MB) containers that fit, and
/// with intra-container concurrency half the most activations those containers could share.
fn max_peek(user_memory_mb: u64, max_concurrency: u64) -> usize {
    let containers = (user_memory_mb / 128).max(1);
    containers.max(containers * max_concurrency / 2) as usize
}

async fn run_controller_role(
    cfg: Config,
    data_dir: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
    role: Role,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;

    let store = OpenStore::open(&cfg.store, &data_dir).await?;
    let (entities, activations, subjects) = store.spis();
    whirl_auth_basic::ensure_well_known(subjects.as_ref()).await?;

    let AuthConfig::Basic(auth_cfg) = &cfg.auth;
    let auth: Arc<dyn Authenticator> = Arc::new(whirl_auth_basic::BasicAuthenticator::with_config(
        subjects.clone(),
        auth_cfg,
    ));
    let logs = build_log_store(&cfg.log_store, &data_dir)?;

    // What stops with the platform, in order: balancers, then the embedded invoker's feed.
    let mut feed = None;
    let mut messaging = None;
    // An invoker in this process: its metrics join the controller's registry (one /metrics).
    let mut embedded_invoker = None;
    let mut instances: Vec<(String, LoadBalancerConfig)> = vec![(
        cfg.load_balancer.type_name().to_string(),
        cfg.load_balancer.clone(),
    )];
    for (name, c) in &cfg.load_balancers {
        if instances.iter().any(|(n, _)| n == name) {
            anyhow::bail!("[load_balancers.{name}]: a load balancer named {name:?} already exists ([load_balancer] is named by its type)");
        }
        instances.push((name.clone(), c.clone()));
    }
    if instances
        .iter()
        .filter(|(_, c)| matches!(c, LoadBalancerConfig::Sharding(_)))
        .count()
        > 1
    {
        anyhow::bail!("only one `sharding` load balancer can run in a controller (it owns the controller's bus topics)");
    }
    if instances
        .iter()
        .any(|(_, c)| matches!(c, LoadBalancerConfig::Sharding(_)))
    {
        // The bus keeps what the sharding balancer accepted (`LoadBalancer::keeps_accepted`): the
        // controller journals only the other balancers' activations.
        info!("the sharding balancer keeps accepted activations on the bus; the controller journals the others");
    } else if role == Role::Standalone {
        if let MessagingConfig::Nats(_) = &cfg.messaging {
            warn!("[messaging] type = \"nats\" is used only by the sharding balancer");
        }
    }
    let mut balancers: Vec<Arc<dyn LoadBalancer>> = Vec::new();
    for (name, c) in &instances {
        let lb: Arc<dyn LoadBalancer> = match c {
            LoadBalancerConfig::Lean(_) => {
                let invoker =
                    embedded(&mut embedded_invoker, &cfg, &data_dir, &logs, &activations).await?;
                Arc::new(whirl_lb_lean::LeanBalancer::new(name.clone(), invoker))
            }
            LoadBalancerConfig::Direct(dc) => {
                let invoker =
                    embedded(&mut embedded_invoker, &cfg, &data_dir, &logs, &activations).await?;
                Arc::new(whirl_lb_direct::DirectBalancer::new(
                    name.clone(),
                    invoker,
                    activations.clone(),
                    dc.clone(),
                ))
            }
            LoadBalancerConfig::Sharding(sc) => {
                let m = open_messaging(&cfg.messaging).await?;
                messaging = Some(m.clone());
                if role == Role::Standalone {
                    let invoker =
                        embedded(&mut embedded_invoker, &cfg, &data_dir, &logs, &activations)
                            .await?;
                    let fc = feed_config(&cfg, &invoker)?;
                    let f = whirl_invoker::feed::Feed::start(
                        invoker.clone(),
                        fc,
                        whirl_invoker::feed::FeedDeps {
                            messaging: m.clone(),
                            entities: entities.clone(),
                        },
                    )
                    .await
                    .context("cannot start the invoker's feed")?;
                    feed = Some((f, invoker));
                }
                Arc::new(
                    whirl_lb_sharding::ShardingBalancer::start(
                        name,
                        cfg.controller.controller_id.clone(),
                        sc.clone(),
                        whirl_lb_sharding::ShardingDeps {
                            messaging: m,
                            activations: activations.clone(),
                            entities: entities.clone(),
                        },
                    )
                    .await
                    .context("cannot start the sharding balancer")?,
                )
            }
        };
        balancers.push(lb);
    }
    let resolver: Arc<dyn whirl_spi::LoadBalancerResolver> = match &cfg.load_balancer_resolver {
        ResolverConfig::Single => {
            if balancers.len() > 1 {
                anyhow::bail!("[load_balancers] are configured but [load_balancer_resolver] is `single`: set type = \"kind\" to route actions to them");
            }
            Arc::new(whirl_spi::SingleResolver(balancers[0].clone()))
        }
        ResolverConfig::Kind {
            default,
            kinds,
            annotation,
            annotation_allows,
        } => Arc::new(
            whirl_spi::KindResolver::new(
                balancers.clone(),
                default,
                kinds,
                annotation.clone().map(|a| (a, annotation_allows.clone())),
            )
            .map_err(|e| anyhow::anyhow!("[load_balancer_resolver]: {e}"))?,
        ),
    };

    let controller = whirl_controller::Controller::new(whirl_controller::ControllerDeps {
        entities,
        activations,
        auth,
        logs,
        balancers: resolver,
        manifest: Arc::new(cfg.runtimes.clone()),
        config: cfg.controller.clone(),
    });
    if let Some(m) = &messaging {
        controller
            .share_cache_invalidations(m.clone())
            .await
            .context("cannot subscribe to cache invalidations")?;
    }
    // One /metrics for both: the in-process invoker's metrics go into the controller's registry.
    if let Some(invoker) = &embedded_invoker {
        invoker
            .register_metrics(controller.metrics_registry())
            .context("cannot register the invoker's metrics")?;
    }

    match controller.install_catalog().await {
        Ok(0) => {}
        Ok(n) => info!(
            entities = n,
            "installed the system catalog (whisk.system/utils)"
        ),
        Err(e) => warn!(error = %e, "could not install the system catalog"),
    }

    let addr = format!("{}:{}", cfg.server.bind, cfg.server.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    info!(data_dir = %data_dir.display(), "whirl {} is ready", match role { Role::Standalone => "standalone", Role::Controller => "controller" });
    println!(
        "Whirl is ready: API host http://{local}\n  guest credentials: {}:{}\n  data directory: {}\n  try: curl -u {}:{} http://{local}/api/v1/namespaces\n  set up the CLI: whirl property set --apihost http://{local} --auth {}:{}{}",
        well_known::GUEST_UUID,
        well_known::GUEST_KEY,
        data_dir.display(),
        well_known::GUEST_UUID,
        well_known::GUEST_KEY,
        well_known::GUEST_UUID,
        well_known::GUEST_KEY,
        if cfg.controller.dashboard {
            format!(
                "\n  dashboard: http://{local}/dashboard#auth={}:{}",
                well_known::GUEST_UUID,
                well_known::GUEST_KEY
            )
        } else {
            String::new()
        },
    );
    let served = controller.serve(listener, shutdown).await;
    info!("shutting down: destroying containers");
    for lb in &balancers {
        lb.shutdown().await;
    }
    if let Some((f, invoker)) = feed {
        f.shutdown().await;
        invoker.shutdown().await;
    }
    store.close().await;
    if let Err(e) = &served {
        warn!(error = %e, "the API server stopped with an error");
    }
    served
}

/// Runs an invoker (`whirl invoker`) until `shutdown` resolves: it takes activations from its bus
/// topic, runs them in containers, stores their records and pings the controllers. At shutdown it
/// stops taking work (what it has not started goes back to the bus for another invoker), finishes
/// what it started, and destroys its containers.
pub async fn run_invoker(
    cfg: Config,
    data_dir: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let store = OpenStore::open(&cfg.store, &data_dir).await?;
    let (entities, activations, _) = store.spis();
    let messaging = open_messaging(&cfg.messaging).await?;
    let logs = build_log_store(&cfg.log_store, &data_dir)?;
    let invoker = start_invoker(&cfg, &data_dir, logs, activations).await?;
    let fc = feed_config(&cfg, &invoker)?;
    let index = fc.index;
    let feed = whirl_invoker::feed::Feed::start(
        invoker.clone(),
        fc,
        whirl_invoker::feed::FeedDeps {
            messaging,
            entities,
        },
    )
    .await
    .context("cannot start the invoker's feed")?;
    // GET /metrics of this invoker, where `[telemetry] metrics_listen` asks for it.
    let metrics_server = match &cfg.telemetry.metrics_listen {
        Some(addr) => {
            let registry = whirl_telemetry::metrics::Registry::new();
            invoker
                .register_metrics(&registry)
                .context("cannot register the invoker's metrics")?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            info!(addr = %listener.local_addr()?, "serving the invoker's metrics at /metrics");
            Some(tokio::spawn(whirl_telemetry::metrics::serve(
                listener,
                registry,
                std::future::pending(),
            )))
        }
        None => None,
    };
    println!(
        "Whirl invoker {} is ready: index {index}, {} MB for actions, data directory {}",
        cfg.invoker.id,
        invoker.pool().user_memory_mb,
        data_dir.display()
    );
    shutdown.await;
    info!("invoker stopping: finishing started activations");
    feed.shutdown().await;
    invoker.shutdown().await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_config_is_valid_and_embedded() {
        let c = Config::from_sources(None).unwrap();
        assert_eq!(c.server.port, 3233);
        assert!(matches!(c.load_balancer, LoadBalancerConfig::Lean(_)));
        assert!(c.runtimes.resolve("python:default").is_ok());
        assert!(c.runtimes.resolve("nodejs:default").is_ok());
        // Printing and re-reading gives the same config.
        let again = Config::from_sources(Some(&c.to_toml().unwrap())).unwrap();
        assert_eq!(again.to_toml().unwrap(), c.to_toml().unwrap());
    }

    #[test]
    fn postgres_store_config_parses_and_prints() {
        let c = Config::from_sources(Some(
            "[store]\ntype = \"postgres\"\nurl = \"postgres://u:p@db:5432/whirl\"\nmax_connections = 8\n",
        ))
        .unwrap();
        let StoreConfig::Postgres(pg) = &c.store else {
            panic!("not a postgres store: {:?}", c.store);
        };
        assert_eq!(pg.url, "postgres://u:p@db:5432/whirl");
        assert_eq!(pg.max_connections, 8);
        assert_eq!(pg.schema, None);
        // `whirl config print` shows it, and what it prints reads back the same.
        let printed = c.to_toml().unwrap();
        assert!(printed.contains("type = \"postgres\""), "{printed}");
        let again = Config::from_sources(Some(&printed)).unwrap();
        assert_eq!(again.to_toml().unwrap(), printed);
        // The url is required and unknown keys are refused.
        assert!(Config::from_sources(Some("[store]\ntype = \"postgres\"\n")).is_err());
        assert!(Config::from_sources(Some(
            "[store]\ntype = \"postgres\"\nurl = \"postgres://x\"\npath = \"x\"\n"
        ))
        .is_err());
    }

    #[test]
    fn user_sections_replace_defaults() {
        let c = Config::from_sources(Some("[server]\nbind = \"0.0.0.0\"\nport = 9999\n")).unwrap();
        assert_eq!(c.server.port, 9999);
        assert_eq!(c.server.bind, "0.0.0.0");
    }

    #[test]
    fn unknown_things_are_named() {
        let e = format!(
            "{:#}",
            Config::from_sources(Some("[bogus]\nx = 1\n")).unwrap_err()
        );
        assert!(e.contains("bogus"), "{e}");
        let e = format!(
            "{:#}",
            Config::from_sources(Some("[server]\nbind = \"x\"\nport = 1\ncolour = 2\n"))
                .unwrap_err()
        );
        assert!(e.contains("colour"), "{e}");
        let e = format!(
            "{:#}",
            Config::from_sources(Some("[load_balancer]\ntype = \"quantum\"\n")).unwrap_err()
        );
        assert!(e.contains("quantum"), "{e}");
        let e = format!(
            "{:#}",
            Config::from_sources(Some(
                "[container_factory]\ntype = \"process\"\nfrobnicate = true\n"
            ))
            .unwrap_err()
        );
        assert!(e.contains("frobnicate"), "{e}");
    }

    #[test]
    fn docker_factory_and_log_stores_parse() {
        let c = Config::from_sources(Some(
            "[container_factory]\ntype = \"docker\"\nnetwork = \"bridge\"\n\
             images = { \"python:3\" = \"whirl/runtime:local\" }\n\
             [log_store]\ntype = \"syslog\"\naddress = \"tcp://127.0.0.1:5514\"\ndir = \"/var/log/whirl\"\n",
        ))
        .unwrap();
        let ContainerFactoryConfig::Docker(d) = &c.container_factory else {
            panic!("not docker: {:?}", c.container_factory);
        };
        assert_eq!(d.images["python:3"], "whirl/runtime:local");
        assert!(matches!(c.log_store, LogStoreConfig::Syslog(_)));
        let printed = c.to_toml().unwrap();
        let again = Config::from_sources(Some(&printed)).unwrap();
        assert_eq!(again.to_toml().unwrap(), printed);
        let f =
            Config::from_sources(Some("[log_store]\ntype = \"file\"\nmax_files = 3\n")).unwrap();
        assert!(matches!(f.log_store, LogStoreConfig::File(ref f) if f.max_files == 3));
        // The out-of-band store needs Docker's log driver.
        let e = format!(
            "{:#}",
            Config::from_sources(Some("[log_store]\ntype = \"syslog\"\n")).unwrap_err()
        );
        assert!(e.contains("docker"), "{e}");
        assert!(Config::from_sources(Some(
            "[container_factory]\ntype = \"docker\"\nsandbox = \"auto\"\n"
        ))
        .is_err());
    }

    #[test]
    fn nats_messaging_config_parses() {
        let c = Config::from_sources(Some(
            "[messaging]\ntype = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nack_wait_ms = 10000\n",
        ))
        .unwrap();
        let MessagingConfig::Nats(n) = &c.messaging else {
            panic!("not nats messaging: {:?}", c.messaging);
        };
        assert_eq!(n.url, "nats://127.0.0.1:4222");
        assert_eq!(n.ack_wait_ms, 10_000);
        assert_eq!(n.prefix, "whirl");
        let printed = c.to_toml().unwrap();
        assert!(printed.contains("type = \"nats\""), "{printed}");
        assert!(Config::from_sources(Some(
            "[messaging]\ntype = \"nats\"\nurl = \"nats://h:1\"\nbogus = 1\n"
        ))
        .is_err());
    }
}
