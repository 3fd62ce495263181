//! A branch rebuilt from the journal when it starts: its configuration, its open orders, the
//! day's last ticket number and its latest events, from the latest snapshot and the events
//! after it, or from every event of its open streams when no snapshot is usable.
//!
//! The same replay reads the configuration back after a configuration event the journal
//! refused, so memory never holds less than the journal does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::NaiveDate;

use super::{Stock, BRANCH_HISTORY};
use crate::event::{branch_stream, BranchEvent, Envelope, Event, EventFrames, Published};
use crate::ids::{BranchId, ItemId, OrderId};
use crate::journal::Journal;
use crate::menu::Branch;
use crate::order::{Order, OrderChange};
use crate::prep::PrepModel;
use crate::stored::{self, decode_snapshot, BranchSnapshot};

/// A branch as the journal left it: what recovery hands the actor.
#[derive(Debug, Default)]
pub struct RecoveredBranch {
    pub branch: Option<Branch>,
    pub config_seq: u64,
    pub orders: Vec<Order>,
    pub position: u64,
    pub last_ticket: Option<(NaiveDate, u32)>,
    /// The position of the snapshot recovery started from (0: none, every open event read).
    pub snapshot_position: u64,
    /// The branch's latest events that recovery read anyway (those after the snapshot, at
    /// most BRANCH_HISTORY, ending at `position`), to start the screens' histories with.
    pub recent: Vec<Arc<Published>>,
    /// What is left of each limited item.
    pub stock: Vec<(ItemId, u32)>,
    /// The kitchen's learned prep times.
    pub prep: PrepModel,
}

/// Events recovery reads from the journal at a time after a snapshot.
const REPLAY_PAGE: usize = 10_000;

/// A branch being rebuilt: the state events are applied to.
#[derive(Default)]
struct Rebuild {
    branch: Option<Branch>,
    config_seq: u64,
    orders: HashMap<OrderId, Order>,
    position: u64,
    /// Kept from the snapshot and every event after it; without a snapshot, read separately
    /// (the open streams alone do not hold the lines of orders closed since).
    stock: Option<Stock>,
    /// Where each limited item's count was last set.
    counts_set: HashMap<ItemId, u64>,
    /// Learned from the snapshot's times and every bump after it.
    prep: PrepModel,
}

impl Rebuild {
    fn from_snapshot(snapshot: BranchSnapshot) -> Result<Self, String> {
        let mut branch = match snapshot.config {
            Some(config) => Some(Branch::new(config).map_err(|e| e.to_string())?),
            None => None,
        };
        if let Some(b) = &mut branch {
            for item in &snapshot.eighty_sixed {
                b.set_86(item, true);
            }
            for (item, _) in &snapshot.stock {
                b.set_limited(item, true);
            }
            *b.devices_mut() = crate::devices::DeviceBook::from_saved(
                snapshot.devices.clone(),
                snapshot.offers.clone(),
            );
        }
        Ok(Self {
            branch,
            config_seq: snapshot.config_seq,
            orders: snapshot.orders.into_iter().map(|o| (o.id, o)).collect(),
            position: snapshot.position,
            stock: Some(Stock::from_levels(snapshot.stock)),
            counts_set: HashMap::new(),
            prep: PrepModel::from_samples(snapshot.prep),
        })
    }

    fn apply(&mut self, envelope: &Envelope) -> Result<(), String> {
        let (seq, position, at) = (envelope.seq, envelope.position, envelope.at);
        self.position = self.position.max(position);
        if let Some(stock) = &mut self.stock {
            stock.apply(&envelope.event);
        }
        match &*envelope.event {
            Event::Branch(e) => {
                self.config_seq = seq;
                apply_branch_event(&mut self.branch, e)?;
                if let BranchEvent::ItemCountSet { item, .. } = e {
                    self.counts_set.insert(item.clone(), position);
                }
            }
            Event::Order(e) => {
                let order = self
                    .orders
                    .entry(e.order_id)
                    .or_insert_with(|| Order::opened(e.order_id, e.table.clone(), &e.change, at));
                if let OrderChange::TicketBumped { ticket_id, .. } = &e.change {
                    if let Some(t) = order.ticket(ticket_id) {
                        self.prep.bumped(self.branch.as_ref(), t, at);
                    }
                }
                order.replay(&e.change, seq, position, at)
            }
        }
        Ok(())
    }
}

/// A branch's configuration and its stream's length: from the latest snapshot and the
/// configuration events after it (months past retention may no longer hold the earlier ones).
pub(super) async fn load_config(
    journal: Arc<dyn Journal>,
    id: BranchId,
) -> Result<(Option<Branch>, u64), String> {
    let saved = journal
        .load_snapshot(id.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let mut rebuild = match saved.and_then(|s| decode_snapshot(&id, &s)) {
        Some(snapshot) => Rebuild::from_snapshot(BranchSnapshot {
            orders: Vec::new(),
            ..snapshot
        })?,
        None => Rebuild::default(),
    };
    let stored = journal
        .load_stream(&branch_stream(&id))
        .await
        .map_err(|e| e.to_string())?;
    let from = rebuild.config_seq;
    for s in stored.into_iter().filter(|s| s.seq > from) {
        rebuild.apply(&stored::envelope(&s)?)?;
    }
    Ok((rebuild.branch, rebuild.config_seq))
}

/// Rebuilds a branch's configuration and open orders: from its latest snapshot and the events
/// after it, or, without a usable snapshot, from every event of its open streams.
pub async fn recover(
    journal: &dyn Journal,
    id: &BranchId,
    frames: &EventFrames,
) -> Result<RecoveredBranch, String> {
    let saved = journal
        .load_snapshot(id.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let snapshot = saved.and_then(|s| decode_snapshot(id, &s));
    let snapshot_position = snapshot.as_ref().map_or(0, |s| s.position);
    // The events read after the snapshot are also the branch's latest.
    let mut recent: VecDeque<Envelope> = VecDeque::new();
    let mut rebuild = match snapshot {
        Some(snapshot) => {
            let mut rebuild = Rebuild::from_snapshot(snapshot)?;
            loop {
                let page = journal
                    .read_branch(id.as_str(), rebuild.position, REPLAY_PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                let full = page.len() == REPLAY_PAGE;
                for s in page {
                    let envelope = stored::envelope(&s)?;
                    rebuild.apply(&envelope)?;
                    if recent.len() == BRANCH_HISTORY {
                        recent.pop_front();
                    }
                    recent.push_back(envelope);
                }
                if !full {
                    break;
                }
            }
            rebuild
        }
        None => {
            let stored = journal
                .load_open(id.as_str())
                .await
                .map_err(|e| e.to_string())?;
            let mut rebuild = Rebuild::default();
            for s in stored {
                rebuild.apply(&stored::envelope(&s)?)?;
            }
            rebuild
        }
    };
    let stock = match rebuild.stock.take() {
        Some(stock) => stock,
        None => read_stock(journal, id, &rebuild).await?,
    };
    let mut recovered = RecoveredBranch {
        stock: stock.levels(),
        prep: std::mem::take(&mut rebuild.prep),
        branch: rebuild.branch,
        config_seq: rebuild.config_seq,
        position: rebuild.position,
        snapshot_position,
        ..RecoveredBranch::default()
    };
    rebuild.orders.retain(|_, o| !o.is_closed());
    recovered.orders = rebuild.orders.into_values().collect();
    recovered.orders.sort_by_key(|o| o.position);
    let last = journal
        .last_of_kind(id.as_str(), "order_opened")
        .await
        .map_err(|e| e.to_string())?;
    if let Some(s) = last {
        recovered.position = recovered.position.max(s.position);
        if let Event::Order(e) = &*stored::decode(&s)? {
            if let OrderChange::OrderOpened { ticket_no, day, .. } = e.change {
                recovered.last_ticket = Some((day, ticket_no));
            }
        }
    }
    // Events of orders closed since are not loaded, but the position is the branch's own.
    let head = journal.head(id.as_str()).await.map_err(|e| e.to_string())?;
    recovered.position = recovered.position.max(head);
    // What the snapshot's replay read is the branch's latest; the actor reads back the rest
    // of its history once it runs.
    recovered.recent = recent.iter().map(|e| e.publish(frames)).collect();
    Ok(recovered)
}

/// What is left of the limited items, read from the journal: every event since the earliest
/// of their counts was last set (for a branch recovered without a snapshot).
async fn read_stock(
    journal: &dyn Journal,
    id: &BranchId,
    rebuild: &Rebuild,
) -> Result<Stock, String> {
    let limited = rebuild.branch.as_ref().map(|b| b.limited().clone());
    let from = limited
        .unwrap_or_default()
        .iter()
        .filter_map(|item| rebuild.counts_set.get(item))
        .min()
        .copied();
    let mut stock = Stock::default();
    let Some(from) = from else {
        return Ok(stock);
    };
    let mut after = from.saturating_sub(1);
    loop {
        let page = journal
            .read_branch(id.as_str(), after, REPLAY_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let full = page.len() == REPLAY_PAGE;
        for s in &page {
            stock.apply(&stored::envelope(s)?.event);
            after = s.position;
        }
        if !full {
            return Ok(stock);
        }
    }
}

pub(super) fn apply_branch_event(
    branch: &mut Option<Branch>,
    event: &BranchEvent,
) -> Result<(), String> {
    match event {
        BranchEvent::BranchConfigured { config } => match branch {
            Some(b) => b.reconfigure(config.clone()).map_err(|e| e.to_string())?,
            None => *branch = Some(Branch::new(config.clone()).map_err(|e| e.to_string())?),
        },
        BranchEvent::ItemEightySixed { item } | BranchEvent::ItemRestored { item } => {
            let out = matches!(event, BranchEvent::ItemEightySixed { .. });
            if let Some(b) = branch {
                b.set_86(item, out);
            }
        }
        BranchEvent::ItemCountSet { item, count } => {
            if let Some(b) = branch {
                b.set_limited(item, count.is_some());
            }
        }
        BranchEvent::DeviceIssued { device } => {
            if let Some(b) = branch {
                b.devices_mut().issued(device.clone());
            }
        }
        BranchEvent::DeviceRevoked { device, at } => {
            if let Some(b) = branch {
                b.devices_mut().revoked(device, *at);
            }
        }
        BranchEvent::PairingOffered { offer } => {
            if let Some(b) = branch {
                b.devices_mut().offered(offer.clone());
            }
        }
        BranchEvent::PairingRedeemed { code_hash } => {
            if let Some(b) = branch {
                b.devices_mut().redeemed(code_hash);
            }
        }
    }
    Ok(())
}
