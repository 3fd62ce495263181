//! The edge's errors: every refusal is JSON with a stable code and a human message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use rail_actors::CommandError;
use serde::{Deserialize, Serialize};

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// What every refusal answers: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "parts_pending", "message": "expo cannot bump yet: 1 part(s) of the order are still cooking"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`unknown_order`, `forbidden`, ...).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

/// The HTTP status for a domain refusal.
pub fn status_of(e: &CommandError) -> StatusCode {
    use CommandError::*;
    match e {
        UnknownBranch(_) | UnknownTable(_) | UnknownItem(_) | UnknownStation(_)
        | UnknownOrder(_) | UnknownLine(_) | UnknownTicket(_) => StatusCode::NOT_FOUND,
        Invalid(_) | IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        JournalUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        WrongStation { .. }
        | EightySixed(_)
        | NothingToFire(_)
        | NothingToServe
        | InvalidTransition(_)
        | PartsPending(_)
        | OrderClosed
        | OrderNotFinished(_)
        | Conflict => StatusCode::CONFLICT,
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        Self::new(status_of(&e), e.code(), e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.code == "overloaded" {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        response.json(ErrorBody::new(self.code, self.message.clone()))
    }
}

/// Turns a body that failed to parse into a clear error.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => body_too_large(),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        E::Deserialize(e) if e.is_data() => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            e.to_string(),
        ),
        E::Deserialize(e) => ApiError::bad_request("malformed_json", e.to_string()),
        other => ApiError::bad_request("malformed_json", other.to_string()),
    }
}

/// `413 body_too_large`.
pub fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than the server accepts",
    )
}
