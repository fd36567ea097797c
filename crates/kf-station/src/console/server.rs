//! The console's HTTP server: `/` (the page, live over server-sent events at
//! `/events`), `/state` (the same snapshot as JSON), `/metrics` (Prometheus
//! text format) and `/healthz`.
//!
//! Plain HTTP/1.1 on loopback unless the operator explicitly allows other
//! addresses. Every connection is bounded: at most [`MAX_CONNECTIONS`] at
//! once (more are closed at accept), a request head within
//! [`HEAD_TIMEOUT`] (hyper's header timer also ends idle keep-alive
//! connections), a response within [`RESPONSE_TIMEOUT`] except for the event
//! stream, GET/HEAD only, and no request body beyond [`MAX_BODY_BYTES`].
//! Every asset is compiled into the binary; the page loads nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use super::Console;

/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 64;
/// Time allowed for a request head (and for an idle keep-alive connection).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a response (every route but the event stream).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request bodies larger than this are refused (GET requests carry none).
pub const MAX_BODY_BYTES: usize = 1024;
const MAX_HEAD_BYTES: usize = 16 * 1024;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");
/// The page runs only its own script and style.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The running console server; [`ConsoleServer::shutdown`] stops it.
pub struct ConsoleServer {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConsoleServer {
    /// Binds `addr` and serves `console` on a thread of its own. An address
    /// other than loopback is refused unless `allow_remote`.
    pub fn start(addr: SocketAddr, allow_remote: bool, console: Console) -> anyhow::Result<Self> {
        if !addr.ip().is_loopback() && !allow_remote {
            anyhow::bail!(
                "the console binds loopback addresses only ({addr} is not one): \
                 add --console-allow-remote to serve it on the network (plain HTTP, no login)"
            );
        }
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot bind the console to {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the console's runtime")?;
        // Registered with the runtime here, so that a failure is this call's error.
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .context("cannot register the console's listener")?
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let app = router(console);
        let thread = std::thread::Builder::new()
            .name("kf-console".into())
            .spawn(move || runtime.block_on(accept_loop(listener, app, stopped)))
            .context("cannot start the console thread")?;
        Ok(ConsoleServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and stops the server.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the console thread panicked");
            }
        }
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn router(console: Console) -> Router {
    let bounded = Router::new()
        .route("/", get(page))
        .route("/console.js", get(script))
        .route("/console.css", get(style))
        .route("/state", get(state))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            RESPONSE_TIMEOUT,
        ));
    Router::new()
        .route("/events", get(events))
        .merge(bounded)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .with_state(console)
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    kf_accept::accept_capped(
        "console",
        listener,
        MAX_CONNECTIONS,
        stop,
        |peer| tracing::warn!(%peer, max = MAX_CONNECTIONS, "console connection limit reached"),
        |tcp, peer| {
            let app = app.clone();
            async move {
                let service =
                    hyper::service::service_fn(move |request| app.clone().oneshot(request));
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .keep_alive(true);
                if let Err(e) = builder.serve_connection(TokioIo::new(tcp), service).await {
                    tracing::debug!(%peer, error = %e, "console connection ended with an error");
                }
            }
        },
    )
    .await;
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    let mut response = asset("text/html; charset=utf-8", PAGE);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn state(State(console): State<Console>) -> Response {
    axum::Json(console.snapshot()).into_response()
}

async fn metrics(State(console): State<Console>) -> Response {
    match console.metrics_text() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be encoded");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The snapshot now and after every change (changes that come faster than
/// the browser reads are merged into one).
async fn events(State(console): State<Console>) -> impl IntoResponse {
    let changes = console.subscribe();
    let stream = futures_util::stream::unfold(
        (console, changes, true),
        |(console, mut changes, first)| async move {
            if !first && changes.changed().await.is_err() {
                return None;
            }
            changes.borrow_and_update();
            let event = Event::default().data(console.snapshot().to_string());
            Some((
                Ok::<_, std::convert::Infallible>(event),
                (console, changes, false),
            ))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends raw bytes, returns the status line of the answer.
    fn exchange(addr: SocketAddr, request: &[u8]) -> anyhow::Result<String> {
        use std::io::{BufRead, BufReader, Write};
        let mut tcp = std::net::TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        tcp.write_all(request)?;
        let mut line = String::new();
        BufReader::new(tcp).read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }

    #[test]
    fn only_small_get_requests_are_served() -> anyhow::Result<()> {
        let server = ConsoleServer::start("127.0.0.1:0".parse()?, false, Console::new()?)?;
        let addr = server.local_addr();
        assert_eq!(
            exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")?,
            "HTTP/1.1 200 OK"
        );
        assert_eq!(
            exchange(
                addr,
                b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"
            )?,
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            exchange(
                addr,
                b"GET /state HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
            )?,
            "HTTP/1.1 413 Payload Too Large"
        );
        let mut huge = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ".to_vec();
        huge.resize(huge.len() + 2 * MAX_HEAD_BYTES, b'a');
        huge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            exchange(addr, &huge)?,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        assert_eq!(
            exchange(addr, b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n")?,
            "HTTP/1.1 404 Not Found"
        );
        server.shutdown();
        Ok(())
    }

    #[test]
    fn a_remote_address_needs_the_explicit_flag() -> anyhow::Result<()> {
        let Err(e) = ConsoleServer::start("0.0.0.0:0".parse()?, false, Console::new()?) else {
            anyhow::bail!("a wildcard address was accepted without --console-allow-remote");
        };
        assert!(e.to_string().contains("--console-allow-remote"), "{e}");
        Ok(())
    }
}
