//! Who writes the branch. With one replica its branch actors always do. With several, every
//! replica runs every branch's actors, fed by the commits the owner relays, so its own screens
//! are served from memory; only the replica holding the branch's lease writes, and the others
//! refuse commands (`NotOwner`) for the edge to forward.
//!
//! A replica that takes the lease reads the journal up to its head before it writes (the old
//! owner can no longer commit once the epoch moved on, so the head is final); one that lets
//! the lease go first lets its in-flight commands finish and, on a handoff, saves a snapshot.

use actix::prelude::*;

use super::BranchActor;
use crate::error::CommandError;
use crate::subscriber::read_events;
use crate::table::Idle;

/// This replica holds the branch's lease at this epoch: catch up with the journal, then write
/// under it.
#[derive(Message)]
#[rtype(result = "Result<(), CommandError>")]
pub struct Promote {
    pub epoch: u64,
}

/// This replica no longer holds the branch's lease (or is letting it go): stop writing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Demote {
    /// A handoff: wait for the commands in flight and save a snapshot before answering.
    pub handoff: bool,
}

/// The journal's head for the branch is at least this: read what this replica was not told.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatchUp(pub u64);

impl BranchActor {
    /// Refuses a command unless this replica writes the branch.
    pub(super) fn owning(&self) -> Result<(), CommandError> {
        if self.owner {
            Ok(())
        } else {
            Err(CommandError::NotOwner)
        }
    }

    /// Reads the committed events after this actor's position up to `head`, holding other
    /// messages until they are applied.
    pub(super) fn catch_up(&mut self, head: u64, ctx: &mut Context<Self>) {
        if head <= self.position {
            return;
        }
        let read = read_events(
            self.journal.clone(),
            self.id.to_string(),
            self.position,
            head,
        );
        ctx.wait(read.into_actor(self).map(|missed, act, _| match missed {
            Ok(missed) => {
                missed.into_iter().for_each(|e| act.on_committed_once(e));
                act.snapshot_when_due();
            }
            Err(()) => tracing::warn!(branch = %act.id, "could not catch up with the journal"),
        }));
    }
}

impl Handler<Promote> for BranchActor {
    type Result = AtomicResponse<Self, Result<(), CommandError>>;

    /// Takes no other message until the journal's head is applied: nothing is written before.
    fn handle(&mut self, msg: Promote, _: &mut Context<Self>) -> Self::Result {
        let journal = self.journal.clone();
        let branch = self.id.to_string();
        let head = async move { journal.head(&branch).await };
        let epoch = msg.epoch;
        let promoted = head.into_actor(self).then(move |head, act, _| {
            let (position, journal, branch) =
                (act.position, act.journal.clone(), act.id.to_string());
            async move {
                let head = head.map_err(|_| CommandError::JournalUnavailable)?;
                if head <= position {
                    return Ok(Vec::new());
                }
                read_events(journal, branch, position, head)
                    .await
                    .map_err(|()| CommandError::JournalUnavailable)
            }
            .into_actor(act)
            .map(move |missed, act, ctx| {
                for e in missed? {
                    act.on_committed_once(e);
                }
                // Table actors start again from the view, which is as of the journal's head,
                // and write under the new epoch.
                act.tables.clear();
                act.owner = true;
                act.epoch = Some(epoch);
                act.finish_merges(ctx);
                tracing::info!(branch = %act.id, position = act.position, "branch owned here");
                Ok(())
            })
        });
        AtomicResponse::new(Box::pin(promoted))
    }
}

impl Handler<Demote> for BranchActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: Demote, _: &mut Context<Self>) -> Self::Result {
        let was_owner = std::mem::replace(&mut self.owner, false);
        self.epoch = None;
        let tables: Vec<_> = self.tables.drain().map(|(_, addr)| addr).collect();
        if was_owner {
            tracing::info!(branch = %self.id, handoff = msg.handoff, "branch no longer owned here");
        }
        if !msg.handoff || !was_owner {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        // Each table answers once the command it has in hand is done.
        let idle = futures::future::join_all(tables.iter().map(|t| t.send(Idle)));
        AtomicResponse::new(Box::pin(
            idle.into_actor(self)
                .then(|_, act, _| act.save_snapshot_now().into_actor(act)),
        ))
    }
}

impl Handler<CatchUp> for BranchActor {
    type Result = ();

    fn handle(&mut self, msg: CatchUp, ctx: &mut Context<Self>) {
        self.catch_up(msg.0, ctx);
    }
}
