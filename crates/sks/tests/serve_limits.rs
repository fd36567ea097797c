//! `sks serve` fit for a shared machine: a PUK penalty delays only its caller, the server's
//! connections, timeouts, frame sizes and provisioning sessions are bounded, and only the
//! owner (Unix socket) or a token holder (TCP) may connect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sks::net::{read_frame, serve, write_frame, Listener, ServeOptions, TcpClient, Token};
use sks_core::api::{req, Request, Response, SksApi};
use sks_core::secret::Secret;
use sks_core::{Config, ErrorCode, MemoryStorage, Sks};
use sks_issuer::{KeyEntrySpec, PinPolicy};
use sks_sqlite::SqliteStorage;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Longest any test waits for a condition.
const PATIENCE: Duration = Duration::from_secs(20);

/// Serves `sks` on loopback TCP in a background thread; returns the address and the token.
fn serve_tcp(sks: Sks<MemoryStorage>, opts: ServeOptions) -> (String, Token, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let listener = Listener::tcp("127.0.0.1:0", Token::load_or_create(&path).unwrap()).unwrap();
    let addr = listener.describe().unwrap();
    std::thread::spawn(move || serve(listener, sks, opts));
    (addr, Token::load(&path).unwrap(), dir)
}

/// [`serve_tcp`] of a fresh in-memory SKS with the default options as `edit` leaves them.
fn serve_memory(edit: impl FnOnce(&mut ServeOptions)) -> (String, Token, tempfile::TempDir) {
    let mut opts = ServeOptions::default();
    edit(&mut opts);
    serve_tcp(memory_sks(), opts)
}

/// A raw connection that passed the token handshake.
fn raw(addr: &str, token: &Token) -> TcpStream {
    TcpClient::connect_tcp(addr, token).unwrap().into_stream()
}

fn device_info(c: &mut impl SksApi) {
    c.get_device_info(req::GetDeviceInfo {}).unwrap();
}

/// The SKS error carried by a reply frame.
fn error_of(frame: &[u8]) -> sks_core::SksError {
    Response::decode(1, frame).unwrap().unwrap_err()
}

/// A closed session with one key whose PUK policy has RetryLimit 0 ("no limit, delay").
fn no_limit_puk_key(s: &mut impl SksApi) -> u32 {
    let mut iss = open_s1(s);
    let ph = pin_and_puk(s, &mut iss, PinPolicy::new("PIN.1"), 0);
    let spec = pin_spec("Key.1", ph, b"1234");
    let k = key(s, &mut iss, &spec);
    close(s, &mut iss).unwrap();
    k.handle
}

fn wrong_puk(c: &mut impl SksApi, kh: u32) -> Duration {
    let t = Instant::now();
    let r = c.unlock_key(req::UnlockKey {
        key_handle: kh,
        authorization: Secret::from("00000000"),
    });
    assert_eq!(r.unwrap_err().code(), ErrorCode::Authorization);
    t.elapsed()
}

/// A server holding one key with a "no limit" PUK policy whose checks wait `delay`.
fn puk_server(delay: Duration) -> (String, Token, tempfile::TempDir, u32) {
    let mut sks = Sks::initialize(
        MemoryStorage::new(),
        Config {
            puk_delay: delay,
            ..Config::default()
        },
    )
    .unwrap();
    let kh = no_limit_puk_key(&mut sks);
    let (addr, token, dir) = serve_tcp(sks, ServeOptions::default());
    (addr, token, dir, kh)
}

#[test]
fn puk_delay_stalls_only_its_caller() {
    let delay = Duration::from_secs(2);
    let (addr, token, _dir, kh) = puk_server(delay);
    let mut other = TcpClient::connect_tcp(&addr, &token).unwrap();
    device_info(&mut other);

    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let (a, t) = (
        addr.clone(),
        Token::load(&_dir.path().join("token")).unwrap(),
    );
    std::thread::spawn(move || {
        let mut penalized = TcpClient::connect_tcp(&a, &t).unwrap();
        started_tx.send(Instant::now()).unwrap();
        let penalty = wrong_puk(&mut penalized, kh);
        done_tx.send((penalty, Instant::now())).unwrap();
    });
    let penalized_start = started_rx.recv_timeout(PATIENCE).unwrap();
    // The other client calls again and again while the PUK call waits out its delay. A call
    // it starts when half the delay has passed (the PUK call long at the server by then)
    // must end before the PUK call does: queued behind the penalty, it would end after it.
    let mut overtook = 0;
    let (penalty, penalized_done) = loop {
        let started = Instant::now();
        device_info(&mut other);
        let ended = Instant::now();
        match done_rx.try_recv() {
            Ok(done) => break done,
            Err(mpsc::TryRecvError::Empty) => {
                if started >= penalized_start + delay / 2 {
                    overtook += 1;
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => panic!("the PUK caller died"),
        }
        assert!(
            ended < penalized_start + PATIENCE,
            "the PUK call never ended"
        );
        // Pacing only: a call every few milliseconds is plenty.
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(penalty >= delay, "the penalized caller waited the delay");
    assert!(penalized_done >= penalized_start + delay);
    assert!(
        overtook > 0,
        "no call of another client ended during the second half of the PUK delay"
    );
}

#[test]
fn parallel_puk_attempts_on_one_policy_are_serialized() {
    let delay = Duration::from_millis(300);
    let (addr, _token, dir, kh) = puk_server(delay);
    let start = Instant::now();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let a = addr.clone();
            let t = Token::load(&dir.path().join("token")).unwrap();
            std::thread::spawn(move || {
                let mut c = TcpClient::connect_tcp(&a, &t).unwrap();
                wrong_puk(&mut c, kh);
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let total = start.elapsed();
    assert!(
        total >= delay * 3,
        "3 attempts on one PUK finished in {total:?}"
    );
}

#[test]
fn connection_cap_refuses_the_excess_and_frees_slots() {
    let (addr, token, _dir) = serve_memory(|o| {
        o.max_connections = 2;
    });
    let mut a = TcpClient::connect_tcp(&addr, &token).unwrap();
    let b = TcpClient::connect_tcp(&addr, &token).unwrap();
    device_info(&mut a);
    // The third connection gets one error frame (before any token) and is closed.
    let mut c = TcpStream::connect(&addr).unwrap();
    let e = error_of(&read_frame(&mut c).unwrap().unwrap());
    assert_eq!(e.code(), ErrorCode::NotAllowed);
    assert!(e.to_string().contains("limit 2"), "{e}");
    assert!(read_frame(&mut c).unwrap().is_none());
    // Closing one frees its slot once the server sees the end of stream.
    drop(b);
    let start = Instant::now();
    loop {
        if let Ok(mut d) = TcpClient::connect_tcp(&addr, &token) {
            device_info(&mut d);
            break;
        }
        assert!(start.elapsed() < PATIENCE, "slot never freed");
    }
    device_info(&mut a);
}

#[test]
fn idle_and_slow_connections_are_closed() {
    let (addr, token, _dir) = serve_memory(|o| {
        o.idle_timeout = Duration::from_millis(300);
        o.frame_timeout = Duration::from_millis(300);
    });
    // Idle after the handshake: closed after the idle timeout.
    let mut idle = raw(&addr, &token);
    let t = Instant::now();
    assert!(read_frame(&mut idle).unwrap().is_none());
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < PATIENCE);
    // A frame that never completes: closed after the frame timeout.
    let mut slow = raw(&addr, &token);
    slow.write_all(&100u32.to_be_bytes()).unwrap();
    slow.write_all(&[0u8; 10]).unwrap();
    let t = Instant::now();
    assert!(read_frame(&mut slow).unwrap().is_none());
    assert!(t.elapsed() < PATIENCE);
    // No token at all: closed after the frame timeout.
    let mut silent = TcpStream::connect(&addr).unwrap();
    assert!(read_frame(&mut silent).unwrap().is_none());
}

#[test]
fn oversized_frame_is_refused_from_its_length() {
    let (addr, token, _dir) = serve_memory(|o| {
        o.max_frame = 4096;
    });
    for announced in [4097u32, u32::MAX] {
        let mut s = raw(&addr, &token);
        // Only the length is sent: the refusal cannot depend on reading (or allocating) a body.
        s.write_all(&announced.to_be_bytes()).unwrap();
        let e = error_of(&read_frame(&mut s).unwrap().unwrap());
        assert_eq!(e.code(), ErrorCode::External);
        assert!(e.to_string().contains("limit of 4096"), "{e}");
        assert!(read_frame(&mut s).unwrap().is_none());
    }
    // A frame at the limit is read and answered (here: a malformed request).
    let mut s = raw(&addr, &token);
    write_frame(&mut s, &[0xEE; 4096]).unwrap();
    let e = error_of(&read_frame(&mut s).unwrap().unwrap());
    assert_eq!(e.code(), ErrorCode::Option);
    assert!(e.to_string().contains("Malformed request"), "{e}");
}

#[test]
fn open_session_cap_gives_a_clear_error() {
    let mut s = Sks::initialize(
        MemoryStorage::new(),
        Config {
            max_open_sessions: 2,
            ..Config::default()
        },
    )
    .unwrap();
    let id = identity();
    let mut first = id.session("https://issuer.example.com/x", "S1");
    let ph = open(&mut s, &mut first);
    let mut second = id.session("https://issuer.example.com/x", "S2");
    open(&mut s, &mut second);
    let mut third = id.session("https://issuer.example.com/x", "S3");
    let e = s
        .create_provisioning_session(third.create_session_request().unwrap())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    assert!(
        e.to_string()
            .contains("Too many open provisioning sessions"),
        "{e}"
    );
    assert_eq!(session_count(&mut s, true), 2);
    s.abort_provisioning_session(req::AbortProvisioningSession {
        provisioning_handle: ph,
    })
    .unwrap();
    open(&mut s, &mut third);
}

/// Opens session `name`, or the error code createProvisioningSession gives.
fn try_open(sks: &mut impl SksApi, name: &str) -> Result<(sks_issuer::Issuer, u32), ErrorCode> {
    let mut iss = identity().session(ISSUER_URI, name);
    let dc = device_cert(sks);
    let out = sks
        .create_provisioning_session(iss.create_session_request().unwrap())
        .map_err(|e| e.code())?;
    iss.accept_session(&out, &dc).unwrap();
    Ok((iss, out.provisioning_handle))
}

#[test]
fn open_session_cap_follows_every_way_a_session_ends() {
    let now = clock();
    let config = || Config {
        max_open_sessions: 2,
        session_timeout: Duration::from_secs(120),
        ..common::config(Arc::clone(&now))
    };
    let mut s = Sks::initialize(MemoryStorage::new(), config()).unwrap();
    let full = |s: &mut Sks<MemoryStorage>| {
        assert_eq!(try_open(s, "S.over").unwrap_err(), ErrorCode::Storage);
    };
    let (mut a, _) = try_open(&mut s, "S.a").unwrap();
    let (_, b) = try_open(&mut s, "S.b").unwrap();
    full(&mut s);
    // Closed.
    close(&mut s, &mut a).unwrap();
    let (_, c) = try_open(&mut s, "S.c").unwrap();
    full(&mut s);
    // Aborted by the issuer.
    s.abort_provisioning_session(req::AbortProvisioningSession {
        provisioning_handle: b,
    })
    .unwrap();
    try_open(&mut s, "S.d").unwrap();
    full(&mut s);
    // Aborted by a failing call (an unknown key ID).
    s.get_key_handle(req::GetKeyHandle {
        provisioning_handle: c,
        id: "Nothing".into(),
    })
    .unwrap_err();
    try_open(&mut s, "S.e").unwrap();
    full(&mut s);
    // Reloaded from storage: the two open sessions still count.
    let mut s = Sks::open(s.into_storage(), config()).unwrap();
    full(&mut s);
    // Expired.
    now.fetch_add(121, Ordering::SeqCst);
    try_open(&mut s, "S.f").unwrap();
    try_open(&mut s, "S.g").unwrap();
    full(&mut s);
    assert_eq!(session_count(&mut s, true), 2);
}

#[test]
fn abandoned_sessions_expire_and_are_purged_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sks.db");
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let config = || Config {
        session_timeout: Duration::from_secs(120),
        ..common::config(Arc::clone(&now))
    };
    let mut s = Sks::initialize(SqliteStorage::open(&db).unwrap(), config()).unwrap();
    let kept = pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234");
    let mut iss = identity().session("https://issuer.example.com/x", "S.abandoned");
    iss.session_life_time = 86_400;
    open(&mut s, &mut iss);
    key(&mut s, &mut iss, &KeyEntrySpec::new("Pending"));
    now.fetch_add(119, Ordering::SeqCst);
    device_info(&mut s);
    assert_eq!(session_count(&mut s, true), 1, "not yet expired");
    now.fetch_add(2, Ordering::SeqCst);
    device_info(&mut s);
    drop(s);
    // The purge was stored: a fresh process sees neither the session nor its key.
    let mut s = Sks::open(SqliteStorage::open(&db).unwrap(), config()).unwrap();
    assert_eq!(session_count(&mut s, true), 0);
    assert_eq!(keys(&mut s), vec![kept.handle]);
}

#[test]
fn tcp_refuses_clients_without_the_token() {
    let (addr, token, dir) = serve_memory(|_| {});
    // A request instead of the token.
    let mut s = TcpStream::connect(&addr).unwrap();
    write_frame(
        &mut s,
        &Request::GetDeviceInfo(req::GetDeviceInfo {})
            .encode()
            .unwrap(),
    )
    .unwrap();
    let e = error_of(&read_frame(&mut s).unwrap().unwrap());
    assert_eq!(e.code(), ErrorCode::Authorization);
    assert!(read_frame(&mut s).unwrap().is_none());
    // A wrong token of the right length.
    let mut wrong = std::fs::read(dir.path().join("token")).unwrap();
    wrong[0] ^= 1;
    let mut s = TcpStream::connect(&addr).unwrap();
    write_frame(&mut s, wrong.trim_ascii()).unwrap();
    let e = error_of(&read_frame(&mut s).unwrap().unwrap());
    assert_eq!(e.code(), ErrorCode::Authorization);
    // The right one.
    device_info(&mut TcpClient::connect_tcp(&addr, &token).unwrap());
}

#[cfg(unix)]
mod unix {
    use super::*;
    use sks::net::{Client, NetError};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn token_file_is_created_0600_and_looser_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        Token::load_or_create(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().trim().len() >= 64);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Token::load(&path).unwrap_err().to_string();
        assert!(e.contains("must be 0600"), "{e}");
        // No leftover temporary files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn serve_unix(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("sks.sock");
        let listener = Listener::unix(&path).unwrap();
        std::thread::spawn(move || serve(listener, memory_sks(), ServeOptions::default()));
        path
    }

    #[test]
    fn unix_socket_is_0600_and_serves_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = serve_unix(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut c = Client::connect_unix(&path).unwrap();
        sks_issuer::demo::run(&mut c).unwrap();
        // A second server on the same live socket is refused.
        assert!(matches!(
            Listener::unix(&path),
            Err(NetError::File { reason, .. }) if reason == "another server is listening on this socket"
        ));
    }

    /// A client running as another user is refused by its peer credentials even when the
    /// socket file's mode would let it connect.
    #[test]
    fn unix_socket_refuses_other_users() {
        use std::os::unix::process::CommandExt;
        if !nix_is_root() {
            // Only root can run a client as another user; as a normal user the 0600 mode
            // already keeps others out, checked above.
            eprintln!("not root: skipping the other-user client");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = serve_unix(dir.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        // A copy of the client the other user can execute wherever the build tree lives.
        let exe = dir.path().join("sks");
        std::fs::copy(env!("CARGO_BIN_EXE_sks"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&exe)
            .arg("--socket")
            .arg(&path)
            .arg("device-info")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("Peer is not the SKS owner"), "{stderr}");
        // The owner still gets through.
        device_info(&mut Client::connect_unix(&path).unwrap());
    }

    /// `sks serve --db FILE` listens on `FILE.sock` (0600) and the CLI reaches it with --socket.
    #[test]
    fn cli_serves_on_the_default_socket() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sks.db");
        let sks = |args: &[&std::ffi::OsStr]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sks"))
                .args(args)
                .env_remove("SKS_DB")
                .output()
                .unwrap()
        };
        assert!(sks(&["init".as_ref(), "--db".as_ref(), db.as_os_str()])
            .status
            .success());
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_sks"))
            .arg("serve")
            .arg("--db")
            .arg(&db)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let line = first_line_within(&mut server, std::time::Duration::from_secs(120));
        let socket = dir.path().join("sks.db.sock");
        assert_eq!(line.trim(), format!("sks serving on {}", socket.display()));
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        let out = sks(&[
            "--socket".as_ref(),
            socket.as_os_str(),
            "device-info".as_ref(),
        ]);
        server.kill().unwrap();
        server.wait().unwrap();
        assert_eq!(mode, 0o600);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("APILevel:          100"),
            "{text}"
        );
        // TCP without a token file is refused up front.
        let out = sks(&[
            "serve".as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));
    }

    fn nix_is_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
    }
}
