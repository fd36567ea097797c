//! `sks serve --listen` transport: length-prefixed frames over loopback TCP after the token
//! handshake, the TCP client running Appendix B, refusal of non-loopback addresses, and crash
//! consistency when the server process is killed during closeProvisioningSession.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rand_core::RngCore;
use sks::net::{read_frame, serve, write_frame, Listener, ServeOptions, TcpClient, Token};
use sks_core::api::{req, Request, Response, SksApi};
use sks_core::{Config, ErrorCode, Sks};
use sks_issuer::{KeyEntrySpec, PinPolicy};
use sks_sqlite::SqliteStorage;
use std::time::Duration;

fn token_file(dir: &std::path::Path) -> (std::path::PathBuf, Token) {
    let path = dir.join("sks.token");
    let token = Token::load_or_create(&path).unwrap();
    (path, token)
}

#[test]
fn serve_and_tcp_client_run_appendix_b() {
    let dir = tempfile::tempdir().unwrap();
    let (path, token) = token_file(dir.path());
    let listener = Listener::tcp("127.0.0.1:0", token).unwrap();
    let addr = listener.describe().unwrap();
    std::thread::spawn(move || serve(listener, memory_sks(), ServeOptions::default()));
    let token = Token::load(&path).unwrap();
    let mut client = TcpClient::connect_tcp(&addr, &token).unwrap();
    sks_issuer::demo::run(&mut client).unwrap();
    // A malformed frame gets an error response, and the connection stays usable.
    let mut raw = std::net::TcpStream::connect(&addr).unwrap();
    write_frame(
        &mut raw,
        std::fs::read_to_string(&path).unwrap().trim().as_bytes(),
    )
    .unwrap();
    assert_eq!(read_frame(&mut raw).unwrap().unwrap(), [0]);
    write_frame(&mut raw, &[0xEE, 1, 2]).unwrap();
    let reply = read_frame(&mut raw).unwrap().unwrap();
    assert_eq!(reply[0], sks_core::ErrorCode::Option.status());
    write_frame(
        &mut raw,
        &Request::GetDeviceInfo(req::GetDeviceInfo {})
            .encode()
            .unwrap(),
    )
    .unwrap();
    let reply = read_frame(&mut raw).unwrap().unwrap();
    assert!(matches!(
        Response::decode(1, &reply).unwrap().unwrap(),
        Response::GetDeviceInfo(_)
    ));
}

#[test]
fn non_loopback_listen_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = token_file(dir.path());
    assert!(matches!(
        Listener::tcp("0.0.0.0:0", token),
        Err(sks::net::NetError::NotLoopback(_))
    ));
}

/// Kills `sks serve` at random points during closeProvisioningSession of a session carrying
/// a postUpdateKey and a new key; after restart the store holds the old state or the new one.
#[test]
fn crash_during_close_leaves_old_or_new_state() {
    const LAST: u64 = 5;
    let mut seen_old = Vec::new();
    let mut seen_new = Vec::new();
    for round in 0..=LAST {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sks.db");
        let ident = identity();
        let target = {
            let mut s =
                Sks::initialize(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
            pin_key_session(&mut s, &ident, PinPolicy::new("PIN.1"), "1234")
        };
        let (mut child, addr, token) = start_serve(&db);
        let token = Token::load(&token).unwrap();
        let mut client = TcpClient::connect_tcp(&addr, &token).unwrap();
        let mut iss = ident.session("https://issuer.example.com/x", "S2");
        open(&mut client, &mut iss);
        let new = key(&mut client, &mut iss, &KeyEntrySpec::new("New"));
        let extra = key(&mut client, &mut iss, &KeyEntrySpec::new("Extra"));
        client
            .post_update_key(
                iss.post_update_key(new.handle, &new.ee, target.handle, &target.ee)
                    .unwrap(),
            )
            .unwrap();
        let close_req = Request::CloseProvisioningSession(iss.close(b"nonce").unwrap());
        // A second connection sends the close frame right after the token handshake.
        let mut raw = TcpClient::connect_tcp(&addr, &token).unwrap().into_stream();
        // The first round kills before the close is sent (must find the old state), the last
        // after its reply arrived (must find the new one); the rounds between kill at a
        // random moment while the close may be running.
        if round == LAST {
            write_frame(&mut raw, &close_req.encode().unwrap()).unwrap();
            let reply = read_frame(&mut raw).unwrap().unwrap();
            assert_eq!(reply[0], 0, "close succeeded");
        } else if round > 0 {
            write_frame(&mut raw, &close_req.encode().unwrap()).unwrap();
            std::thread::sleep(Duration::from_micros(rand_core::OsRng.next_u64() % 4000));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let mut s = Sks::open(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
        let open_sessions = session_count(&mut s, true);
        let key_list = keys(&mut s);
        let ee = s
            .get_key_attributes(req::GetKeyAttributes {
                key_handle: target.handle,
            })
            .unwrap()
            .certificate_path
            .0[0]
            .clone();
        if open_sessions == 1 {
            assert_eq!(
                key_list,
                vec![target.handle],
                "old state: only the original key is usable"
            );
            assert_eq!(ee, target.ee);
            seen_old.push(round);
        } else {
            assert_eq!(open_sessions, 0);
            assert_eq!(key_list, vec![target.handle, extra.handle], "new state");
            assert_eq!(ee, new.ee);
            seen_new.push(round);
        }
        sign(&mut s, target.handle, "1234").unwrap();
    }
    eprintln!("crash rounds: old state {seen_old:?}, new state {seen_new:?}");
    assert_eq!(
        seen_old.first(),
        Some(&0),
        "killed before the close: old state"
    );
    assert_eq!(
        seen_new.last(),
        Some(&LAST),
        "killed after the reply: new state"
    );
}

/// A PIN error reported over the wire is already durable: killing the server right after the
/// reply does not reset the counter.
#[test]
fn pin_error_counter_survives_kill_after_reply() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sks.db");
    let target = {
        let mut s = Sks::initialize(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
        pin_key_session(&mut s, &identity(), PinPolicy::new("PIN.1"), "1234")
    };
    let (mut child, addr, token) = start_serve(&db);
    let token = Token::load(&token).unwrap();
    let mut client = TcpClient::connect_tcp(&addr, &token).unwrap();
    assert_eq!(
        code(sign(&mut client, target.handle, "9999")),
        ErrorCodeOf(ErrorCode::Authorization)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut s = Sks::open(SqliteStorage::open(&db).unwrap(), Config::default()).unwrap();
    assert_eq!(protection(&mut s, target.handle).pin_error_count, 1);
}
