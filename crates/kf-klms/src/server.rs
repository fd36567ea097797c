//! The TLS accept loop and the embeddable server handle.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use kf_crypto::AesKey;

use crate::keystore::{FileKey, KeyBackend};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::content::{ContentError, ContentProvider, SynthesizedContent};
use crate::ledger::postgres::PgTarget;
use crate::ledger::{LedgerError, LedgerLocation};
use crate::ledger_writer::LedgerWriter;
use crate::limits::{ConnClock, Limits, WatchedIo};
use crate::pki::DevPki;
use crate::service::{router, AppState, StationIdentity};
use crate::tls::{server_config, subject_common_name, TlsError, TlsMaterial};

/// Default key-package lifetime (KLMS contract, "Items to Confirm": 5 seconds).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Default UID length (JCOP 10-byte UID, KLMS contract, KDF3 context).
pub const DEFAULT_UID_LEN: usize = 10;
/// Ledger writes waiting for the writer thread before requests get 503.
const LEDGER_QUEUE_LEN: usize = 4096;
/// Most writes committed in one transaction (bounds a batch's latency).
const LEDGER_MAX_BATCH: usize = 256;
/// Largest request head (request line and headers) hyper buffers.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in a request head.
const MAX_HEADERS: usize = 64;

/// Server errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Content set-up failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Binding or runtime start failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
}

/// Everything the server needs.
pub struct KlmsConfig {
    /// Listen address (loopback by default).
    pub bind: SocketAddr,
    /// Server certificate, key and the station CA.
    pub tls: TlsMaterial,
    /// Client certificate CNs allowed to call the API.
    pub allowed_stations: Vec<String>,
    /// Where the KDF3 master key lives.
    pub key: Arc<dyn KeyBackend>,
    /// Key version number reported with the keys (1..=255).
    pub key_version: u8,
    /// Accepted UID length in bytes.
    pub uid_len: usize,
    /// Key-package lifetime.
    pub ttl: Duration,
    /// Issuance ledger database (SQLite file; unused when `ledger_url` is set).
    pub ledger_path: PathBuf,
    /// PostgreSQL ledger URL (may hold a password; never logged): several
    /// instances share that database instead of the SQLite file.
    pub ledger_url: Option<zeroize::Zeroizing<String>>,
    /// CA certificate(s), PEM, that sign the PostgreSQL server's certificate:
    /// when set, the ledger connection uses TLS verified against them.
    pub ledger_ca_pem: Option<String>,
    /// Per-fob content.
    pub content: Arc<dyn ContentProvider>,
    /// Timeouts, connection cap and body limits.
    pub limits: Limits,
    /// The wall clock for issuance times, expiry and audit times.
    pub clock: crate::clock::Clock,
}

impl KlmsConfig {
    /// A development configuration from an in-memory [`DevPki`]: every station
    /// of the PKI is allowed, synthesized content, loopback with a random port.
    pub fn dev(
        pki: &DevPki,
        ledger_path: PathBuf,
        master_key: AesKey,
    ) -> Result<KlmsConfig, ServerError> {
        let content = SynthesizedContent::new(
            &pki.fob_ica.cert_pem,
            &pki.fob_ica.key_pem,
            &pki.fob_root.cert_pem,
        )?;
        Ok(KlmsConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: TlsMaterial {
                client_ca_pem: pki.ca.cert_pem.clone(),
                server_cert_pem: pki.server.cert_pem.clone(),
                server_key_pem: pki.server.key_pem.clone(),
            },
            allowed_stations: pki.stations.iter().map(|(cn, _)| cn.clone()).collect(),
            key: Arc::new(FileKey::new(master_key)),
            key_version: 1,
            uid_len: DEFAULT_UID_LEN,
            ttl: DEFAULT_TTL,
            clock: crate::clock::Clock::system(),
            ledger_path,
            ledger_url: None,
            ledger_ca_pem: None,
            content: Arc::new(content),
            limits: Limits::default(),
        })
    }
}

struct Prepared {
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    limits: Limits,
}

fn prepare(config: KlmsConfig) -> Result<Prepared, ServerError> {
    if config.key_version == 0 {
        return Err(ServerError::Config("key_version must be 1..=255".into()));
    }
    if config.uid_len == 0 || config.uid_len > 64 {
        return Err(ServerError::Config("uid_len must be 1..=64".into()));
    }
    config.limits.validate().map_err(ServerError::Config)?;
    for station in &config.allowed_stations {
        crate::wire::check_identifier(station)
            .map_err(|e| ServerError::Config(format!("allowed_stations: {e}")))?;
    }
    let tls = server_config(&config.tls)?;
    // The writer connection creates the schema; the reader opens after it.
    let location = match &config.ledger_url {
        Some(url) => {
            LedgerLocation::Postgres(PgTarget::new(url.clone(), config.ledger_ca_pem.as_deref())?)
        }
        None => LedgerLocation::Sqlite(config.ledger_path.clone()),
    };
    tracing::info!(ledger = %location, "issuance ledger");
    let ledger = location.open_waiting(config.limits.ledger_lock_wait())?;
    let ledger_reader = location.open_reader()?;
    let ledger_writer = LedgerWriter::start(ledger, LEDGER_QUEUE_LEN, LEDGER_MAX_BATCH)?;
    let receipts = crate::receipt::ReceiptSigner::from_backend(config.key.as_ref())
        .map_err(|e| ServerError::Config(e.to_string()))?;
    tracing::info!(key_backend = %config.key.describe(), "master key backend");
    let state = Arc::new(AppState {
        receipts,
        ledger_reader: Mutex::new(ledger_reader),
        ledger_writer,
        content: config.content,
        key: config.key,
        key_version: config.key_version,
        uid_len: config.uid_len,
        ttl: config.ttl,
        clock: config.clock,
        allowed: config.allowed_stations.into_iter().collect::<HashSet<_>>(),
    });
    Ok(Prepared {
        acceptor: tokio_rustls::TlsAcceptor::from(tls),
        app: router(state, &config.limits),
        limits: config.limits,
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    prepared: Prepared,
    shutdown: watch::Receiver<bool>,
) {
    let max = prepared.limits.max_connections;
    let mut refused: u64 = 0;
    kf_accept::accept_capped(
        "klms",
        listener,
        max,
        shutdown,
        |peer| {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, max,
                    "connection limit reached; closing new connections");
            }
        },
        |tcp, peer| {
            let acceptor = prepared.acceptor.clone();
            let app = prepared.app.clone();
            serve_connection(tcp, peer, acceptor, app, prepared.limits)
        },
    )
    .await;
    release(prepared).await;
}

/// Drops the server state off the runtime's threads: the ledger's PostgreSQL
/// client closes its connection with a runtime of its own when dropped, which
/// cannot run on a thread inside this runtime.
async fn release(prepared: Prepared) {
    if let Err(e) = tokio::task::spawn_blocking(move || drop(prepared)).await {
        tracing::warn!(error = %e, "server state not released cleanly");
    }
}

/// One connection: TLS handshake under its timeout, then HTTP/1.1 only (an
/// HTTP/2 preface is a malformed request line and ends the connection) with
/// the header and idle deadlines of [`ConnClock`].
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    limits: Limits,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
    }
    let tls = match tokio::time::timeout(limits.handshake_timeout(), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let cn = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| subject_common_name(leaf));
    let identity = StationIdentity(cn);
    let clock = ConnClock::new(&limits);
    let io = TokioIo::new(WatchedIo::new(tls, Arc::clone(&clock)));
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let guard = clock.begin_request();
            request.extensions_mut().insert(identity.clone());
            let response = app.clone().oneshot(request);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Runs the server on the current tokio runtime until `shutdown` resolves.
pub async fn serve(
    config: KlmsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Configuration errors (keys, limits, ledger) are reported before binding.
    // The state is built off the runtime's threads, like its release: a
    // PostgreSQL ledger opened before a later step fails is dropped there.
    let bind = config.bind;
    let prepared = tokio::task::spawn_blocking(move || prepare(config))
        .await
        .map_err(|e| ServerError::Io(std::io::Error::other(format!("server set-up: {e}"))))??;
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(listener) => listener,
        Err(e) => {
            release(prepared).await;
            return Err(ServerError::Io(e));
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "kf-klms listening (mutual TLS)"),
        Err(e) => tracing::warn!(error = %e, "kf-klms listening; its address is unknown"),
    }
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        // Fails only when every receiver is gone: nothing is left to stop.
        let _ = tx.send(true);
    });
    accept_loop(listener, prepared, rx).await;
    Ok(())
}

/// A server running on its own thread and runtime; stopped by
/// [`ServerHandle::shutdown`] or on drop.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (use with `127.0.0.1:0` to get the random port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` style base URL.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting, closes connections and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Stops the server and reports whether its thread ended cleanly (an
    /// `Err` holds the payload of a panic on that thread).
    pub fn stop(mut self) -> std::thread::Result<()> {
        if let Some(stop) = self.stop.take() {
            // Fails only when the server already ended: nothing is left to stop.
            let _ = stop.send(true);
        }
        match self.thread.take() {
            Some(thread) => thread.join(),
            None => Ok(()),
        }
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Fails only when the server already ended: nothing is left to stop.
            let _ = stop.send(true);
        }
        if let Some(Err(_)) = self.thread.take().map(std::thread::JoinHandle::join) {
            tracing::error!("the KLMS server thread panicked");
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the server in the background (own thread, two-worker runtime).
/// Bind errors and configuration errors are returned here.
pub fn spawn_server(config: KlmsConfig) -> Result<ServerHandle, ServerError> {
    let std_listener = std::net::TcpListener::bind(config.bind)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let prepared = prepare(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kf-klms")
        .enable_all()
        .build()?;
    // Registered with the runtime here, so that a failure is this call's error.
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(std_listener)?
    };
    let (tx, rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("kf-klms-server".into())
        .spawn(move || {
            runtime.block_on(accept_loop(listener, prepared, rx));
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
    Ok(ServerHandle {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    })
}
