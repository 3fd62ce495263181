//! Idempotency keys at the edge: the `Idempotency-Key` header of a REST command, or the `id`
//! of a websocket command, with a digest of the request it came with.

use actix_web::HttpRequest;
use rail_actors::journal::KeyRecord;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

pub const HEADER: &str = "idempotency-key";
/// The longest key accepted.
pub const MAX_KEY: usize = 128;
/// `valid_key` as a regular expression, for the OpenAPI document.
pub const KEY_PATTERN: &str = "^[!-~]{1,128}$";

/// Whether a client-chosen key is acceptable.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A digest of what a request asks for: where it goes and its parsed body.
pub fn fingerprint(target: &str, body: &impl Serialize) -> String {
    let mut digest = Sha256::new();
    digest.update(target.as_bytes());
    digest.update(b"\n");
    digest.update(serde_json::to_vec(body).expect("request bodies serialize"));
    format!("{:x}", digest.finalize())
}

/// The key a REST command carries, if any, with its request's digest.
pub fn from_request(
    req: &HttpRequest,
    body: &impl Serialize,
) -> Result<Option<KeyRecord>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"),
            )
        })?;
    let target = format!("{} {}", req.method(), req.path());
    Ok(Some(KeyRecord {
        key: key.to_owned(),
        fingerprint: fingerprint(&target, body),
    }))
}
