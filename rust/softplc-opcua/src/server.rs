//! The OPC UA server as an engine driver.
//!
//! `bind` plans the address space (a pattern that selects nothing is an error before
//! anything starts); `start` checks and prepares everything that can fail (the host,
//! the certificate directory, the port), builds the async-opcua server and only then
//! starts its thread, so a failure leaves nothing running or listening. On the scan
//! thread the driver only publishes a frame when the sampling loop asked for one
//! (`write_outputs`); client writes and method calls travel through the engine link,
//! as the API's and the control channel's do, and are applied at the start of the next
//! cycle. Nothing a client does can make a cycle wait.

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opcua::server::node_manager::memory::InMemoryNodeManagerBuilder;
use opcua::server::{ServerBuilder, ServerUserToken};
use opcua::types::{ApplicationDescription, ApplicationType, LocalizedText, UAString};
use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, EngineLink, IoCtx, IoError, IoStatus, Layout,
    SafeState, StartCtx,
};
use softplc_io::config::{Host, OpcuaConfig};
use softplc_io::runtime::{stopped, IoThread};

use crate::auth::PlcAuth;
use crate::nodes::{NodesSetup, PlcNodeManager, PlcNodes};
use crate::safe::ServerSafe;
use crate::sampler::SamplingLoop;
use crate::security;
use crate::snapshot::{channel, Publisher, Sampler};
use crate::space::Plan;
use crate::stats::{Described, Monitor, ServerStats};
use crate::types;

/// The application URI the server presents (and puts in its certificate).
pub const APPLICATION_URI: &str = "urn:softplc:server";

/// How long a new connection has to say hello (seconds): a half-open connection holds
/// nothing longer than this.
pub const HELLO_TIMEOUT_S: u32 = 5;

/// The OPC UA server driver.
pub struct OpcuaServer {
    name: String,
    cfg: OpcuaConfig,
    plan: Option<Arc<Plan>>,
    publisher: Option<Publisher>,
    sampler: Option<Sampler>,
    link: Option<EngineLink>,
    io: Option<IoThread>,
    stats: Arc<ServerStats>,
    monitor: Arc<Monitor>,
    safe: Arc<ServerSafe>,
    /// A private scratch directory standing in for `pki_dir` when none is configured
    /// (async-opcua always opens a certificate store; without this it would create
    /// `./pki` wherever the runtime runs). Removed at stop.
    scratch: Option<PathBuf>,
}

/// Numbers the scratch directories of one process.
static SCRATCH: AtomicU64 = AtomicU64::new(0);

impl OpcuaServer {
    /// A server driver named `name` (its configuration checked by the caller with
    /// [`OpcuaConfig::check`], as the TOML parser and the bindings do).
    pub fn new(name: &str, cfg: OpcuaConfig) -> OpcuaServer {
        let stats = Arc::new(ServerStats::default());
        let endpoints = security::endpoints(&cfg);
        let monitor = Arc::new(Monitor {
            described: Mutex::new(Described {
                name: name.to_string(),
                endpoint: cfg.endpoint.to_string(),
                security: security::describe(&endpoints),
                exposed: 0,
                sampling_ms: cfg.sampling.as_millis() as u64,
                pki_dir: cfg.pki_dir.as_ref().map(|p| p.display().to_string()),
            }),
            stats: stats.clone(),
        });
        OpcuaServer {
            name: name.to_string(),
            cfg,
            plan: None,
            publisher: None,
            sampler: None,
            link: None,
            io: None,
            stats,
            monitor,
            safe: Arc::default(),
            scratch: None,
        }
    }

    /// The address it listens on, once started (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.stats.listen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &OpcuaConfig {
        &self.cfg
    }

    fn fail(&self, what: impl std::fmt::Display) -> IoError {
        IoError {
            message: format!("opcua server {}: {what}", self.cfg.endpoint),
        }
    }

    fn resolve(&self) -> Result<SocketAddr, IoError> {
        let port = self.cfg.endpoint.port;
        match &self.cfg.endpoint.host {
            Host::Ip(ip) => Ok(SocketAddr::new(*ip, port)),
            Host::Name(n) => (n.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| self.fail(format!("cannot resolve the host {n:?}"))),
        }
    }
}

fn application(hosts: &[String]) -> ApplicationDescription {
    ApplicationDescription {
        application_uri: UAString::from(APPLICATION_URI),
        product_uri: UAString::from("urn:softplc"),
        application_name: LocalizedText::new("", "softplc"),
        application_type: ApplicationType::Server,
        gateway_server_uri: UAString::null(),
        discovery_profile_uri: UAString::null(),
        discovery_urls: Some(hosts.iter().map(UAString::from).collect()),
    }
}

/// The async-opcua server's configuration: identity, endpoints, users, limits, and the
/// node manager built from `setup`.
fn builder(
    cfg: &OpcuaConfig,
    pki: &std::path::Path,
    host: &str,
    port: u16,
    setup: NodesSetup,
    auth: Arc<PlcAuth>,
) -> ServerBuilder {
    let endpoint_url = format!("opc.tcp://{host}:{port}{}", cfg.endpoint.path);
    let mut b = ServerBuilder::new()
        .application_name("softplc")
        .application_uri(APPLICATION_URI)
        .product_uri("urn:softplc")
        .host(host.trim_start_matches('[').trim_end_matches(']'))
        .port(port)
        .discovery_urls(vec![endpoint_url])
        .hello_timeout(HELLO_TIMEOUT_S)
        .max_sessions(cfg.max_sessions)
        .diagnostics_enabled(false)
        .trust_client_certs(cfg.trust_client_certs)
        .create_sample_keypair(false)
        .with_authenticator(auth)
        .with_node_manager(InMemoryNodeManagerBuilder::new(
            move |context, space: &mut opcua::server::address_space::AddressSpace| {
                PlcNodes::build(setup, context, space)
            },
        ));
    b = b.pki_dir(pki);
    for u in &cfg.users {
        b = b.add_user_token(
            u.name.clone(),
            ServerUserToken::user_pass(u.name.clone(), u.password.clone()),
        );
    }
    for (id, e) in security::endpoints(cfg) {
        b = b.add_endpoint(id, e);
    }
    b
}

impl Driver for OpcuaServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        let plan = Plan::new(layout, &self.cfg.expose, &[]).map_err(|e| {
            let l = &self.cfg.loc;
            if l.line > 0 {
                l.error("server.opcua", "expose", e.message)
            } else {
                ConfigError::new(format!("opcua server: expose: {}", e.message))
            }
        })?;
        let (publisher, sampler) = channel(plan.vars.iter().map(|v| (v.id, v.slot)).collect());
        self.safe.set_outputs(
            plan.vars
                .iter()
                .enumerate()
                .filter(|(_, v)| v.area == Area::Output)
                .map(|(i, v)| (i, layout.var(v.id).safe.to_bits()))
                .collect(),
        );
        self.monitor
            .described
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .exposed = plan.vars.len();
        self.plan = Some(Arc::new(plan));
        self.publisher = Some(publisher);
        self.sampler = Some(sampler);
        Ok(())
    }

    fn engine_link(&mut self, link: &EngineLink) {
        self.link = Some(link.clone());
    }

    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError> {
        self.stop();
        let (Some(plan), Some(_)) = (self.plan.clone(), self.sampler.as_ref()) else {
            return Err(self.fail("start before bind (or a second start)"));
        };
        let addr = self.resolve()?;
        let host = self.cfg.endpoint.host.to_string();
        if let Some(dir) = &self.cfg.pki_dir {
            security::prepare_pki(
                dir,
                application(&[self.cfg.endpoint.to_string()]),
                vec![host.clone()],
            )
            .map_err(|e| self.fail(e))?;
        }
        let pki = match &self.cfg.pki_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "softplc-opcua-{}-{}",
                    std::process::id(),
                    SCRATCH.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| self.fail(format!("cannot create {}: {e}", dir.display())))?;
                self.scratch = Some(dir.clone());
                dir
            }
        };
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| self.fail(format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr().map_err(|e| self.fail(e))?;
        listener.set_nonblocking(true).map_err(|e| self.fail(e))?;

        // Programs appear even when none of their variables is exposed.
        let mut plan = (*plan).clone();
        if let Some(l) = &self.link {
            for t in l.tasks() {
                for (p, _) in &t.programs {
                    plan.add_program(p);
                }
            }
        }
        let plan = Arc::new(plan);
        let supplied = plan
            .vars
            .iter()
            .map(|v| {
                self.link
                    .as_ref()
                    .and_then(|l| l.supplied_by(v.id))
                    .map(str::to_string)
            })
            .collect();
        let auth = Arc::new(PlcAuth::new(
            self.cfg
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password.clone(), u.role)),
            if self.cfg.endpoint.is_loopback() {
                self.cfg.anonymous
            } else {
                None
            },
        ));
        let setup = NodesSetup {
            plan: plan.clone(),
            supplied,
            link: self.link.clone(),
            auth: auth.clone(),
            stats: self.stats.clone(),
            sampling_ms: self.cfg.sampling.as_secs_f64() * 1e3,
        };
        // async-opcua builds its server inside a tokio runtime: build it on the I/O
        // thread and wait here for the outcome, so that a failure is still this
        // call's error and leaves nothing running.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        let sampler = self.sampler.take().expect("checked above");
        let link = self.link.clone();
        let epoch_ns = types::unix_now_ns() - cx.clock.now() as i64;
        let interval = self.cfg.sampling;
        let stats = self.stats.clone();
        let safe = self.safe.clone();
        let cfg = self.cfg.clone();
        let io = IoThread::spawn(&format!("softplc-{}", self.name), move |shutdown| {
            let built = builder(&cfg, &pki, &host, local.port(), setup, auth)
                .build()
                .and_then(|(server, handle)| {
                    let nodes = handle
                        .node_managers()
                        .get_of_type::<PlcNodeManager>()
                        .ok_or_else(|| "the node manager is missing".to_string())?;
                    let listener =
                        tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                    Ok((server, handle, nodes, listener))
                });
            let (server, handle, nodes, listener) = match built {
                Ok(b) => {
                    let _ = tx.send(Ok(()));
                    b
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Box::pin(async {}) as Pin<Box<dyn Future<Output = ()>>>;
                }
            };
            let sampling = SamplingLoop {
                sampler,
                subs: handle.subscriptions().clone(),
                nodes,
                plan,
                link,
                epoch_ns,
                interval,
                stats: stats.clone(),
                safe,
            };
            Box::pin(async move {
                let run = server.run_with(listener);
                tokio::pin!(run);
                tokio::select! {
                    _ = &mut run => {}
                    _ = sampling.run() => {}
                    _ = stopped(shutdown) => {
                        handle.cancel();
                        // Sessions are told to close; a client that does not answer
                        // is cut off when the runtime ends.
                        let _ = tokio::time::timeout(Duration::from_secs(1), &mut run).await;
                    }
                }
                stats.running.store(false, Ordering::Relaxed);
            })
        })?;
        let mut io = io;
        let outcome = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| Err("the server thread did not start".to_string()));
        if let Err(e) = outcome {
            io.stop();
            return Err(self.fail(e));
        }
        *self.stats.listen.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
        self.stats.running.store(true, Ordering::Relaxed);
        *self.safe.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(io.stop_handle());
        self.io = Some(io);
        Ok(())
    }

    /// Nothing to latch: client writes arrive through the engine's command queue.
    fn read_inputs(&mut self, _cx: &mut IoCtx<'_>) -> IoStatus {
        IoStatus::Ok
    }

    /// Publishes a frame when the sampling loop asked for one. Scan thread: one atomic
    /// load on most cycles; a copy into a preallocated buffer when asked. No
    /// allocation, locks or syscalls.
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        self.safe.release();
        if let Some(p) = self.publisher.as_mut() {
            p.offer(cx.image, cx.now_ns, cx.state);
        }
        IoStatus::Ok
    }

    fn stop(&mut self) {
        if let Some(mut io) = self.io.take() {
            io.stop();
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        self.stats.running.store(false, Ordering::Relaxed);
    }

    fn monitor(&self) -> Option<Arc<dyn DriverMonitor>> {
        Some(self.monitor.clone())
    }

    fn safe_state(&self) -> Option<Arc<dyn SafeState>> {
        Some(self.safe.clone())
    }
}

impl Drop for OpcuaServer {
    fn drop(&mut self) {
        self.stop();
    }
}
