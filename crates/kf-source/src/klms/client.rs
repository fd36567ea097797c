//! Blocking HTTPS client with mutual TLS, bounded retries and size limits.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::package::KeyPackage;
use super::KlmsError;

/// Largest response body accepted (a key package is about 5 KiB).
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024;

/// Client configuration.
pub struct KlmsClientConfig {
    /// Base URL, e.g. `https://127.0.0.1:8443`.
    pub base_url: String,
    /// Pinned CA certificate(s) of the KLMS, PEM. No other root is trusted.
    pub ca_pem: Vec<u8>,
    /// Station certificate followed by its private key, PEM.
    pub identity_pem: Zeroizing<Vec<u8>>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Attempts for transient failures (1 = no retry).
    pub max_attempts: u32,
    /// First backoff; doubles after each transient failure.
    pub initial_backoff: Duration,
}

impl KlmsClientConfig {
    /// Defaults: 2 s connect, 5 s request, 3 attempts, 100 ms first backoff.
    pub fn new(
        base_url: impl Into<String>,
        ca_pem: Vec<u8>,
        identity_pem: Zeroizing<Vec<u8>>,
    ) -> Self {
        KlmsClientConfig {
            base_url: base_url.into(),
            ca_pem,
            identity_pem,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
        }
    }

    /// Reads the CA, client certificate and client key PEM files.
    pub fn from_pem_files(
        base_url: impl Into<String>,
        ca: &Path,
        client_cert: &Path,
        client_key: &Path,
    ) -> Result<Self, KlmsError> {
        let read = |p: &Path| {
            kf_files::read_regular(p, kf_files::PEM_MAX_BYTES, kf_files::Links::Follow)
                .map_err(|e| KlmsError::Config(e.to_string()))
        };
        let mut identity = Zeroizing::new(read(client_cert)?);
        expect_pem_label(client_cert, &identity, "certificate", |l| {
            l == "CERTIFICATE"
        })?;
        if !identity.ends_with(b"\n") {
            identity.push(b'\n');
        }
        let key = Zeroizing::new(read(client_key)?);
        expect_pem_label(client_key, &key, "private key", |l| {
            l.ends_with("PRIVATE KEY")
        })?;
        identity.extend_from_slice(&key);
        Ok(KlmsClientConfig::new(base_url, read(ca)?, identity))
    }
}

/// Checks that a PEM file holds an item of the expected kind, naming what it
/// holds otherwise (a certificate given as the key file, for instance).
fn expect_pem_label(
    path: &Path,
    pem: &[u8],
    expected: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<(), KlmsError> {
    let text = String::from_utf8_lossy(pem);
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .filter_map(|l| l.strip_suffix("-----"))
        .collect();
    if labels.iter().any(|l| wanted(l)) {
        return Ok(());
    }
    let found = if labels.is_empty() {
        "no PEM item".to_owned()
    } else {
        labels.join(", ")
    };
    Err(KlmsError::Config(format!(
        "{}: no {expected} in this PEM file (found: {found})",
        path.display()
    )))
}

/// `POST /v1/audit` acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAck {
    /// Transaction id of the stored record.
    pub transaction_id: String,
    /// `stored` or `duplicate`.
    pub status: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

/// The KLMS client (blocking; do not call it from inside an async runtime).
pub struct KlmsClient {
    http: Client,
    base_url: String,
    request_timeout: Duration,
    max_attempts: u32,
    initial_backoff: Duration,
}

impl std::fmt::Debug for KlmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KlmsClient")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl KlmsClient {
    /// Builds the client: rustls, pinned CA only, client identity, timeouts.
    pub fn new(config: KlmsClientConfig) -> Result<KlmsClient, KlmsError> {
        let cfg = |e: reqwest::Error| KlmsError::Config(error_chain(&e));
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        if !base_url.starts_with("https://") {
            return Err(KlmsError::Config("the KLMS URL must be https://".into()));
        }
        let mut builder = Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true)
            .identity(reqwest::Identity::from_pem(&config.identity_pem).map_err(cfg)?)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none());
        let cas = reqwest::Certificate::from_pem_bundle(&config.ca_pem).map_err(cfg)?;
        if cas.is_empty() {
            return Err(KlmsError::Config(
                "no CA certificate in the pinned CA PEM".into(),
            ));
        }
        for ca in cas {
            builder = builder.add_root_certificate(ca);
        }
        Ok(KlmsClient {
            http: builder.build().map_err(cfg)?,
            base_url,
            request_timeout: config.request_timeout,
            max_attempts: config.max_attempts.max(1),
            initial_backoff: config.initial_backoff,
        })
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<(), KlmsError> {
        let url = format!("{}/healthz", self.base_url);
        let (status, body) = self.send_with_retries(&url, || self.http.get(&url))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(http_error(status, &body))
        }
    }

    /// `POST /v1/key-packages` for `fob_uid`; returns only a validated, fresh package.
    pub fn fetch_key_package(
        &self,
        fob_uid: &[u8],
        reader_id: &str,
    ) -> Result<KeyPackage, KlmsError> {
        let url = format!("{}/v1/key-packages", self.base_url);
        let body =
            serde_json::json!({"fob_uid": hex::encode_upper(fob_uid), "reader_id": reader_id});
        let (status, bytes) = self.send_with_retries(&url, || self.http.post(&url).json(&body))?;
        let bytes = Zeroizing::new(bytes);
        match status {
            s if s.is_success() => KeyPackage::from_json(&bytes, fob_uid),
            StatusCode::CONFLICT => Err(KlmsError::AlreadyIssued {
                message: error_message(&bytes),
            }),
            _ => Err(http_error(status, &bytes)),
        }
    }

    /// `POST /v1/audit` with one audit record (JSON text).
    pub fn post_audit(&self, record_json: &str) -> Result<AuditAck, KlmsError> {
        self.post_json("/v1/audit", record_json.to_owned())
    }

    /// `POST /v1/audit/chain`: anchors one journal record (with the audit
    /// record of an outcome) and returns the KLMS's signed receipt.
    pub fn post_chain(
        &self,
        upload: &kf_audit::receipt::ChainUpload,
    ) -> Result<kf_audit::receipt::ChainUploadAck, KlmsError> {
        let body = serde_json::to_string(upload)
            .map_err(|e| KlmsError::Config(format!("chain upload: {e}")))?;
        self.post_json("/v1/audit/chain", body)
    }

    /// POSTs a JSON body and parses a success response.
    fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: String,
    ) -> Result<T, KlmsError> {
        let url = format!("{}{path}", self.base_url);
        let (status, bytes) = self.send_with_retries(&url, || {
            self.http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })?;
        if status.is_success() {
            serde_json::from_slice(&bytes)
                .map_err(|e| KlmsError::InvalidResponse(super::error::redacted_json_error(&e)))
        } else {
            Err(http_error(status, &bytes))
        }
    }

    /// `GET /v1/audit/chain/head`: this station's anchored journal head.
    pub fn chain_head(&self) -> Result<kf_audit::receipt::ChainHead, KlmsError> {
        let url = format!("{}/v1/audit/chain/head", self.base_url);
        let (status, bytes) = self.send_with_retries(&url, || self.http.get(&url))?;
        if status.is_success() {
            serde_json::from_slice(&bytes)
                .map_err(|e| KlmsError::InvalidResponse(super::error::redacted_json_error(&e)))
        } else {
            Err(http_error(status, &bytes))
        }
    }

    fn send_with_retries(
        &self,
        url: &str,
        request: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), KlmsError> {
        let mut backoff = self.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.max_attempts;
            match request().send() {
                Ok(response) => {
                    let status = response.status();
                    if matches!(status.as_u16(), 502..=504) && !last {
                        tracing::debug!(%status, attempt, "KLMS busy; retrying");
                    } else {
                        return Ok((status, self.read_limited(url, response)?));
                    }
                }
                // Nothing was sent: safe to retry (connect timeouts included).
                Err(e) if e.is_connect() => {
                    if last {
                        return Err(KlmsError::Unreachable {
                            url: url.to_owned(),
                            attempts: attempt,
                            detail: error_chain(&e),
                        });
                    }
                    tracing::debug!(error = %error_chain(&e), attempt, "KLMS unreachable; retrying");
                }
                Err(e) if e.is_timeout() => {
                    return Err(KlmsError::Timeout {
                        url: url.to_owned(),
                        timeout_ms: self.request_timeout.as_millis(),
                    })
                }
                Err(e) => {
                    return Err(KlmsError::Unreachable {
                        url: url.to_owned(),
                        attempts: attempt,
                        detail: error_chain(&e),
                    })
                }
            }
            std::thread::sleep(backoff);
            backoff = backoff.saturating_mul(2);
        }
    }

    fn read_limited(&self, url: &str, response: Response) -> Result<Vec<u8>, KlmsError> {
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES)
        {
            return Err(KlmsError::InvalidResponse(format!(
                "response body larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let mut body = Vec::new();
        response
            .take(MAX_RESPONSE_BYTES + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                if e.to_string().contains("timed out") {
                    KlmsError::Timeout {
                        url: url.to_owned(),
                        timeout_ms: self.request_timeout.as_millis(),
                    }
                } else {
                    KlmsError::InvalidResponse(format!("response body could not be read: {e}"))
                }
            })?;
        if body.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(KlmsError::InvalidResponse(format!(
                "response body larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        Ok(body)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| "no details".to_owned())
}

fn http_error(status: StatusCode, body: &[u8]) -> KlmsError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let (code, message) = parsed
        .map(|b| (b.error, b.message))
        .unwrap_or_else(|| (String::new(), String::new()));
    if status == StatusCode::FORBIDDEN {
        return KlmsError::Forbidden { message };
    }
    KlmsError::Http {
        status: status.as_u16(),
        code,
        message,
    }
}
