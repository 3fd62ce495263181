//! An order, its lines and the tickets its fires made: the rules of the kitchen.
//!
//! `Order::decide` checks a command against the order and the branch and says which changes it
//! makes, without making them; `Order::apply` makes a change. The table actor journals what
//! `decide` returns and applies it only once the journal has it, and recovery replays the same
//! `apply`, so the live state and the journal cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{invalid, CommandError};
use crate::ids::{ItemId, LineId, OrderId, StationId, TableId, TicketId};
use crate::menu::{Branch, StationKind};

/// When a fire's tickets start at their stations (fire by prep time): sets a
/// ticket's `starts_at`, or leaves it to start at once.
pub trait Release {
    fn release(&self, branch: &Branch, tickets: &mut [Ticket], now: DateTime<Utc>);
}

/// Every ticket starts at once.
pub struct AtOnce;

impl Release for AtOnce {
    fn release(&self, _: &Branch, _: &mut [Ticket], _: DateTime<Utc>) {}
}

pub const MAX_QUANTITY: u16 = 99;
pub const MAX_LINES_PER_ORDER: usize = 500;
pub const MAX_LINES_PER_COMMAND: usize = 100;
pub const MAX_MODIFIERS: usize = 20;
/// The longest note, modifier or reason, in characters.
pub const MAX_TEXT: usize = 200;
const MAX_COURSE: u8 = 9;
/// The longest external reference (a delivery platform's order id).
pub const MAX_EXTERNAL_REF: usize = 64;

pub use crate::menu::OrderSource;

/// Checks an external reference: 1 to 64 visible ASCII characters.
pub fn check_external_ref(reference: &str) -> Result<(), CommandError> {
    let visible = reference.bytes().all(|b| b.is_ascii_graphic());
    if reference.is_empty() || reference.len() > MAX_EXTERNAL_REF || !visible {
        return Err(invalid(format!(
            "external_ref must be 1 to {MAX_EXTERNAL_REF} visible ASCII characters"
        )));
    }
    Ok(())
}

/// A line as a waiter asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub item: ItemId,
    pub quantity: u16,
    pub modifiers: Vec<String>,
    pub note: Option<String>,
    pub seat: Option<u16>,
    pub course: u8,
}

fn check_text(what: &str, text: &str) -> Result<(), CommandError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
        return Err(invalid(format!(
            "{what} must be 1 to {MAX_TEXT} characters"
        )));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(invalid(format!("{what} must not hold control characters")));
    }
    Ok(())
}

impl NewLine {
    /// Checks what can be checked without the menu.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.quantity == 0 || self.quantity > MAX_QUANTITY {
            return Err(invalid(format!("quantity must be 1 to {MAX_QUANTITY}")));
        }
        if self.modifiers.len() > MAX_MODIFIERS {
            return Err(invalid(format!("at most {MAX_MODIFIERS} modifiers a line")));
        }
        for m in &self.modifiers {
            check_text("a modifier", m)?;
        }
        if let Some(note) = &self.note {
            check_text("a note", note)?;
        }
        if matches!(self.seat, Some(0) | Some(101..)) {
            return Err(invalid("seat must be 1 to 100"));
        }
        if self.course == 0 || self.course > MAX_COURSE {
            return Err(invalid(format!("course must be 1 to {MAX_COURSE}")));
        }
        Ok(())
    }
}

/// Where a line is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    Held,
    Fired,
    Started,
    Ready,
    Served,
    Voided,
}

/// A line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: LineId,
    pub item: ItemId,
    pub name: String,
    pub quantity: u16,
    pub modifiers: Vec<String>,
    pub note: Option<String>,
    pub seat: Option<u16>,
    pub course: u8,
    pub status: LineStatus,
    pub fire_no: Option<u32>,
    /// It took its portions from the item's limited count (and a void gives them back).
    pub counted: bool,
}

/// Portions a void gives back to an item's limited count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub item: ItemId,
    pub quantity: u16,
}

/// A line as printed on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLine {
    pub line_id: LineId,
    pub item: ItemId,
    pub name: String,
    pub quantity: u16,
    pub modifiers: Vec<String>,
    pub note: Option<String>,
    pub seat: Option<u16>,
    pub course: u8,
    pub voided: bool,
}

/// Where a ticket is on its station's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    New,
    Started,
    Bumped,
    Voided,
}

/// What one station sees of one fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub order_id: OrderId,
    pub table: TableId,
    pub ticket_no: u32,
    pub station: StationId,
    pub kind: StationKind,
    pub fire_no: u32,
    pub course: Option<u8>,
    pub lines: Vec<TicketLine>,
    pub status: TicketStatus,
    pub fired_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub bumped_at: Option<DateTime<Utc>>,
    /// Expo only: every cooking ticket of the fire is bumped.
    pub parts_ready: bool,
    /// Where its order came from; none for tickets fired before sources were recorded.
    pub source: Option<OrderSource>,
    /// A rush: stations and expo show it before the others.
    pub priority: bool,
    /// No screen of its station acknowledged it in time: expo and managers were told, until a
    /// screen does (or the ticket is bumped).
    pub unseen: bool,
    /// The table its order was moved from, last ("moved from T4").
    pub moved_from: Option<TableId>,
    /// Fire by prep time: when its station should start it, so that the fire's tickets finish
    /// together ("starts at 20:06"); none to start at once.
    pub starts_at: Option<DateTime<Utc>>,
}

impl Ticket {
    /// Still on the station's screen.
    pub fn is_live(&self) -> bool {
        matches!(self.status, TicketStatus::New | TicketStatus::Started)
    }

    /// Done as far as expo is concerned.
    fn is_done(&self) -> bool {
        matches!(self.status, TicketStatus::Bumped | TicketStatus::Voided)
    }

    /// Applies a change that concerns this ticket. Shared by orders and station screens.
    pub fn apply(&mut self, change: &OrderChange, at: DateTime<Utc>) {
        match change {
            OrderChange::TicketStarted { .. } => {
                self.status = TicketStatus::Started;
                self.started_at = Some(at);
            }
            OrderChange::TicketBumped { .. } => {
                self.status = TicketStatus::Bumped;
                self.bumped_at = Some(at);
                self.unseen = false;
            }
            OrderChange::TicketUnseen { .. } => self.unseen = true,
            OrderChange::OrderMoved { from, to, .. } => {
                self.table = to.clone();
                self.moved_from = Some(from.clone());
            }
            OrderChange::TicketSeen { .. } => self.unseen = false,
            OrderChange::TicketRecalled { .. } => {
                self.status = if self.kind == StationKind::Expo {
                    TicketStatus::New
                } else {
                    TicketStatus::Started
                };
                self.bumped_at = None;
                if self.kind == StationKind::Cooking && self.started_at.is_none() {
                    self.started_at = Some(at);
                }
            }
            OrderChange::TicketVoided { .. } => self.status = TicketStatus::Voided,
            OrderChange::ExpoReady { .. } => self.parts_ready = true,
            OrderChange::ExpoWaiting { .. } => self.parts_ready = false,
            OrderChange::PriorityChanged { priority, .. } => self.priority = *priority,
            OrderChange::LineVoided { line_id, .. } => {
                for l in self.lines.iter_mut().filter(|l| l.line_id == *line_id) {
                    l.voided = true;
                }
            }
            _ => {}
        }
    }
}

/// A ticket named in an event, with the station that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub ticket_id: TicketId,
    pub station: StationId,
}

/// What a command does to an order. Stored in the journal as the body of an order event.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderChange {
    OrderOpened {
        ticket_no: u32,
        day: NaiveDate,
        guests: Option<u16>,
        /// None in orders opened before sources were recorded.
        source: Option<OrderSource>,
        external_ref: Option<String>,
        priority: bool,
    },
    LinesAdded {
        lines: Vec<Line>,
    },
    LineVoided {
        line_id: LineId,
        reason: Option<String>,
        tickets: Vec<TicketRef>,
        /// The line had taken from its item's limited count: this goes back.
        restock: Option<Restock>,
    },
    CourseFired {
        fire_no: u32,
        course: Option<u8>,
        /// The fire is a rush (or its order is): every ticket it made is.
        priority: bool,
        tickets: Vec<Ticket>,
    },
    TicketStarted {
        ticket_id: TicketId,
        station: StationId,
    },
    TicketBumped {
        ticket_id: TicketId,
        station: StationId,
    },
    TicketRecalled {
        ticket_id: TicketId,
        station: StationId,
    },
    /// Every line of the ticket was voided.
    TicketVoided {
        ticket_id: TicketId,
        station: StationId,
    },
    /// Every cooking part of a fire is bumped: expo can send it.
    ExpoReady {
        ticket_id: TicketId,
        station: StationId,
        fire_no: u32,
    },
    /// A part was recalled: expo waits again.
    ExpoWaiting {
        ticket_id: TicketId,
        station: StationId,
        fire_no: u32,
    },
    /// Expo bumped the fire: the waiter runs the food.
    OrderReady {
        fire_no: u32,
        lines: Vec<LineId>,
    },
    LinesServed {
        lines: Vec<LineId>,
    },
    /// No screen of the ticket's station acknowledged it within the branch's limit: its
    /// station's and expo's screens are told (and managers, who follow the branch).
    TicketUnseen {
        ticket_id: TicketId,
        station: StationId,
        expo: StationId,
        waited_seconds: u32,
    },
    /// A screen of its station acknowledged a ticket that was unseen.
    TicketSeen {
        ticket_id: TicketId,
        station: StationId,
        expo: StationId,
    },
    /// Another open order of the branch was merged into this one: its lines (numbered on from
    /// this order's) and its tickets (their fires numbered on from this order's, their own
    /// ticket numbers kept) are this order's now.
    OrdersMerged {
        from: OrderId,
        from_table: TableId,
        lines: Vec<Line>,
        tickets: Vec<Ticket>,
        fires: u32,
    },
    /// This order was merged into another: it is closed, everything in it is the other's.
    MergedInto {
        into: OrderId,
    },
    /// Course pacing: the order's next held course fires by itself at `at` (expo sent the one
    /// before). `stations`: expo and the stations that course goes to, whose screens show it.
    CourseScheduled {
        course: u8,
        at: DateTime<Utc>,
        stations: Vec<StationId>,
    },
    /// The order moved to another table; its tickets (all of them) follow, their numbers stay.
    OrderMoved {
        from: TableId,
        to: TableId,
        tickets: Vec<TicketRef>,
    },
    /// The order was marked a rush, or no longer: its tickets follow (all but the voided, so
    /// that a bumped one recalled is still a rush).
    PriorityChanged {
        priority: bool,
        tickets: Vec<TicketRef>,
    },
    OrderClosed {},
}

impl OrderChange {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OrderOpened { .. } => "order_opened",
            Self::LinesAdded { .. } => "lines_added",
            Self::LineVoided { .. } => "line_voided",
            Self::CourseFired { .. } => "course_fired",
            Self::TicketStarted { .. } => "ticket_started",
            Self::TicketBumped { .. } => "ticket_bumped",
            Self::TicketRecalled { .. } => "ticket_recalled",
            Self::TicketVoided { .. } => "ticket_voided",
            Self::ExpoReady { .. } => "expo_ready",
            Self::ExpoWaiting { .. } => "expo_waiting",
            Self::OrderReady { .. } => "order_ready",
            Self::LinesServed { .. } => "lines_served",
            Self::PriorityChanged { .. } => "priority_changed",
            Self::OrderMoved { .. } => "order_moved",
            Self::CourseScheduled { .. } => "course_scheduled",
            Self::OrdersMerged { .. } => "orders_merged",
            Self::MergedInto { .. } => "merged_into",
            Self::TicketUnseen { .. } => "ticket_unseen",
            Self::TicketSeen { .. } => "ticket_seen",
            Self::OrderClosed {} => "order_closed",
        }
    }

    /// The stations whose screens show this change.
    pub fn stations(&self) -> Vec<&StationId> {
        match self {
            Self::CourseFired { tickets, .. } => tickets.iter().map(|t| &t.station).collect(),
            Self::LineVoided { tickets, .. }
            | Self::PriorityChanged { tickets, .. }
            | Self::OrderMoved { tickets, .. } => tickets.iter().map(|t| &t.station).collect(),
            Self::CourseScheduled { stations, .. } => stations.iter().collect(),
            Self::OrdersMerged { tickets, .. } => tickets.iter().map(|t| &t.station).collect(),
            Self::TicketStarted { station, .. }
            | Self::TicketBumped { station, .. }
            | Self::TicketRecalled { station, .. }
            | Self::TicketVoided { station, .. }
            | Self::ExpoReady { station, .. }
            | Self::ExpoWaiting { station, .. } => vec![station],
            Self::TicketUnseen { station, expo, .. } | Self::TicketSeen { station, expo, .. } => {
                if station == expo {
                    vec![station]
                } else {
                    vec![station, expo]
                }
            }
            _ => Vec::new(),
        }
    }

    /// The ticket a station-level change is about.
    pub fn ticket_id(&self) -> Option<&TicketId> {
        match self {
            Self::TicketStarted { ticket_id, .. }
            | Self::TicketBumped { ticket_id, .. }
            | Self::TicketRecalled { ticket_id, .. }
            | Self::TicketVoided { ticket_id, .. }
            | Self::ExpoReady { ticket_id, .. }
            | Self::ExpoWaiting { ticket_id, .. }
            | Self::TicketUnseen { ticket_id, .. }
            | Self::TicketSeen { ticket_id, .. } => Some(ticket_id),
            _ => None,
        }
    }
}

/// What can be done to an open order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    AddLines {
        lines: Vec<NewLine>,
    },
    VoidLine {
        line: LineId,
        reason: Option<String>,
    },
    /// Fire the held lines of one course, or every held line; a priority fire is a rush.
    Fire {
        course: Option<u8>,
        priority: bool,
    },
    /// Mark the order a rush, or no longer.
    SetPriority {
        priority: bool,
    },
    /// Fire the next held course now (the smallest held course).
    FireNext,
    /// Take in another open order of the branch, as it is (`MergeInto` closes that one).
    MergeFrom {
        other: Box<Order>,
    },
    /// Close this order, merged into another, if it is still as it was (`seq`) when merged.
    MergeInto {
        into: OrderId,
        seq: u64,
    },
    /// Move the order to another table of the branch.
    MoveTo {
        table: TableId,
    },
    /// Record that no screen of the ticket's station acknowledged it (the station's watch).
    MarkUnseen {
        ticket: TicketId,
        waited_seconds: u32,
    },
    /// Record that a screen acknowledged a ticket marked unseen.
    MarkSeen {
        ticket: TicketId,
    },
    StartTicket {
        ticket: TicketId,
    },
    BumpTicket {
        ticket: TicketId,
    },
    RecallTicket {
        ticket: TicketId,
    },
    /// Mark lines served; all ready lines when none are named.
    Serve {
        lines: Option<Vec<LineId>>,
    },
    Close,
}

/// A course that fires by itself (course pacing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledCourse {
    pub course: u8,
    pub at: DateTime<Utc>,
}

/// An order and everything its fires sent to the kitchen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub table: TableId,
    pub ticket_no: u32,
    pub day: NaiveDate,
    pub guests: Option<u16>,
    /// Where the order came from; none for orders opened before sources were recorded.
    pub source: Option<OrderSource>,
    /// A delivery platform's (or another system's) id of the order, unique per branch a day.
    pub external_ref: Option<String>,
    /// A rush: its tickets come first on every screen.
    pub priority: bool,
    /// Course pacing: the next course that fires by itself, and when.
    pub scheduled: Option<ScheduledCourse>,
    /// Orders merged into this one.
    pub merged_from: Vec<OrderId>,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub lines: BTreeMap<LineId, Line>,
    pub tickets: Vec<Ticket>,
    pub fires: u32,
    /// Sequence number of the last event applied (its stream's length).
    pub seq: u64,
    /// Branch position of the last event applied.
    pub position: u64,
}

impl Order {
    /// The order as its opening event makes it.
    pub fn opened(id: OrderId, table: TableId, change: &OrderChange, at: DateTime<Utc>) -> Self {
        let mut order = Self {
            id,
            table,
            ticket_no: 0,
            day: at.date_naive(),
            guests: None,
            source: None,
            external_ref: None,
            priority: false,
            scheduled: None,
            merged_from: Vec::new(),
            opened_at: at,
            closed_at: None,
            lines: BTreeMap::new(),
            tickets: Vec::new(),
            fires: 0,
            seq: 0,
            position: 0,
        };
        match change {
            OrderChange::OrderOpened {
                ticket_no,
                day,
                guests,
                source,
                external_ref,
                priority,
            } => {
                order.ticket_no = *ticket_no;
                order.day = *day;
                order.guests = *guests;
                order.source = *source;
                order.external_ref.clone_from(external_ref);
                order.priority = *priority;
            }
            // A journal whose opening event could not be read: keep the order, unnumbered,
            // rather than lose it.
            other => {
                tracing::error!(order = %id, first = other.kind(), "order has no readable order_opened");
            }
        }
        order
    }

    /// Says what opening an order and carrying out `then` on it change, or why they are
    /// refused: one command's worth of changes, journaled in one append, so a one-call order
    /// (opened, its lines added and fired) is all there or not at all.
    pub fn decide_open(
        id: OrderId,
        table: TableId,
        opened: OrderChange,
        then: &[OrderCommand],
        branch: &Branch,
        timing: &dyn Release,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderChange>, CommandError> {
        let mut order = Order::opened(id, table, &opened, now);
        let mut changes = vec![opened];
        for command in then {
            for change in order.decide_timed(command, branch, timing, now)? {
                order.apply(&change, now);
                changes.push(change);
            }
        }
        Ok(changes)
    }

    pub fn is_closed(&self) -> bool {
        self.closed_at.is_some()
    }

    pub fn ticket(&self, id: &TicketId) -> Option<&Ticket> {
        self.tickets.iter().find(|t| t.id == *id)
    }

    fn line(&self, id: LineId) -> Result<&Line, CommandError> {
        self.lines.get(&id).ok_or(CommandError::UnknownLine(id))
    }

    /// Says what a command changes, or why it is refused. Changes nothing.
    pub fn decide(
        &self,
        command: &OrderCommand,
        branch: &Branch,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderChange>, CommandError> {
        self.decide_timed(command, branch, &AtOnce, now)
    }

    /// `decide`, a fire's tickets released by `timing` so that they finish together.
    pub fn decide_timed(
        &self,
        command: &OrderCommand,
        branch: &Branch,
        timing: &dyn Release,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderChange>, CommandError> {
        if self.is_closed() {
            return Err(CommandError::OrderClosed);
        }
        match command {
            OrderCommand::AddLines { lines } => self.decide_add(lines, branch),
            OrderCommand::VoidLine { line, reason } => self.decide_void(*line, reason),
            OrderCommand::Fire { course, priority } => {
                self.decide_fire(*course, *priority, branch, timing, now)
            }
            OrderCommand::SetPriority { priority } => {
                if self.priority == *priority {
                    return Err(CommandError::InvalidTransition(format!(
                        "the order is {} a rush",
                        if *priority { "already" } else { "not" }
                    )));
                }
                let tickets = self
                    .tickets
                    .iter()
                    .filter(|t| t.status != TicketStatus::Voided && t.priority != *priority)
                    .map(|t| TicketRef {
                        ticket_id: t.id,
                        station: t.station.clone(),
                    })
                    .collect();
                Ok(vec![OrderChange::PriorityChanged {
                    priority: *priority,
                    tickets,
                }])
            }
            OrderCommand::StartTicket { ticket } => {
                let t = self.live_ticket(ticket)?;
                if t.kind == StationKind::Expo {
                    return Err(CommandError::InvalidTransition(
                        "expo tickets are bumped, not started".into(),
                    ));
                }
                if t.status != TicketStatus::New {
                    return Err(CommandError::InvalidTransition(format!(
                        "ticket is {}, only a new ticket can be started",
                        status_word(t.status)
                    )));
                }
                Ok(vec![OrderChange::TicketStarted {
                    ticket_id: t.id,
                    station: t.station.clone(),
                }])
            }
            OrderCommand::BumpTicket { ticket } => self.decide_bump(ticket, branch, now),
            OrderCommand::MergeFrom { other } => self.decide_merge(other),
            OrderCommand::MergeInto { into, seq } => {
                if *seq != self.seq {
                    return Err(CommandError::Conflict);
                }
                Ok(vec![OrderChange::MergedInto { into: *into }])
            }
            OrderCommand::FireNext => {
                let next = self.next_held_course(0).ok_or_else(|| {
                    CommandError::NothingToFire("the order has no held lines".into())
                })?;
                self.decide_fire(Some(next), false, branch, timing, now)
            }
            OrderCommand::MoveTo { table } => {
                branch.table(table)?;
                if *table == self.table {
                    return Err(CommandError::InvalidTransition(format!(
                        "the order is at {table} already"
                    )));
                }
                Ok(vec![OrderChange::OrderMoved {
                    from: self.table.clone(),
                    to: table.clone(),
                    tickets: self
                        .tickets
                        .iter()
                        .map(|t| TicketRef {
                            ticket_id: t.id,
                            station: t.station.clone(),
                        })
                        .collect(),
                }])
            }
            OrderCommand::MarkUnseen {
                ticket,
                waited_seconds,
            } => {
                let t = self.live_ticket(ticket)?;
                if !t.is_live() || t.unseen {
                    return Err(CommandError::InvalidTransition(
                        "only a live ticket not yet marked unseen can be".into(),
                    ));
                }
                Ok(vec![OrderChange::TicketUnseen {
                    ticket_id: t.id,
                    station: t.station.clone(),
                    expo: branch.expo().clone(),
                    waited_seconds: *waited_seconds,
                }])
            }
            OrderCommand::MarkSeen { ticket } => {
                let t = self.live_ticket(ticket)?;
                if !t.unseen {
                    return Err(CommandError::InvalidTransition(
                        "the ticket is not marked unseen".into(),
                    ));
                }
                Ok(vec![OrderChange::TicketSeen {
                    ticket_id: t.id,
                    station: t.station.clone(),
                    expo: branch.expo().clone(),
                }])
            }
            OrderCommand::RecallTicket { ticket } => self.decide_recall(ticket),
            OrderCommand::Serve { lines } => {
                let lines: Vec<LineId> = match lines {
                    Some(ids) => {
                        let unique: BTreeSet<LineId> = ids.iter().copied().collect();
                        for id in &unique {
                            let line = self.line(*id)?;
                            if line.status != LineStatus::Ready {
                                return Err(CommandError::InvalidTransition(format!(
                                    "line {id} is {}, only a ready line can be served",
                                    line_word(line.status)
                                )));
                            }
                        }
                        unique.into_iter().collect()
                    }
                    None => self
                        .lines
                        .values()
                        .filter(|l| l.status == LineStatus::Ready)
                        .map(|l| l.id)
                        .collect(),
                };
                if lines.is_empty() {
                    return Err(CommandError::NothingToServe);
                }
                Ok(vec![OrderChange::LinesServed { lines }])
            }
            OrderCommand::Close => {
                let open = self
                    .lines
                    .values()
                    .filter(|l| !matches!(l.status, LineStatus::Served | LineStatus::Voided))
                    .count();
                if open > 0 {
                    return Err(CommandError::OrderNotFinished(open));
                }
                Ok(vec![OrderChange::OrderClosed {}])
            }
        }
    }

    fn decide_add(
        &self,
        lines: &[NewLine],
        branch: &Branch,
    ) -> Result<Vec<OrderChange>, CommandError> {
        if lines.is_empty() || lines.len() > MAX_LINES_PER_COMMAND {
            return Err(invalid(format!(
                "add 1 to {MAX_LINES_PER_COMMAND} lines at a time"
            )));
        }
        if self.lines.len() + lines.len() > MAX_LINES_PER_ORDER {
            return Err(invalid(format!(
                "an order holds at most {MAX_LINES_PER_ORDER} lines"
            )));
        }
        let first = self.lines.keys().next_back().copied().unwrap_or(0) + 1;
        let mut added = Vec::with_capacity(lines.len());
        for (id, new) in (first..).zip(lines) {
            new.validate()?;
            let routed = branch.item(&new.item)?;
            if branch.is_86(&new.item) {
                return Err(CommandError::EightySixed(new.item.clone()));
            }
            routed.item.check_modifiers(&new.modifiers)?;
            added.push(Line {
                id,
                item: new.item.clone(),
                name: routed.item.name.clone(),
                quantity: new.quantity,
                modifiers: new.modifiers.clone(),
                note: new.note.clone(),
                seat: new.seat,
                course: new.course,
                status: LineStatus::Held,
                fire_no: None,
                counted: branch.is_limited(&new.item),
            });
        }
        Ok(vec![OrderChange::LinesAdded { lines: added }])
    }

    fn decide_void(
        &self,
        line_id: LineId,
        reason: &Option<String>,
    ) -> Result<Vec<OrderChange>, CommandError> {
        if let Some(reason) = reason {
            check_text("a reason", reason)?;
        }
        let line = self.line(line_id)?;
        match line.status {
            LineStatus::Held | LineStatus::Fired | LineStatus::Started => {}
            other => {
                return Err(CommandError::InvalidTransition(format!(
                    "line {line_id} is {}, it can no longer be voided",
                    line_word(other)
                )))
            }
        }
        let holds = |t: &Ticket| t.lines.iter().any(|l| l.line_id == line_id);
        let tickets: Vec<&Ticket> = self.tickets.iter().filter(|t| holds(t)).collect();
        let mut changes = vec![OrderChange::LineVoided {
            line_id,
            reason: reason.clone(),
            tickets: tickets
                .iter()
                .map(|t| TicketRef {
                    ticket_id: t.id,
                    station: t.station.clone(),
                })
                .collect(),
            restock: line.counted.then(|| Restock {
                item: line.item.clone(),
                quantity: line.quantity,
            }),
        }];
        // Tickets left with nothing to cook leave their screens.
        let mut voided = BTreeSet::new();
        for t in &tickets {
            let all_void = t.lines.iter().all(|l| l.voided || l.line_id == line_id);
            if all_void && t.is_live() {
                voided.insert(t.id);
                changes.push(OrderChange::TicketVoided {
                    ticket_id: t.id,
                    station: t.station.clone(),
                });
            }
        }
        // Voiding the last unfinished part may make the fire ready at expo.
        if let Some(fire_no) = line.fire_no {
            if let Some(expo) = self.expo_ticket(fire_no) {
                if !voided.contains(&expo.id) && expo.is_live() && !expo.parts_ready {
                    let cooking_done = self
                        .tickets
                        .iter()
                        .filter(|t| t.fire_no == fire_no && t.kind == StationKind::Cooking)
                        .all(|t| t.is_done() || voided.contains(&t.id));
                    if cooking_done {
                        changes.push(OrderChange::ExpoReady {
                            ticket_id: expo.id,
                            station: expo.station.clone(),
                            fire_no,
                        });
                    }
                }
            }
        }
        Ok(changes)
    }

    fn decide_fire(
        &self,
        course: Option<u8>,
        priority: bool,
        branch: &Branch,
        timing: &dyn Release,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderChange>, CommandError> {
        if matches!(course, Some(0) | Some(10..)) {
            return Err(invalid(format!("course must be 1 to {MAX_COURSE}")));
        }
        let lines: Vec<&Line> = self
            .lines
            .values()
            .filter(|l| l.status == LineStatus::Held && course.is_none_or(|c| l.course == c))
            .collect();
        if lines.is_empty() {
            return Err(CommandError::NothingToFire(match course {
                Some(c) => format!("course {c} has no held lines"),
                None => "the order has no held lines".into(),
            }));
        }
        let fire_no = self.fires + 1;
        let mut by_station: BTreeMap<StationId, Vec<TicketLine>> = BTreeMap::new();
        for line in &lines {
            let routed = branch.item(&line.item)?;
            if branch.is_86(&line.item) {
                return Err(CommandError::EightySixed(line.item.clone()));
            }
            for station in &routed.stations {
                by_station
                    .entry(station.clone())
                    .or_default()
                    .push(ticket_line(line));
            }
        }
        let ticket = |station: StationId, kind: StationKind, lines: Vec<TicketLine>| Ticket {
            id: TicketId::new(),
            order_id: self.id,
            table: self.table.clone(),
            ticket_no: self.ticket_no,
            station,
            kind,
            fire_no,
            course,
            lines,
            status: TicketStatus::New,
            fired_at: now,
            started_at: None,
            bumped_at: None,
            parts_ready: false,
            source: self.source,
            priority: priority || self.priority,
            unseen: false,
            moved_from: None,
            starts_at: None,
        };
        let mut tickets: Vec<Ticket> = by_station
            .into_iter()
            .map(|(station, lines)| ticket(station, StationKind::Cooking, lines))
            .collect();
        let all = lines.iter().map(|l| ticket_line(l)).collect();
        tickets.push(ticket(branch.expo().clone(), StationKind::Expo, all));
        timing.release(branch, &mut tickets, now);
        Ok(vec![OrderChange::CourseFired {
            fire_no,
            course,
            priority: priority || self.priority,
            tickets,
        }])
    }

    fn decide_bump(
        &self,
        id: &TicketId,
        branch: &Branch,
        now: DateTime<Utc>,
    ) -> Result<Vec<OrderChange>, CommandError> {
        let t = self.live_ticket(id)?;
        if !t.is_live() {
            return Err(CommandError::InvalidTransition(format!(
                "ticket is {}, it cannot be bumped",
                status_word(t.status)
            )));
        }
        let bumped = OrderChange::TicketBumped {
            ticket_id: t.id,
            station: t.station.clone(),
        };
        if t.kind == StationKind::Expo {
            let pending = self
                .tickets
                .iter()
                .filter(|c| c.fire_no == t.fire_no && c.kind == StationKind::Cooking)
                .filter(|c| !c.is_done())
                .count();
            if pending > 0 {
                return Err(CommandError::PartsPending(pending));
            }
            let lines = self
                .lines
                .values()
                .filter(|l| l.fire_no == Some(t.fire_no) && l.status != LineStatus::Voided)
                .map(|l| l.id)
                .collect();
            let mut changes = vec![
                bumped,
                OrderChange::OrderReady {
                    fire_no: t.fire_no,
                    lines,
                },
            ];
            // Course pacing: the next held course fires by itself a while after this one.
            let after = t.course.unwrap_or(0);
            if let (Some(pace), Some(next)) = (branch.course_pace(), self.next_held_course(after)) {
                changes.push(OrderChange::CourseScheduled {
                    course: next,
                    at: now + pace,
                    stations: self.stations_of_course(next, branch),
                });
            }
            return Ok(changes);
        }
        let mut changes = vec![bumped];
        let rest_done = self
            .tickets
            .iter()
            .filter(|c| c.fire_no == t.fire_no && c.kind == StationKind::Cooking && c.id != t.id)
            .all(Ticket::is_done);
        if let Some(expo) = self.expo_ticket(t.fire_no) {
            if rest_done && expo.is_live() && !expo.parts_ready {
                changes.push(OrderChange::ExpoReady {
                    ticket_id: expo.id,
                    station: expo.station.clone(),
                    fire_no: t.fire_no,
                });
            }
        }
        Ok(changes)
    }

    fn decide_recall(&self, id: &TicketId) -> Result<Vec<OrderChange>, CommandError> {
        let t = self.live_ticket(id)?;
        if t.status != TicketStatus::Bumped {
            return Err(CommandError::InvalidTransition(format!(
                "ticket is {}, only a bumped ticket can be recalled",
                status_word(t.status)
            )));
        }
        if t.lines.iter().all(|l| l.voided) {
            return Err(CommandError::InvalidTransition(
                "every line of this ticket was voided; there is nothing to recall".into(),
            ));
        }
        let recalled = OrderChange::TicketRecalled {
            ticket_id: t.id,
            station: t.station.clone(),
        };
        let expo = self.expo_ticket(t.fire_no);
        if t.kind == StationKind::Expo {
            let served = self
                .lines
                .values()
                .any(|l| l.fire_no == Some(t.fire_no) && l.status == LineStatus::Served);
            if served {
                return Err(CommandError::InvalidTransition(
                    "food of this fire is already served".into(),
                ));
            }
            return Ok(vec![recalled]);
        }
        let mut changes = vec![recalled];
        if let Some(expo) = expo {
            if expo.status == TicketStatus::Bumped {
                return Err(CommandError::InvalidTransition(
                    "expo has already sent this fire; recall it at expo first".into(),
                ));
            }
            if expo.parts_ready && expo.is_live() {
                changes.push(OrderChange::ExpoWaiting {
                    ticket_id: expo.id,
                    station: expo.station.clone(),
                    fire_no: t.fire_no,
                });
            }
        }
        Ok(changes)
    }

    /// Takes in `other`: its lines numbered on from this order's, its fires on from this
    /// order's, its tickets re-pointed here (their own numbers kept).
    fn decide_merge(&self, other: &Order) -> Result<Vec<OrderChange>, CommandError> {
        if other.id == self.id {
            return Err(CommandError::InvalidTransition(
                "an order cannot be merged into itself".into(),
            ));
        }
        if other.is_closed() {
            return Err(CommandError::OrderClosed);
        }
        if self.lines.len() + other.lines.len() > MAX_LINES_PER_ORDER {
            return Err(invalid(format!(
                "an order holds at most {MAX_LINES_PER_ORDER} lines"
            )));
        }
        let first = self.lines.keys().next_back().copied().unwrap_or(0);
        let line_id = |id: LineId| first + id;
        let fire_no = |n: u32| self.fires + n;
        let lines = other
            .lines
            .values()
            .map(|l| Line {
                id: line_id(l.id),
                fire_no: l.fire_no.map(fire_no),
                ..l.clone()
            })
            .collect();
        let tickets = other
            .tickets
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.order_id = self.id;
                if t.table != self.table {
                    t.moved_from = Some(t.table.clone());
                }
                t.table = self.table.clone();
                t.fire_no = fire_no(t.fire_no);
                for l in &mut t.lines {
                    l.line_id = line_id(l.line_id);
                }
                t
            })
            .collect();
        Ok(vec![OrderChange::OrdersMerged {
            from: other.id,
            from_table: other.table.clone(),
            lines,
            tickets,
            fires: other.fires,
        }])
    }

    /// The smallest course after `after` with held lines.
    fn next_held_course(&self, after: u8) -> Option<u8> {
        self.lines
            .values()
            .filter(|l| l.status == LineStatus::Held && l.course > after)
            .map(|l| l.course)
            .min()
    }

    /// Expo and the stations a course's held lines go to.
    fn stations_of_course(&self, course: u8, branch: &Branch) -> Vec<StationId> {
        let mut stations: BTreeSet<StationId> = self
            .lines
            .values()
            .filter(|l| l.status == LineStatus::Held && l.course == course)
            .filter_map(|l| branch.item(&l.item).ok())
            .flat_map(|routed| routed.stations.iter().cloned())
            .collect();
        stations.insert(branch.expo().clone());
        stations.into_iter().collect()
    }

    fn live_ticket(&self, id: &TicketId) -> Result<&Ticket, CommandError> {
        self.ticket(id).ok_or(CommandError::UnknownTicket(*id))
    }

    fn expo_ticket(&self, fire_no: u32) -> Option<&Ticket> {
        self.tickets
            .iter()
            .find(|t| t.fire_no == fire_no && t.kind == StationKind::Expo)
    }

    /// Makes a change that `decide` returned and the journal committed.
    pub fn apply(&mut self, change: &OrderChange, at: DateTime<Utc>) {
        self.apply_change(change, at);
        // A paced course with nothing left to fire (voided, or fired with another course's
        // lines) waits for nothing.
        if let Some(s) = self.scheduled {
            let held = self
                .lines
                .values()
                .any(|l| l.status == LineStatus::Held && l.course == s.course);
            if !held {
                self.scheduled = None;
            }
        }
    }

    fn apply_change(&mut self, change: &OrderChange, at: DateTime<Utc>) {
        match change {
            OrderChange::OrderOpened { .. } => {}
            OrderChange::LinesAdded { lines } => {
                for line in lines {
                    self.lines.insert(line.id, line.clone());
                }
            }
            OrderChange::LineVoided { line_id, .. } => {
                if let Some(line) = self.lines.get_mut(line_id) {
                    line.status = LineStatus::Voided;
                }
                for t in &mut self.tickets {
                    t.apply(change, at);
                }
            }
            OrderChange::CourseScheduled { course, at, .. } => {
                self.scheduled = Some(ScheduledCourse {
                    course: *course,
                    at: *at,
                });
            }
            OrderChange::CourseFired {
                fire_no, tickets, ..
            } => {
                self.fires = *fire_no;
                for t in tickets {
                    for tl in &t.lines {
                        if let Some(line) = self.lines.get_mut(&tl.line_id) {
                            line.status = LineStatus::Fired;
                            line.fire_no = Some(*fire_no);
                        }
                    }
                }
                self.tickets.extend(tickets.iter().cloned());
            }
            OrderChange::TicketStarted { ticket_id, .. } => {
                if let Some(t) = self.tickets.iter_mut().find(|t| t.id == *ticket_id) {
                    t.apply(change, at);
                    for tl in &t.lines {
                        if let Some(line) = self.lines.get_mut(&tl.line_id) {
                            if line.status == LineStatus::Fired {
                                line.status = LineStatus::Started;
                            }
                        }
                    }
                }
            }
            OrderChange::TicketRecalled { ticket_id, .. } => {
                if let Some(t) = self.tickets.iter_mut().find(|t| t.id == *ticket_id) {
                    t.apply(change, at);
                    if t.kind == StationKind::Expo {
                        for tl in &t.lines {
                            if let Some(line) = self.lines.get_mut(&tl.line_id) {
                                if line.status == LineStatus::Ready {
                                    line.status = LineStatus::Started;
                                }
                            }
                        }
                    }
                }
            }
            OrderChange::TicketBumped { ticket_id, .. }
            | OrderChange::TicketUnseen { ticket_id, .. }
            | OrderChange::TicketSeen { ticket_id, .. }
            | OrderChange::TicketVoided { ticket_id, .. }
            | OrderChange::ExpoReady { ticket_id, .. }
            | OrderChange::ExpoWaiting { ticket_id, .. } => {
                if let Some(t) = self.tickets.iter_mut().find(|t| t.id == *ticket_id) {
                    t.apply(change, at);
                }
            }
            OrderChange::OrderReady { lines, .. } => self.set_status(lines, LineStatus::Ready),
            OrderChange::LinesServed { lines } => self.set_status(lines, LineStatus::Served),
            OrderChange::OrderMoved { to, .. } => {
                self.table = to.clone();
                for t in &mut self.tickets {
                    t.apply(change, at);
                }
            }
            OrderChange::PriorityChanged { priority, tickets } => {
                self.priority = *priority;
                for t in &mut self.tickets {
                    if tickets.iter().any(|r| r.ticket_id == t.id) {
                        t.apply(change, at);
                    }
                }
            }
            OrderChange::OrderClosed {} | OrderChange::MergedInto { .. } => {
                self.closed_at = Some(at)
            }
            OrderChange::OrdersMerged {
                from,
                lines,
                tickets,
                fires,
                ..
            } => {
                for line in lines {
                    self.lines.insert(line.id, line.clone());
                }
                self.tickets.extend(tickets.iter().cloned());
                self.fires += fires;
                self.merged_from.push(*from);
            }
        }
    }

    /// Applies one committed event of the order's stream and notes where the order stands:
    /// every rebuild of an order (recovery, tables, the branch's view, reads of closed orders,
    /// idempotent answers) goes through here.
    pub fn replay(&mut self, change: &OrderChange, seq: u64, position: u64, at: DateTime<Utc>) {
        self.apply(change, at);
        self.seq = seq;
        self.position = position;
    }

    fn set_status(&mut self, lines: &[LineId], status: LineStatus) {
        for id in lines {
            if let Some(line) = self.lines.get_mut(id) {
                line.status = status;
            }
        }
    }
}

fn ticket_line(line: &Line) -> TicketLine {
    TicketLine {
        line_id: line.id,
        item: line.item.clone(),
        name: line.name.clone(),
        quantity: line.quantity,
        modifiers: line.modifiers.clone(),
        note: line.note.clone(),
        seat: line.seat,
        course: line.course,
        voided: false,
    }
}

fn status_word(s: TicketStatus) -> &'static str {
    match s {
        TicketStatus::New => "new",
        TicketStatus::Started => "started",
        TicketStatus::Bumped => "bumped",
        TicketStatus::Voided => "voided",
    }
}

fn line_word(s: LineStatus) -> &'static str {
    match s {
        LineStatus::Held => "held",
        LineStatus::Fired => "fired",
        LineStatus::Started => "started",
        LineStatus::Ready => "ready",
        LineStatus::Served => "served",
        LineStatus::Voided => "voided",
    }
}
