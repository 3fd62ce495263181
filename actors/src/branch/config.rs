//! The branch's configuration (menu, routing, stations, 86 list): read, changed and 86'd here.
//! Each change is journaled on the branch's configuration stream before it applies; when the
//! journal refuses one, the configuration is read back before the next command.

use std::sync::Arc;

use actix::prelude::*;
use chrono::Utc;

use super::messages::{BranchInfo, Configure, GetBranchInfo, SetEightySix, SetItemCount};
use super::recovery::{apply_branch_event, load_config};
use super::BranchActor;
use crate::error::CommandError;
use crate::event::{branch_stream, BranchEvent, Event};
use crate::journal::{append_recorded, AppendRequest, JournalError};
use crate::stored;

impl BranchActor {
    fn info(&self) -> Result<BranchInfo, CommandError> {
        let branch = self.configured()?;
        Ok(BranchInfo {
            id: self.id.clone(),
            config: branch.config().clone(),
            eighty_sixed: branch.eighty_sixed().iter().cloned().collect(),
            stock: self.stock.levels(),
            position: self.position,
        })
    }

    /// Journals a configuration event, then applies it; answers with the branch's info.
    fn commit_branch_event(
        &mut self,
        event: BranchEvent,
    ) -> AtomicResponse<Self, Result<BranchInfo, CommandError>> {
        AtomicResponse::new(Box::pin(
            self.journal_branch_event(event)
                .map(|done, act, _| done.and_then(|()| act.info())),
        ))
    }

    /// Journals an event of the branch's own stream, then applies it.
    pub(super) fn journal_branch_event(
        &mut self,
        event: BranchEvent,
    ) -> ResponseActFuture<Self, Result<(), CommandError>> {
        let request = AppendRequest {
            branch: self.id.to_string(),
            stream: branch_stream(&self.id),
            expected_seq: self.config_seq,
            events: vec![stored::encode(Event::Branch(event.clone()), Utc::now())],
            closes_stream: false,
            idempotency: None,
            epoch: self.epoch,
        };
        let journal = self.journal.clone();
        Box::pin(
            async move { append_recorded(journal.as_ref(), request).await }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    let stored = result.map_err(|e| {
                        // The journal may hold more than memory does: read the configuration
                        // back before the next command.
                        act.reload_config(ctx);
                        match e {
                            JournalError::Conflict { .. } | JournalError::DuplicateKey(_) => {
                                CommandError::Conflict
                            }
                            JournalError::Unavailable(_) => CommandError::JournalUnavailable,
                            JournalError::Fenced(_) => CommandError::NotOwner,
                        }
                    })?;
                    act.config_seq = stored.last().map(|s| s.seq).unwrap_or(act.config_seq);
                    let mut branch = act.branch.as_deref().cloned();
                    apply_branch_event(&mut branch, &event).map_err(CommandError::Invalid)?;
                    // The answer says what is left at once, unless the feed has applied this
                    // event and those after it already.
                    let at = stored.last().map_or(0, |s| s.position);
                    if act.position < at && act.stock.apply(&Event::Branch(event.clone())) {
                        act.tell_stock();
                    }
                    act.branch = branch.map(Arc::new);
                    act.start_stations();
                    act.publish_devices();
                    Ok(())
                }),
        )
    }

    /// Rebuilds the configuration from its stream, holding other messages until done.
    fn reload_config(&mut self, ctx: &mut Context<Self>) {
        let load = load_config(self.journal.clone(), self.id.clone());
        ctx.wait(load.into_actor(self).map(|loaded, act, _| {
            let (branch, seq) = match loaded {
                Ok(loaded) => loaded,
                Err(e) => return tracing::error!(branch = %act.id, error = %e, "configuration not read back"),
            };
            act.config_seq = seq;
            if branch.is_some() {
                act.branch = branch.map(Arc::new);
                act.start_stations();
                act.publish_devices();
            }
        }));
    }
}

impl Handler<Configure> for BranchActor {
    type Result = AtomicResponse<Self, Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: Configure, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.owning().and_then(|()| msg.0.validate()) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(e))));
        }
        if self.branch.as_ref().is_some_and(|b| *b.config() == msg.0) {
            // Unchanged: nothing to journal (devices may sync the menu often).
            return AtomicResponse::new(Box::pin(fut::ready(self.info())));
        }
        self.commit_branch_event(BranchEvent::BranchConfigured { config: msg.0 })
    }
}

impl Handler<SetEightySix> for BranchActor {
    type Result = AtomicResponse<Self, Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: SetEightySix, _: &mut Context<Self>) -> Self::Result {
        let checked = self
            .owning()
            .and_then(|()| self.configured())
            .and_then(|b| b.item(&msg.item).map(|_| b.is_86(&msg.item)));
        match checked {
            Err(e) => AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
            // Already as asked: nothing to journal.
            Ok(out) if out == msg.out => AtomicResponse::new(Box::pin(fut::ready(self.info()))),
            Ok(_) => self.commit_branch_event(if msg.out {
                BranchEvent::ItemEightySixed { item: msg.item }
            } else {
                BranchEvent::ItemRestored { item: msg.item }
            }),
        }
    }
}

/// The most portions a limited count may be set to.
pub const MAX_COUNT: u32 = 99_999;

impl Handler<SetItemCount> for BranchActor {
    type Result = AtomicResponse<Self, Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: SetItemCount, _: &mut Context<Self>) -> Self::Result {
        let checked = self
            .owning()
            .and_then(|()| self.configured())
            .and_then(|b| b.item(&msg.item).map(|_| b.is_limited(&msg.item)));
        let checked = checked.and_then(|limited| match msg.count {
            Some(n) if n > MAX_COUNT => Err(crate::error::invalid(format!(
                "count must be 0 to {MAX_COUNT}"
            ))),
            _ => Ok(limited),
        });
        match checked {
            Err(e) => AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
            // Not limited, and asked to lift the limit: nothing to journal.
            Ok(false) if msg.count.is_none() => {
                AtomicResponse::new(Box::pin(fut::ready(self.info())))
            }
            Ok(_) => self.commit_branch_event(BranchEvent::ItemCountSet {
                item: msg.item,
                count: msg.count,
            }),
        }
    }
}

impl Handler<GetBranchInfo> for BranchActor {
    type Result = Result<BranchInfo, CommandError>;

    fn handle(&mut self, _: GetBranchInfo, _: &mut Context<Self>) -> Self::Result {
        self.info()
    }
}
