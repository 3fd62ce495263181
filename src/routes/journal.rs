//! The branch's journal as managers read it (`/events`): by position, a page at a time, every
//! event as the domain reads it.

use crate::wire::JournalEvent;
use actix_web::{web, HttpResponse};
use rail_actors::Engine;
use serde::Deserialize;

use super::scope::{ApiResult, BranchPath, Refusals};
use crate::auth::{Act, Device};
use crate::error::{ApiError, ErrorBody, ErrorCode};

/// Which page of the journal to read.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Read the events after this position (0: from the first).
    #[serde(default)]
    after: u64,
    /// At most this many events: 1 to 1000.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

#[utoipa::path(
    get,
    path = "/api/v1/branches/{branch}/events",
    operation_id = "events",
    tag = "journal",
    summary = "The branch's journal, by position (managers)",
    params(BranchPath, EventsQuery),
    responses(
        (status = 200, description = "The events after `after`, at most `limit`, by position.", body = Vec<JournalEvent>),
        Refusals,
        (status = 404, description = "The branch is not configured (`unknown_branch`).", body = ErrorBody),
        (status = 422, description = "`after` or `limit` is not valid (`invalid_input`).", body = ErrorBody),
        (status = 500, description = "The journal holds an event this version cannot read, written by a newer one (`journal_unreadable`); nothing was changed.", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn events(
    device: Device,
    engine: web::Data<Engine>,
    branch: web::Path<BranchPath>,
    query: web::Query<EventsQuery>,
) -> ApiResult {
    device.require(Act::ReadJournal)?;
    let branch = branch.id()?;
    engine.branch(&branch)?;
    if query.limit == 0 || query.limit > 1000 {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "limit must be 1 to 1000",
        ));
    }
    // Positions are stored as signed 64-bit integers.
    if i64::try_from(query.after).is_err() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("after must be 0 to {}", i64::MAX),
        ));
    }
    let events = engine
        .journal()
        .read_branch(branch.as_str(), query.after, query.limit)
        .await
        .map_err(|_| ApiError::from(rail_actors::CommandError::JournalUnavailable))?;
    // Served as the domain reads them (every storage format upcast), never as stored.
    let decoded = events
        .iter()
        .map(|stored| {
            rail_actors::stored::decode(stored).map_err(|e| {
                tracing::error!(error = %e, "journal event this build cannot read");
                ApiError::new(
                    ErrorCode::JournalUnreadable,
                    "the journal holds an event this version cannot read",
                )
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let events: Vec<JournalEvent> = events
        .iter()
        .zip(&decoded)
        .map(|(stored, event)| JournalEvent {
            stream: &stored.stream,
            seq: stored.seq,
            branch: &stored.branch,
            position: stored.position,
            kind: &stored.kind,
            body: (&**event).into(),
            at: stored.at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(events))
}
