//! What the KLMS integration tests share: a station's HTTPS client and its
//! key-package request.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

/// An HTTPS client that trusts only `ca_pem` and presents `identity` (a
/// certificate and its key, PEM) when given one.
pub fn https_client(ca_pem: &str, identity: Option<&str>, timeout: Duration) -> Client {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(timeout);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// `POST /v1/key-packages` for the fob `uid` on reader `reader_id`: the
/// status and the JSON answer.
pub fn request_package(client: &Client, base: &str, uid: &str, reader_id: &str) -> (u16, Value) {
    let r = client
        .post(format!("{base}/v1/key-packages"))
        .json(&json!({"fob_uid": uid, "reader_id": reader_id}))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}
