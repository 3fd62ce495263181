//! Limited quantities: an item's count ("12 left"), what lines take from it and voids give
//! back, and the reservations of the commands in flight.
//!
//! What is left is kept from the committed events in position order, on every replica and in
//! recovery alike: a count set (`item_count_set`), the lines added that took from it
//! (`counted`), and the voids that gave back (`restock`). The replica that writes the branch
//! also holds what the commands it has in hand reserved, so that two tables ordering the last
//! portion at once cannot both get it: a command is let through only when what is left, less
//! what is reserved, covers it. A reservation ends with its command: refused, at once; done,
//! once the branch's feed has applied the commit (so what is left never counts it twice, nor
//! misses it in between).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::CommandError;
use crate::event::{BranchEvent, Event};
use crate::ids::ItemId;
use crate::menu::Branch;
use crate::order::{NewLine, OrderChange, OrderCommand};

/// What one command reserved, per item.
pub(super) type Reserved = Vec<(ItemId, u32)>;

/// A branch's limited items.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stock {
    /// Portions left of each limited item, as the committed events have it.
    left: BTreeMap<ItemId, u32>,
    /// Reserved by commands in hand.
    pending: HashMap<ItemId, u32>,
    /// Reservations of commands done, by the position of their commit, until the feed has
    /// applied it.
    committed: BTreeMap<u64, Vec<Reserved>>,
}

impl Stock {
    /// The stock as a snapshot or recovery left it.
    pub fn from_levels(levels: impl IntoIterator<Item = (ItemId, u32)>) -> Self {
        Self {
            left: levels.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Every limited item and what is left of it.
    pub fn levels(&self) -> Vec<(ItemId, u32)> {
        self.left.iter().map(|(i, n)| (i.clone(), *n)).collect()
    }

    pub fn shared_levels(&self) -> Arc<[(ItemId, u32)]> {
        self.levels().into()
    }

    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    /// Applies a committed event; true when what is left changed.
    pub fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::Branch(BranchEvent::ItemCountSet { item, count }) => match count {
                Some(n) => self.left.insert(item.clone(), *n) != Some(*n),
                None => self.left.remove(item).is_some(),
            },
            Event::Branch(BranchEvent::BranchConfigured { config }) => {
                // Items gone from the menu are no longer counted.
                let before = self.left.len();
                self.left
                    .retain(|item, _| config.items.iter().any(|i| i.id == *item));
                self.left.len() != before
            }
            Event::Order(e) => match &e.change {
                OrderChange::LinesAdded { lines } => {
                    let mut changed = false;
                    for line in lines.iter().filter(|l| l.counted) {
                        if let Some(left) = self.left.get_mut(&line.item) {
                            *left = left.saturating_sub(line.quantity.into());
                            changed = true;
                        }
                    }
                    changed
                }
                OrderChange::LineVoided {
                    restock: Some(r), ..
                } => match self.left.get_mut(&r.item) {
                    Some(left) => {
                        *left = left.saturating_add(r.quantity.into());
                        true
                    }
                    None => false,
                },
                _ => false,
            },
            _ => false,
        }
    }

    /// The feed has applied every commit up to `position`: their reservations end.
    pub fn applied_up_to(&mut self, position: u64) {
        if self
            .committed
            .first_key_value()
            .is_none_or(|(first, _)| *first > position)
        {
            return;
        }
        let later = self.committed.split_off(&(position + 1));
        let done = std::mem::replace(&mut self.committed, later);
        for reserved in done.into_values().flatten() {
            self.release(&reserved);
        }
    }

    /// Reserves what the commands ask of limited items, or refuses them all when an item has
    /// fewer left (less what others reserved) than asked: `item_sold_out`.
    pub(super) fn reserve(
        &mut self,
        branch: &Branch,
        commands: &[OrderCommand],
    ) -> Result<Reserved, CommandError> {
        let mut wanted: BTreeMap<ItemId, u32> = BTreeMap::new();
        let lines = commands.iter().flat_map(|c| match c {
            OrderCommand::AddLines { lines } => lines.as_slice(),
            _ => &[],
        });
        for NewLine { item, quantity, .. } in lines {
            if branch.is_limited(item) && self.left.contains_key(item) {
                *wanted.entry(item.clone()).or_default() += u32::from(*quantity);
            }
        }
        for (item, n) in &wanted {
            let left = self.left.get(item).copied().unwrap_or(0);
            let available = left.saturating_sub(self.pending.get(item).copied().unwrap_or(0));
            if available < *n {
                return Err(CommandError::SoldOut(item.clone(), available));
            }
        }
        for (item, n) in &wanted {
            *self.pending.entry(item.clone()).or_default() += n;
        }
        Ok(wanted.into_iter().collect())
    }

    /// A command that reserved was refused: its reservation ends.
    pub(super) fn release(&mut self, reserved: &Reserved) {
        for (item, n) in reserved {
            if let Some(p) = self.pending.get_mut(item) {
                *p = p.saturating_sub(*n);
                if *p == 0 {
                    self.pending.remove(item);
                }
            }
        }
    }

    /// A command that reserved was done, its commit at `position`: the reservation ends once
    /// the feed has applied it (`applied` is how far it has).
    pub(super) fn done(&mut self, reserved: Reserved, position: u64, applied: u64) {
        if reserved.is_empty() {
            return;
        }
        if position <= applied {
            self.release(&reserved);
        } else {
            self.committed.entry(position).or_default().push(reserved);
        }
    }
}
