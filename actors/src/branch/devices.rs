//! The branch's devices: a token issued, a device revoked, a pairing code offered and
//! redeemed, each journaled on the branch's own stream before it applies (so it survives
//! restarts and reaches every replica through the relay like any branch event).

use actix::prelude::*;
use chrono::Utc;

use super::BranchActor;
use crate::devices::{DeviceRecord, PairingOffer};
use crate::error::CommandError;
use crate::event::BranchEvent;

/// Records a device a manager issued a token to.
#[derive(Message)]
#[rtype(result = "Result<DeviceRecord, CommandError>")]
pub struct IssueDevice(pub DeviceRecord);

/// Revokes a device: its tokens are refused from now on and its sockets closed.
#[derive(Message)]
#[rtype(result = "Result<DeviceRecord, CommandError>")]
pub struct RevokeDevice(pub String);

/// Lists the branch's devices, the latest issued first.
#[derive(Message)]
#[rtype(result = "Result<Vec<DeviceRecord>, CommandError>")]
pub struct ListDevices;

/// Offers a pairing code (by its keyed hash) for a device to be.
#[derive(Message)]
#[rtype(result = "Result<PairingOffer, CommandError>")]
pub struct OfferPairing(pub PairingOffer);

/// Redeems a pairing code, once and in time: the device it pairs is issued.
#[derive(Message)]
#[rtype(result = "Result<DeviceRecord, CommandError>")]
pub struct RedeemPairing {
    pub code_hash: String,
}

fn refuse<T: 'static>(e: CommandError) -> AtomicResponse<BranchActor, Result<T, CommandError>> {
    AtomicResponse::new(Box::pin(fut::ready(Err(e))))
}

impl Handler<IssueDevice> for BranchActor {
    type Result = AtomicResponse<Self, Result<DeviceRecord, CommandError>>;

    fn handle(&mut self, msg: IssueDevice, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.owning().and_then(|()| self.configured().map(|_| ())) {
            return refuse(e);
        }
        let device = msg.0;
        let event = BranchEvent::DeviceIssued {
            device: device.clone(),
        };
        AtomicResponse::new(Box::pin(
            self.journal_branch_event(event)
                .map(move |done, _, _| done.map(|()| device)),
        ))
    }
}

impl Handler<RevokeDevice> for BranchActor {
    type Result = AtomicResponse<Self, Result<DeviceRecord, CommandError>>;

    fn handle(&mut self, msg: RevokeDevice, _: &mut Context<Self>) -> Self::Result {
        let found = self
            .owning()
            .and_then(|()| self.configured())
            .and_then(|b| {
                b.devices()
                    .get(&msg.0)
                    .cloned()
                    .ok_or_else(|| CommandError::UnknownDevice(msg.0.clone()))
            });
        let device = match found {
            Err(e) => return refuse(e),
            // Revoked already: nothing to journal.
            Ok(d) if d.revoked_at.is_some() => {
                return AtomicResponse::new(Box::pin(fut::ready(Ok(d))));
            }
            Ok(d) => d,
        };
        let at = Utc::now();
        let event = BranchEvent::DeviceRevoked {
            device: device.device.clone(),
            at,
        };
        AtomicResponse::new(Box::pin(self.journal_branch_event(event).map(
            move |done, _, _| {
                done.map(|()| DeviceRecord {
                    revoked_at: Some(at),
                    ..device
                })
            },
        )))
    }
}

impl Handler<ListDevices> for BranchActor {
    type Result = Result<Vec<DeviceRecord>, CommandError>;

    fn handle(&mut self, _: ListDevices, _: &mut Context<Self>) -> Self::Result {
        Ok(self.configured()?.devices().list(Utc::now()))
    }
}

impl Handler<OfferPairing> for BranchActor {
    type Result = AtomicResponse<Self, Result<PairingOffer, CommandError>>;

    fn handle(&mut self, msg: OfferPairing, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.owning().and_then(|()| self.configured().map(|_| ())) {
            return refuse(e);
        }
        let offer = msg.0;
        let event = BranchEvent::PairingOffered {
            offer: offer.clone(),
        };
        AtomicResponse::new(Box::pin(
            self.journal_branch_event(event)
                .map(move |done, _, _| done.map(|()| offer)),
        ))
    }
}

impl Handler<RedeemPairing> for BranchActor {
    type Result = AtomicResponse<Self, Result<DeviceRecord, CommandError>>;

    /// One at a time (an atomic response): of two devices sending the same code, the second
    /// finds it used.
    fn handle(&mut self, msg: RedeemPairing, _: &mut Context<Self>) -> Self::Result {
        let found = self
            .owning()
            .and_then(|()| self.configured())
            .and_then(|b| {
                b.devices()
                    .offer(&msg.code_hash, Utc::now())
                    .map(|o| o.device.clone())
                    .ok_or(CommandError::InvalidPairingCode)
            });
        let device = match found {
            Err(e) => return refuse(e),
            Ok(d) => d,
        };
        let event = BranchEvent::PairingRedeemed {
            code_hash: msg.code_hash,
        };
        AtomicResponse::new(Box::pin(
            self.journal_branch_event(event)
                .map(move |done, _, _| done.map(|()| device)),
        ))
    }
}
