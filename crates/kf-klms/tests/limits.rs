#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Connection limits over real mutual TLS on 127.0.0.1 with raw clients:
//! handshake, header, body and idle timeouts, the connection cap, body limits
//! per route (Content-Length and chunked) and HTTP/1.1 only.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kf_klms::pki::DevPki;
use kf_klms::{spawn_server, KlmsConfig, Limits, ServerHandle};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// Upper bound for every wait on the server (events expected in ~0.3 s).
const OVERALL: Duration = Duration::from_secs(5);
const SHORT_MS: u64 = 300;
const LONG_MS: u64 = 30_000;

type Tls = StreamOwned<ClientConnection, TcpStream>;

struct Fixture {
    _dir: tempfile::TempDir,
    pki: DevPki,
    server: ServerHandle,
}

fn long_limits() -> Limits {
    Limits {
        handshake_timeout_ms: LONG_MS,
        header_read_timeout_ms: LONG_MS,
        body_read_timeout_ms: LONG_MS,
        idle_timeout_ms: LONG_MS,
        ..Limits::default()
    }
}

/// A server with [`long_limits`] as changed by `edit`.
fn start_with(edit: impl FnOnce(&mut Limits)) -> Fixture {
    let mut limits = long_limits();
    edit(&mut limits);
    start(limits)
}

fn start(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::generate("Limits CA", &["station-01"]).unwrap();
    let mut config = KlmsConfig::dev(
        &pki,
        dir.path().join("ledger.db"),
        kf_crypto::AesKey::from_slice(&[0x22; 16]).unwrap(),
    )
    .unwrap();
    config.limits = limits;
    let server = spawn_server(config).unwrap();
    Fixture {
        _dir: dir,
        pki,
        server,
    }
}

fn client_config(f: &Fixture, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in kf_klms::tls::certs_from_pem("ca", &f.pki.ca.cert_pem).unwrap() {
        roots.add(ca).unwrap();
    }
    let (_, station) = &f.pki.stations[0];
    let chain = kf_klms::tls::certs_from_pem("cert", &station.cert_pem).unwrap();
    let key = kf_klms::tls::key_from_pem("key", &station.key_pem).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection with the handshake completed.
fn try_connect(f: &Fixture, alpn: &[&[u8]]) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(f.server.addr())?;
    tcp.set_read_timeout(Some(OVERALL))?;
    let conn = ClientConnection::new(
        client_config(f, alpn),
        ServerName::try_from("127.0.0.1").unwrap(),
    )
    .map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

fn connect(f: &Fixture) -> Tls {
    try_connect(f, &[b"http/1.1"]).unwrap()
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Reads until the server closes the connection; panics when it is still
/// open after `OVERALL`. Returns what was received and when the close came.
fn wait_closed(stream: &mut impl Read) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if is_closed(&e) => return (got, start.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "connection still open after {:?}; received {:?}",
                    start.elapsed(),
                    String::from_utf8_lossy(&got)
                )
            }
            Err(e) => panic!("unexpected read error {e:?}"),
        }
    }
}

/// Reads one complete `GET /healthz` response (its body ends the JSON).
fn read_health_response(tls: &mut Tls) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"\"ok\"}") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// Sends `request`, then reads until the server closes: what it answered.
fn send_until_closed(tls: &mut Tls, request: &[u8]) -> String {
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    let (got, _) = wait_closed(tls);
    String::from_utf8_lossy(&got).into_owned()
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[test]
fn silent_tcp_connection_is_closed_at_the_handshake_timeout() {
    let f = start_with(|l| l.handshake_timeout_ms = SHORT_MS);
    let mut tcp = TcpStream::connect(f.server.addr()).unwrap();
    tcp.set_read_timeout(Some(OVERALL)).unwrap();
    let (got, after) = wait_closed(&mut tcp);
    assert!(got.is_empty());
    assert!(after >= Duration::from_millis(SHORT_MS / 2), "{after:?}");
}

#[test]
fn incomplete_first_head_is_closed_at_the_header_timeout() {
    let f = start_with(|l| l.header_read_timeout_ms = SHORT_MS);
    // Nothing at all after the handshake.
    let mut silent = connect(&f);
    let (got, _) = wait_closed(&mut silent);
    assert!(got.is_empty());
    // Half a head.
    let mut slow = connect(&f);
    let text = send_until_closed(&mut slow, b"POST /v1/key-packages HTTP/1.1\r\nHost: x\r\n");
    assert!(text.is_empty(), "{text}");
}

#[test]
fn keep_alive_waits_use_the_idle_timeout_and_heads_the_header_timeout() {
    // Idle short, header long: the connection closes after the first answer.
    let f = start_with(|l| l.idle_timeout_ms = SHORT_MS);
    let mut tls = connect(&f);
    tls.write_all(HEALTH).unwrap();
    assert!(read_health_response(&mut tls).starts_with("HTTP/1.1 200"));
    let (got, _) = wait_closed(&mut tls);
    assert!(got.is_empty());
    f.server.shutdown();

    // Header short, idle long: an idle keep-alive connection stays open past
    // the header timeout, but a started head must complete within it.
    let f = start_with(|l| l.header_read_timeout_ms = SHORT_MS);
    let mut tls = connect(&f);
    tls.write_all(HEALTH).unwrap();
    read_health_response(&mut tls);
    tls.sock
        .set_read_timeout(Some(Duration::from_millis(SHORT_MS * 3)))
        .unwrap();
    let err = tls.read(&mut [0u8; 16]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "idle connection closed by the header timeout: {err:?}"
    );
    tls.sock.set_read_timeout(Some(OVERALL)).unwrap();
    tls.write_all(HEALTH).unwrap();
    read_health_response(&mut tls);
    tls.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let (got, _) = wait_closed(&mut tls);
    assert!(got.is_empty());
}

#[test]
fn stalled_body_gets_408_and_the_connection_closes() {
    let f = start_with(|l| l.body_read_timeout_ms = SHORT_MS);
    let mut tls = connect(&f);
    let text = send_until_closed(
        &mut tls,
        b"POST /v1/audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"transac",
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"body_timeout\""), "{text}");
}

#[test]
fn announced_oversized_body_gets_413_before_it_is_sent() {
    let f = start(long_limits());
    let mut tls = connect(&f);
    // No body byte is sent and the body timeout is long: only an up-front
    // refusal answers within the wait.
    let text = send_until_closed(
        &mut tls,
        b"POST /v1/key-packages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000000\r\n\r\n",
    );
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"body_too_large\""), "{text}");
}

fn chunked_post(tls: &mut Tls, path: &str, total: usize) {
    write!(
        tls,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b' '; 512];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        write!(tls, "{n:x}\r\n").unwrap();
        // The server may stop reading once the limit is passed.
        if tls.write_all(&chunk[..n]).is_err() || tls.write_all(b"\r\n").is_err() {
            return;
        }
        sent += n;
    }
    let _ = tls.write_all(b"0\r\n\r\n");
    let _ = tls.flush();
}

#[test]
fn chunked_body_is_cut_at_the_route_limit() {
    let f = start_with(|l| {
        l.key_package_body_limit = 1024;
        l.audit_body_limit = 8192;
    });
    let mut tls = connect(&f);
    chunked_post(&mut tls, "/v1/key-packages", 4096);
    let (got, _) = wait_closed(&mut tls);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // The same size is within the audit route's limit: parsed, not cut.
    let mut tls = connect(&f);
    chunked_post(&mut tls, "/v1/audit", 4096);
    let mut got = vec![0u8; 64];
    let n = tls.read(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
}

#[test]
fn connections_over_the_cap_are_closed_at_once_and_slots_come_back() {
    let f = start_with(|l| l.max_connections = 3);
    let mut open: Vec<Tls> = (0..3)
        .map(|_| {
            let mut tls = connect(&f);
            tls.write_all(HEALTH).unwrap();
            read_health_response(&mut tls);
            tls
        })
        .collect();
    // The handshake timeout (30 s) is far beyond the read timeout (5 s), after
    // which wait_closed fails: a close seen here can only come from the cap.
    let mut extra = TcpStream::connect(f.server.addr()).unwrap();
    extra.set_read_timeout(Some(OVERALL)).unwrap();
    let (got, _) = wait_closed(&mut extra);
    assert!(got.is_empty());
    // Established connections keep working.
    open[0].write_all(HEALTH).unwrap();
    read_health_response(&mut open[0]);
    // A closed connection frees its slot (released asynchronously: retry
    // until accepted, within the overall bound).
    drop(open.pop());
    let start = Instant::now();
    loop {
        let served = try_connect(&f, &[b"http/1.1"]).and_then(|mut tls| {
            tls.write_all(HEALTH)?;
            let mut buf = [0u8; 12];
            tls.read_exact(&mut buf)?;
            Ok(buf)
        });
        match served {
            Ok(buf) => {
                assert_eq!(&buf, b"HTTP/1.1 200");
                break;
            }
            Err(e) => assert!(start.elapsed() < OVERALL, "slot not released: {e:?}"),
        }
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn assert_preface_refused(mut tls: Tls) {
    tls.write_all(H2_PREFACE).unwrap();
    // An HTTP/2 SETTINGS frame: 3-byte length, type 0x04.
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    tls.flush().unwrap();
    let (got, _) = wait_closed(&mut tls);
    let is_settings = got.len() >= 9 && got[3] == 0x04;
    assert!(!is_settings, "server spoke HTTP/2: {got:02x?}");
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 4"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn only_http1_is_offered_and_an_http2_preface_is_refused() {
    let f = start(long_limits());
    // Offering h2 and http/1.1: http/1.1 is chosen.
    let tls = try_connect(&f, &[b"h2", b"http/1.1"]).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_preface_refused(tls);
    // Offering h2 only: no protocol in common, the handshake fails.
    let refused = try_connect(&f, &[b"h2"]).err().unwrap();
    assert!(
        refused.to_string().contains("NoApplicationProtocol"),
        "{refused}"
    );
    // Without ALPN the preface is refused all the same.
    let tls = try_connect(&f, &[]).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), None);
    assert_preface_refused(tls);
}
