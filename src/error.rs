//! The edge's errors: every refusal is JSON with a stable code and a human message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use rail_actors::CommandError;
use serde::{Deserialize, Serialize};

/// Declares the one list of codes: the enum, every code in order, and each one's text.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident => $text:literal,)*) => {
        /// Every code a refusal carries, over REST or in a websocket `error` frame: the one
        /// list. The README's table, the OpenAPI document and docs/PROTOCOL.md are checked
        /// against it (`tests/error_codes.rs`), and a refusal can only be made with one of
        /// these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl ErrorCode {
            /// Every code, in the README's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];

            /// The code as clients match on it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $text,)*
                }
            }
        }
    };
}

error_codes! {
    MalformedJson => "malformed_json",
    Unauthenticated => "unauthenticated",
    InvalidToken => "invalid_token",
    Forbidden => "forbidden",
    WrongBranch => "wrong_branch",
    OriginNotAllowed => "origin_not_allowed",
    UnknownBranch => "unknown_branch",
    UnknownTable => "unknown_table",
    UnknownItem => "unknown_item",
    UnknownStation => "unknown_station",
    UnknownOrder => "unknown_order",
    UnknownLine => "unknown_line",
    UnknownTicket => "unknown_ticket",
    UnknownDevice => "unknown_device",
    /// The device's token was revoked by a manager.
    TokenRevoked => "token_revoked",
    /// A pairing code mistyped, used already or out of time.
    InvalidPairingCode => "invalid_pairing_code",
    UnknownAction => "unknown_action",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    Item86 => "item_86",
    ItemSoldOut => "item_sold_out",
    NothingToFire => "nothing_to_fire",
    NothingToServe => "nothing_to_serve",
    InvalidTransition => "invalid_transition",
    PartsPending => "parts_pending",
    OrderClosed => "order_closed",
    OrderNotFinished => "order_not_finished",
    Conflict => "conflict",
    BodyTooLarge => "body_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    InvalidInput => "invalid_input",
    /// A line of an item leaves a required modifier group unchosen.
    ModifierRequired => "modifier_required",
    IdempotencyKeyReused => "idempotency_key_reused",
    RateLimited => "rate_limited",
    TooManyConnections => "too_many_connections",
    JournalUnreadable => "journal_unreadable",
    /// The server failed at something it should not (never a client's fault).
    Internal => "internal",
    JournalUnavailable => "journal_unavailable",
    Overloaded => "overloaded",
    /// The replica that owns the branch could not be reached (or the branch is changing
    /// hands): nothing was done; retry with the same idempotency key.
    OwnerUnavailable => "owner_unavailable",
    /// Websocket only: a frame that is not JSON or not a known frame.
    MalformedFrame => "malformed_frame",
    /// Websocket only: a binary frame.
    UnsupportedFrame => "unsupported_frame",
    /// Websocket only: an `auth` frame with another device's token.
    TokenMismatch => "token_mismatch",
}

impl ErrorCode {
    /// The HTTP status a REST refusal with this code has; None for websocket-only codes.
    pub fn status(self) -> Option<StatusCode> {
        use ErrorCode::*;
        Some(match self {
            MalformedJson => StatusCode::BAD_REQUEST,
            Unauthenticated | InvalidToken => StatusCode::UNAUTHORIZED,
            Forbidden | WrongBranch | OriginNotAllowed => StatusCode::FORBIDDEN,
            UnknownBranch | UnknownTable | UnknownItem | UnknownStation | UnknownOrder
            | UnknownLine | UnknownTicket | UnknownDevice | UnknownAction | NotFound => {
                StatusCode::NOT_FOUND
            }
            InvalidPairingCode | TokenRevoked => StatusCode::UNAUTHORIZED,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Item86 | ItemSoldOut | NothingToFire | NothingToServe | InvalidTransition
            | PartsPending | OrderClosed | OrderNotFinished | Conflict => StatusCode::CONFLICT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InvalidInput | ModifierRequired | IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            RateLimited | TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            JournalUnreadable | Internal => StatusCode::INTERNAL_SERVER_ERROR,
            JournalUnavailable | Overloaded | OwnerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            MalformedFrame | UnsupportedFrame | TokenMismatch => return None,
        })
    }

    /// The code of a domain refusal.
    pub fn of(e: &CommandError) -> Self {
        use CommandError as E;
        match e {
            E::UnknownBranch(_) => Self::UnknownBranch,
            E::UnknownTable(_) => Self::UnknownTable,
            E::UnknownItem(_) => Self::UnknownItem,
            E::UnknownStation(_) => Self::UnknownStation,
            E::UnknownOrder(_) => Self::UnknownOrder,
            E::UnknownLine(_) => Self::UnknownLine,
            E::UnknownTicket(_) => Self::UnknownTicket,
            E::UnknownDevice(_) => Self::UnknownDevice,
            E::InvalidPairingCode => Self::InvalidPairingCode,
            E::EightySixed(_) => Self::Item86,
            E::SoldOut(..) => Self::ItemSoldOut,
            E::Invalid(_) => Self::InvalidInput,
            E::ModifierRequired { .. } => Self::ModifierRequired,
            E::NothingToFire(_) => Self::NothingToFire,
            E::NothingToServe => Self::NothingToServe,
            E::InvalidTransition(_) => Self::InvalidTransition,
            E::PartsPending(_) => Self::PartsPending,
            E::OrderClosed => Self::OrderClosed,
            E::OrderNotFinished(_) => Self::OrderNotFinished,
            E::JournalUnavailable => Self::JournalUnavailable,
            E::Conflict => Self::Conflict,
            E::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            E::NotOwner => Self::OwnerUnavailable,
        }
    }
}

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait before trying again, sent as `Retry-After`.
    pub retry_after: Option<u64>,
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
    /// A refusal with a code of the list; its status is the code's.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code
                .status()
                .unwrap_or_else(|| panic!("{} is a websocket code", code.as_str())),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same refusal, telling the client how many seconds to wait (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

/// The HTTP status for a domain refusal.
pub fn status_of(e: &CommandError) -> StatusCode {
    ErrorCode::of(e)
        .status()
        .expect("domain refusals have a status")
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        Self::new(ErrorCode::of(&e), e.to_string())
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
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        } else if matches!(
            self.code,
            ErrorCode::Overloaded | ErrorCode::OwnerUnavailable
        ) {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        response.json(ErrorBody::new(self.code.as_str(), self.message.clone()))
    }
}

/// Turns a body that failed to parse into a clear error.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => body_too_large(),
        E::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ),
        E::Deserialize(e) if e.is_data() => ApiError::new(ErrorCode::InvalidInput, e.to_string()),
        E::Deserialize(e) => ApiError::new(ErrorCode::MalformedJson, e.to_string()),
        other => ApiError::new(ErrorCode::MalformedJson, other.to_string()),
    }
}

/// `413 body_too_large`.
pub fn body_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        "the request body is larger than the server accepts",
    )
}
