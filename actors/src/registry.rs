//! BranchRegistry and the Engine: where branches live, and how the edge reaches them.
//!
//! The registry runs one branch actor per configured branch, recovered from the journal before
//! the engine reports ready. Where each branch runs is kept in a [`Directory`] that commands and
//! the journal's commit feed read directly: a command goes from its HTTP worker straight to its
//! branch's thread, and each commit from the feed straight to its branch, in order.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use actix::prelude::*;

use crate::branch::{
    recover, Acknowledged, BranchActor, BranchCommitted, BranchInfo, CatchUp, Configure, Demote,
    Promote, RecoveredBranch, StationSeen,
};
use crate::error::CommandError;
use crate::event::EventFrames;
use crate::ids::BranchId;
use crate::journal::{CommitFeed, Committed, Journal};
use crate::menu::BranchConfig;

/// The actor of each branch this process runs: written by the registry when it starts one,
/// read by every command and commit (a read lock, no message to the registry's thread).
#[derive(Clone, Default)]
struct Directory(Arc<RwLock<HashMap<BranchId, Addr<BranchActor>>>>);

impl Directory {
    fn get(&self, id: &BranchId) -> Option<Addr<BranchActor>> {
        let branches = self.0.read().unwrap_or_else(PoisonError::into_inner);
        branches.get(id).cloned()
    }

    fn insert(&self, id: BranchId, addr: Addr<BranchActor>) {
        let mut branches = self.0.write().unwrap_or_else(PoisonError::into_inner);
        branches.insert(id, addr);
    }

    fn ids(&self) -> Vec<BranchId> {
        let branches = self.0.read().unwrap_or_else(PoisonError::into_inner);
        branches.keys().cloned().collect()
    }
}

/// Configures a branch, creating it when it is new.
#[derive(Message)]
#[rtype(result = "Result<BranchInfo, CommandError>")]
pub struct ConfigureBranch {
    pub branch: BranchId,
    pub config: BranchConfig,
}

/// Takes over a branch recovered from the journal.
#[derive(Message)]
#[rtype(result = "()")]
struct AdoptBranch(BranchId, RecoveredBranch);

/// How the engine runs its branches.
#[derive(Clone)]
pub struct EngineOptions {
    /// Events a branch commits between two snapshots of itself: recovery reads the latest
    /// snapshot and at most about this many events after it.
    pub snapshot_every: u64,
    /// Threads the branches are spread over, each branch with all its table and station
    /// actors on one of them; 0 runs them on the thread that starts the engine.
    pub threads: usize,
    /// How events are written for screens: the edge's wire format.
    pub frames: EventFrames,
    /// With replicas: branches start following the journal and write only once promoted
    /// (their lease taken); without, every branch is written here.
    pub follow: bool,
    /// With replicas: every commit of this replica, for the relay to publish.
    pub relay: Option<tokio::sync::mpsc::UnboundedSender<Committed>>,
    /// With replicas: what this replica's screens acknowledged of branches another replica
    /// writes, for the relay to pass to that replica's watch.
    pub acks: Option<tokio::sync::mpsc::UnboundedSender<Acknowledged>>,
}

/// The branches this process runs.
pub struct BranchRegistry {
    journal: Arc<dyn Journal>,
    branches: Directory,
    options: EngineOptions,
    /// The threads branches run on (none: the registry's own).
    arbiters: Vec<Arbiter>,
    /// Branches started so far, which picks the next branch's thread.
    started: usize,
}

impl Drop for BranchRegistry {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl Actor for BranchRegistry {
    type Context = Context<Self>;
}

impl BranchRegistry {
    fn start_branch(&mut self, id: BranchId, recovered: RecoveredBranch) -> Addr<BranchActor> {
        let (journal, every) = (self.journal.clone(), self.options.snapshot_every);
        let frames = self.options.frames.clone();
        let branch = id.clone();
        let owner = !self.options.follow;
        let acks = self.options.acks.clone();
        let make = move |_: &mut Context<BranchActor>| {
            BranchActor::new(branch, journal, recovered, every, frames.clone(), owner)
                .acknowledging_to(acks.clone())
        };
        let addr = match self.arbiters.get(self.started % self.arbiters.len().max(1)) {
            Some(arbiter) => BranchActor::start_in_arbiter(&arbiter.handle(), make),
            None => BranchActor::create(make),
        };
        self.started += 1;
        self.branches.insert(id, addr.clone());
        addr
    }
}

impl Handler<ConfigureBranch> for BranchRegistry {
    type Result = ResponseFuture<Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: ConfigureBranch, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = msg.config.validate() {
            return Box::pin(async move { Err(e) });
        }
        // Branches are created here only, one message at a time: two first configurations
        // of the same branch cannot both start it.
        let addr = match self.branches.get(&msg.branch) {
            Some(addr) => addr,
            None => self.start_branch(msg.branch, RecoveredBranch::default()),
        };
        Box::pin(async move {
            addr.send(Configure(msg.config))
                .await
                .map_err(|_| CommandError::JournalUnavailable)?
        })
    }
}

impl Handler<AdoptBranch> for BranchRegistry {
    type Result = ();

    fn handle(&mut self, msg: AdoptBranch, _: &mut Context<Self>) {
        // Two replicas' news of a new branch may both lead here: the first one starts it.
        if self.branches.get(&msg.0).is_none() {
            self.start_branch(msg.0, msg.1);
        }
    }
}

/// The running domain: what the edge talks to.
#[derive(Clone)]
pub struct Engine {
    registry: Addr<BranchRegistry>,
    branches: Directory,
    journal: Arc<dyn Journal>,
    frames: EventFrames,
}

fn gone(_: MailboxError) -> CommandError {
    CommandError::JournalUnavailable
}

impl Engine {
    /// Recovers every branch from the journal and starts its actors. Call inside an actix
    /// system; the engine is ready when this returns.
    pub async fn start(
        journal: Arc<dyn Journal>,
        mut feed: CommitFeed,
        options: EngineOptions,
    ) -> Result<Self, String> {
        let branches = Directory::default();
        let options_frames = options.frames.clone();
        let options_relay = options.relay.clone();
        let arbiters: Vec<Arbiter> = (0..options.threads).map(|_| Arbiter::new()).collect();
        // The feed is read on a branches' thread: each commit reaches its branch without
        // waking a thread of its own (that thread is woken anyway, by the appends' answers).
        let feed_home = arbiters.first().map(Arbiter::handle);
        let registry = BranchRegistry {
            journal: journal.clone(),
            branches: branches.clone(),
            options,
            arbiters,
            started: 0,
        }
        .start();
        for id in journal.branches().await.map_err(|e| e.to_string())? {
            let id = BranchId::parse(id).map_err(|e| e.to_string())?;
            let recovered = recover(journal.as_ref(), &id, &options_frames).await?;
            tracing::info!(
                branch = %id,
                open_orders = recovered.orders.len(),
                snapshot_position = recovered.snapshot_position,
                position = recovered.position,
                "branch recovered"
            );
            registry
                .send(AdoptBranch(id, recovered))
                .await
                .map_err(|e| e.to_string())?;
        }
        let directory = branches.clone();
        let relay = options_relay;
        let forward = async move {
            while let Some(committed) = feed.recv().await {
                if let Some(relay) = &relay {
                    let _ = relay.send(committed.clone());
                }
                let Some(first) = committed.first() else {
                    continue;
                };
                let Ok(branch) = BranchId::parse(first.branch.clone()) else {
                    continue;
                };
                // Decoded by the branch, on its own thread.
                if let Some(addr) = directory.get(&branch) {
                    addr.do_send(BranchCommitted(committed));
                }
            }
        };
        match feed_home {
            Some(arbiter) => {
                arbiter.spawn(forward);
            }
            None => {
                actix::spawn(forward);
            }
        }
        Ok(Self {
            registry,
            branches,
            journal,
            frames: options_frames,
        })
    }

    /// The actor of a configured branch.
    pub fn branch(&self, id: &BranchId) -> Result<Addr<BranchActor>, CommandError> {
        self.branches
            .get(id)
            .ok_or_else(|| CommandError::UnknownBranch(id.to_string()))
    }

    /// Sends a message to a branch and waits for its answer.
    pub async fn ask<M>(&self, id: &BranchId, msg: M) -> Result<M::Result, CommandError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        BranchActor: Handler<M>,
    {
        self.branch(id)?.send(msg).await.map_err(gone)
    }

    pub async fn configure(
        &self,
        branch: BranchId,
        config: BranchConfig,
    ) -> Result<BranchInfo, CommandError> {
        self.registry
            .send(ConfigureBranch { branch, config })
            .await
            .map_err(gone)?
    }

    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    /// The branches this replica runs (owned or followed).
    pub fn branch_ids(&self) -> Vec<BranchId> {
        self.branches.ids()
    }

    /// Starts following a branch this replica does not run yet (one created elsewhere, or
    /// about to be created here), recovered from the journal.
    pub async fn adopt(&self, id: &BranchId) -> Result<(), String> {
        if self.branches.get(id).is_some() {
            return Ok(());
        }
        let recovered = recover(self.journal.as_ref(), id, &self.frames).await?;
        self.registry
            .send(AdoptBranch(id.clone(), recovered))
            .await
            .map_err(|e| e.to_string())
    }

    /// This replica took the branch's lease at `epoch`: it writes the branch under it once
    /// caught up.
    pub async fn promote(&self, id: &BranchId, epoch: u64) -> Result<(), CommandError> {
        self.ask(id, Promote { epoch }).await?
    }

    /// This replica lost or let go the branch's lease: it stops writing (after the commands
    /// in flight and a snapshot, on a handoff).
    pub async fn demote(&self, id: &BranchId, handoff: bool) -> Result<(), CommandError> {
        self.ask(id, Demote { handoff }).await
    }

    /// Tickets a screen on another replica acknowledged: this replica's watch of the station
    /// stops waiting for them.
    pub fn acknowledged_elsewhere(&self, ack: Acknowledged) {
        if let Some(addr) = self.branches.get(&ack.branch) {
            addr.do_send(StationSeen {
                station: ack.station,
                tickets: ack.tickets,
                relayed: true,
            });
        }
    }

    /// Events another replica committed, relayed: applied in position order, a gap read back
    /// from the journal first. A branch not run here yet is ignored (it is adopted from the
    /// journal, which has these events too).
    pub fn relayed(&self, committed: Committed) {
        let branch = committed
            .first()
            .and_then(|e| BranchId::parse(e.branch.clone()).ok());
        if let Some(addr) = branch.and_then(|b| self.branches.get(&b)) {
            addr.do_send(BranchCommitted(committed));
        }
    }

    /// The journal's head of a branch, as read or relayed: the branch reads what it missed.
    pub fn caught_up_to(&self, id: &BranchId, head: u64) {
        if let Some(addr) = self.branches.get(id) {
            addr.do_send(CatchUp(head));
        }
    }
}
