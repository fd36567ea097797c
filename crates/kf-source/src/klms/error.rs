//! Client errors. None of them carries key material: response validation
//! errors name the field, never its value.

/// Errors of the KLMS client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KlmsError {
    /// The client configuration is unusable (bad PEM, bad URL).
    #[error("KLMS client configuration: {0}")]
    Config(String),
    /// The KLMS could not be reached (after the configured retries).
    #[error("KLMS unreachable at {url} after {attempts} attempt(s): {detail}")]
    Unreachable {
        /// Endpoint.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Last transport error.
        detail: String,
    },
    /// The KLMS did not answer in time.
    #[error("KLMS did not answer within {timeout_ms} ms ({url})")]
    Timeout {
        /// Endpoint.
        url: String,
        /// The request timeout.
        timeout_ms: u128,
    },
    /// The KLMS refused a second key package for this UID (HTTP 409).
    #[error("KLMS refused the key package: already issued ({message})")]
    AlreadyIssued {
        /// Server explanation.
        message: String,
    },
    /// The station's certificate CN is not allowed (HTTP 403).
    #[error("KLMS refused this station (HTTP 403: {message})")]
    Forbidden {
        /// Server explanation.
        message: String,
    },
    /// Any other non-success HTTP status.
    #[error("KLMS answered HTTP {status} ({code}: {message})")]
    Http {
        /// Status code.
        status: u16,
        /// Server error code, if any.
        code: String,
        /// Server explanation, if any.
        message: String,
    },
    /// The response body violates the contract.
    #[error("invalid KLMS response: {0}")]
    InvalidResponse(String),
    /// The key package's validity ended.
    #[error("key package {transaction_id} expired at {expires_at}")]
    Expired {
        /// Transaction id.
        transaction_id: String,
        /// End of validity (RFC 3339).
        expires_at: String,
    },
}

impl KlmsError {
    /// True when a later retry of the same request may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            KlmsError::Unreachable { .. } | KlmsError::Timeout { .. } => true,
            KlmsError::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// serde_json errors can quote the offending value; keep only the category and position.
pub(crate) fn redacted_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    // Field-level messages ("missing field `x`", "unknown field `x`") carry no values.
    if msg.starts_with("missing field")
        || msg.starts_with("unknown field")
        || msg.starts_with("duplicate field")
    {
        return msg;
    }
    format!(
        "malformed JSON ({:?} error at line {} column {})",
        e.classify(),
        e.line(),
        e.column()
    )
}
