//! Request bodies as the OpenAPI document describes them.
//!
//! [`ApiJson`] reads a body as `web::Json` does (its size limit and content type from
//! `JsonConfig`), [`OptionalJson`] one that may be left out. Both read what JSON Schema means
//! rather than only what serde's defaults take: a whole number written as a float (`2.0`) is
//! an `integer`, and an array is never an object (see [`crate::strict`]).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{body_too_large, json_error, ApiError, ErrorCode};

/// A JSON body, limited and content-typed as `web::Json` is (`JsonConfig`), whose whole numbers
/// may be spelled as floats: JSON Schema's `integer` takes `2.0` as well as `2`, and so does
/// every integer field of a body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = json.await?;
            Ok(ApiJson(from_json(value)?))
        })
    }
}

/// Reads a parsed body as `T`: whole floats as integers, objects only where structs are.
fn from_json<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    whole_numbers_as_integers(&mut value);
    crate::strict::from_value(value)
        .map_err(|e| json_error(actix_web::error::JsonPayloadError::Deserialize(e)))
}

fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // The bounds are 2^64 and -2^63, exactly representable; `as` is exact inside them.
            if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                *value = Value::from(f as u64);
            } else if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// A JSON body that may be left out (empty, or `null`): then the type's default. Any content
/// type is read as JSON.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes =
                bytes
                    .await
                    .map_err(|e| match e.as_error::<actix_web::error::PayloadError>() {
                        Some(actix_web::error::PayloadError::Overflow) => body_too_large(),
                        _ => ApiError::new(ErrorCode::MalformedJson, e.to_string()),
                    })?;
            body_or_default(&bytes).map(OptionalJson)
        })
    }
}

/// Parses a JSON body; an empty body, or `null`, reads as the type's default.
fn body_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match serde_json::from_slice::<Value>(bytes)
        .map_err(|e| json_error(actix_web::error::JsonPayloadError::Deserialize(e)))?
    {
        Value::Null => Ok(T::default()),
        value => from_json(value),
    }
}
