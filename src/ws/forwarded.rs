//! Ticket commands between replicas: a socket's start, bump or recall on a branch another
//! replica writes is sent to that replica's `POST /internal/v1/branches/{branch}/tickets`,
//! which carries it out exactly as its own sockets' (the same idempotency fingerprint, so a
//! retry is recognised wherever it lands) and answers with the frame for the client.

use actix_web::{web, HttpRequest, HttpResponse};
use rail_actors::ids::BranchId;
use rail_actors::station::TicketAction;
use rail_actors::{CommandError, Engine};
use serde::{Deserialize, Serialize};

use super::frames::{error_frame, TicketFrame};
use super::session::{answer_ticket, check_ticket};
use crate::auth::{self, Device, Tokens};
use crate::cluster::Cluster;
use crate::error::{ApiError, ErrorCode};

/// A socket's ticket command, as one replica sends it to the owner.
#[derive(Debug, Serialize, Deserialize)]
pub struct TicketAsk {
    pub action: String,
    pub frame: TicketFrame,
}

fn action_name(action: TicketAction) -> &'static str {
    match action {
        TicketAction::Start => "start",
        TicketAction::Bump => "bump",
        TicketAction::Recall => "recall",
    }
}

fn action_of(name: &str) -> Option<TicketAction> {
    Some(match name {
        "start" => TicketAction::Start,
        "bump" => TicketAction::Bump,
        "recall" => TicketAction::Recall,
        _ => return None,
    })
}

fn owner_unavailable(id: &str) -> String {
    let e = CommandError::NotOwner;
    error_frame(Some(id), ErrorCode::of(&e), &e.to_string())
}

/// Sends a socket's ticket command to the branch's owner on the device's behalf; the frame
/// for the client.
pub(super) async fn forward(
    cluster: Option<Cluster>,
    tokens: &Tokens,
    device: &Device,
    branch: &BranchId,
    frame: &TicketFrame,
    action: TicketAction,
) -> String {
    let (Some(cluster), Ok(token)) = (cluster, tokens.sign(&device.claims)) else {
        return owner_unavailable(&frame.id);
    };
    let ask = TicketAsk {
        action: action_name(action).to_owned(),
        frame: frame.clone(),
    };
    let body = serde_json::to_vec(&ask).expect("ticket asks serialize");
    cluster
        .forward_ticket(branch, &token, body)
        .await
        .unwrap_or_else(|| owner_unavailable(&frame.id))
}

/// `POST /internal/v1/branches/{branch}/tickets`: a ticket command another replica's socket
/// sent, carried out here as this replica's own sockets' are; the answer is the frame for the
/// client, whatever it says (`200`), or a refusal of the call itself.
pub async fn endpoint(
    req: HttpRequest,
    branch: web::Path<String>,
    ask: web::Json<TicketAsk>,
    engine: web::Data<Engine>,
    tokens: web::Data<Tokens>,
) -> Result<HttpResponse, ApiError> {
    let device = tokens.verify(auth::bearer(&req)?)?;
    device.same_branch(&branch)?;
    let branch = BranchId::parse(branch.into_inner())
        .map_err(|_| ApiError::new(ErrorCode::UnknownBranch, "no such branch"))?;
    let TicketAsk { action, frame } = ask.into_inner();
    let action = action_of(&action)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownAction, "start, bump or recall"))?;
    let answer = match check_ticket(&device, &frame) {
        Err(refusal) => refusal,
        Ok(()) => answer_ticket(&engine, 0, &branch, &frame, action)
            .await
            .unwrap_or_else(|| owner_unavailable(&frame.id)),
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(answer))
}
