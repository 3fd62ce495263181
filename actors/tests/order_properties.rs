//! Property tests of the pure order domain.
//!
//! Random command sequences are decided and applied against one order of a fixed branch, the
//! way the table actor does it, with every accepted change also written to an in-memory
//! "journal" of serialized events. After every step the order must satisfy the kitchen's
//! invariants; at the end, replaying the journal must rebuild exactly the live order.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rail_actors::event::{Event, OrderEvent};
use rail_actors::ids::{ItemId, LineId, OrderId, StationId, TableId, TicketId};
use rail_actors::journal::{NewEvent, StoredEvent};
use rail_actors::menu::{Branch, BranchConfig, StationKind};
use rail_actors::order::{
    LineStatus, NewLine, Order, OrderChange, OrderCommand, OrderSource, Ticket, TicketStatus,
    MAX_QUANTITY,
};
use serde_json::json;

/// Tables an order may move to; the last one is not in the branch.
const TABLES: [&str; 4] = ["t1", "t2", "t3", "t9"];

/// Items the generator orders from; the last one is not on the menu.
const ITEMS: [&str; 7] = [
    "burger", "steak", "fries", "salad", "soda", "shake", "unicorn",
];

fn branch() -> Branch {
    let config: BranchConfig = serde_json::from_value(json!({
        "name": "Property Kitchen",
        "course_pace_seconds": 600,
        "stations": [
            {"id": "grill", "name": "Grill"},
            {"id": "fryer", "name": "Fryer"},
            {"id": "cold", "name": "Cold"},
            {"id": "bar", "name": "Bar"},
            {"id": "expo", "name": "Expo", "kind": "expo"}
        ],
        "categories": [
            {"id": "mains", "name": "Mains", "stations": ["grill"]},
            {"id": "sides", "name": "Sides", "stations": ["fryer"]},
            {"id": "starters", "name": "Starters", "stations": ["cold"]},
            {"id": "drinks", "name": "Drinks", "stations": ["bar"]},
            {"id": "desserts", "name": "Desserts", "stations": ["cold"]}
        ],
        "items": [
            {"id": "burger", "name": "Burger", "category": "mains", "stations": ["grill", "fryer"]},
            {"id": "steak", "name": "Steak", "category": "mains"},
            {"id": "fries", "name": "Fries", "category": "sides"},
            {"id": "salad", "name": "Salad", "category": "starters"},
            {"id": "soda", "name": "Soda", "category": "drinks"},
            {"id": "shake", "name": "Shake", "category": "desserts", "stations": ["bar"]}
        ],
        "tables": [{"id": "t1", "name": "Table 1"}, {"id": "t2", "name": "Table 2"},
                   {"id": "t3", "name": "Table 3"}]
    }))
    .expect("the fixture is a branch config");
    Branch::new(config).expect("the fixture validates")
}

fn item(index: usize) -> ItemId {
    ItemId::parse(ITEMS[index]).expect("fixture item ids are slugs")
}

#[derive(Debug, Clone)]
enum TicketPick {
    /// One of the order's tickets the action suits when the step runs (any ticket when none
    /// does): a new cooking ticket to start, a live one to bump, a bumped one to recall.
    Suited(Index),
    /// One of the order's tickets, whatever they are when the step runs.
    Any(Index),
    /// A ticket the order never had.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum TicketAction {
    Start,
    Bump,
    Recall,
}

#[derive(Debug, Clone)]
enum Step {
    /// (index into `ITEMS`, quantity, course) per line.
    Add(Vec<(usize, u16, u8)>),
    Void(LineId),
    /// Fire one course or all, as a rush or not.
    Fire(Option<u8>, bool),
    /// Mark the order a rush, or no longer.
    Priority(bool),
    /// The station's watch reports a ticket unseen (true) or seen again (false).
    Watch(bool, TicketPick),
    /// Move the order to one of the branch's tables (maybe the one it is at).
    Move(usize),
    /// A waiter's "fire next".
    FireNext,
    Ticket(TicketAction, TicketPick),
    Serve(Option<Vec<LineId>>),
    Close,
    /// Not an order command: 86 the item, or restore it.
    Toggle86(usize),
}

/// Lines the menu takes, so that most runs have something to cook before anything else.
fn valid_add() -> impl Strategy<Value = Step> {
    let line = (0..ITEMS.len() - 1, 1u16..=MAX_QUANTITY, 1u8..=3);
    prop::collection::vec(line, 1..=3).prop_map(Step::Add)
}

fn step() -> impl Strategy<Value = Step> {
    let pick = || {
        prop_oneof![
            6 => any::<Index>().prop_map(TicketPick::Suited),
            3 => any::<Index>().prop_map(TicketPick::Any),
            1 => Just(TicketPick::Unknown),
        ]
    };
    let quantity = prop_oneof![3 => 1u16..=MAX_QUANTITY, 1 => 0u16..=120];
    let line = (0..ITEMS.len(), quantity, 1u8..=3);
    let line_id = 1 as LineId..=8;
    // Weighted so that most runs get fires through to expo, the pass and the bill.
    prop_oneof![
        2 => prop::collection::vec(line, 1..=3).prop_map(Step::Add),
        1 => line_id.clone().prop_map(Step::Void),
        3 => (prop::option::of(1u8..=3), prop::bool::weighted(0.2)).prop_map(|(c, p)| Step::Fire(c, p)),
        1 => any::<bool>().prop_map(Step::Priority),
        1 => (any::<bool>(), pick()).prop_map(|(unseen, p)| Step::Watch(unseen, p)),
        1 => (0..TABLES.len()).prop_map(Step::Move),
        1 => Just(Step::FireNext),
        2 => pick().prop_map(|p| Step::Ticket(TicketAction::Start, p)),
        8 => pick().prop_map(|p| Step::Ticket(TicketAction::Bump, p)),
        2 => pick().prop_map(|p| Step::Ticket(TicketAction::Recall, p)),
        3 => Just(Step::Serve(None)),
        1 => prop::collection::vec(line_id, 0..=3).prop_map(|ids| Step::Serve(Some(ids))),
        2 => Just(Step::Close),
        1 => (0..ITEMS.len()).prop_map(Step::Toggle86),
    ]
}

/// The command a step stands for, given the order as it is now.
fn command(step: &Step, order: &Order) -> Option<OrderCommand> {
    let ticket = |action: TicketAction, pick: &TicketPick| {
        let suits = |t: &&Ticket| match action {
            TicketAction::Start => t.kind == StationKind::Cooking && t.status == TicketStatus::New,
            TicketAction::Bump => t.is_live() && (t.kind == StationKind::Cooking || t.parts_ready),
            TicketAction::Recall => t.status == TicketStatus::Bumped,
        };
        let suited: Vec<&Ticket> = order.tickets.iter().filter(suits).collect();
        let all: Vec<&Ticket> = order.tickets.iter().collect();
        let (i, among) = match pick {
            TicketPick::Suited(i) if !suited.is_empty() => (i, suited),
            TicketPick::Suited(i) | TicketPick::Any(i) => (i, all),
            TicketPick::Unknown => return TicketId::new(),
        };
        if among.is_empty() {
            return TicketId::new();
        }
        among[i.index(among.len())].id
    };
    Some(match step {
        Step::Add(lines) => OrderCommand::AddLines {
            lines: lines
                .iter()
                .map(|&(i, quantity, course)| NewLine {
                    item: item(i),
                    quantity,
                    modifiers: Vec::new(),
                    note: None,
                    seat: None,
                    course,
                })
                .collect(),
        },
        Step::Void(line) => OrderCommand::VoidLine {
            line: *line,
            reason: None,
        },
        Step::Fire(course, priority) => OrderCommand::Fire {
            course: *course,
            priority: *priority,
        },
        Step::Priority(priority) => OrderCommand::SetPriority {
            priority: *priority,
        },
        Step::Watch(true, pick) => OrderCommand::MarkUnseen {
            ticket: ticket(TicketAction::Bump, pick),
            waited_seconds: 10,
        },
        Step::FireNext => OrderCommand::FireNext,
        Step::Move(t) => OrderCommand::MoveTo {
            table: TableId::parse(TABLES[*t]).unwrap(),
        },
        Step::Watch(false, pick) => OrderCommand::MarkSeen {
            ticket: ticket(TicketAction::Bump, pick),
        },
        Step::Ticket(action, pick) => {
            let ticket = ticket(*action, pick);
            match action {
                TicketAction::Start => OrderCommand::StartTicket { ticket },
                TicketAction::Bump => OrderCommand::BumpTicket { ticket },
                TicketAction::Recall => OrderCommand::RecallTicket { ticket },
            }
        }
        Step::Serve(lines) => OrderCommand::Serve {
            lines: lines.clone(),
        },
        Step::Close => OrderCommand::Close,
        Step::Toggle86(_) => return None,
    })
}

/// What the test remembers across steps.
#[derive(Default)]
struct History {
    /// Fires whose expo ticket was bumped at least once.
    expo_bumped: BTreeSet<u32>,
    /// The highest line id ever handed out.
    last_line: LineId,
}

fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).expect("in range")
}

fn fail(message: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(message.to_string())
}

fn done(t: &Ticket) -> bool {
    matches!(t.status, TicketStatus::Bumped | TicketStatus::Voided)
}

/// Whether the oracle expects a command to be accepted, where it can say so simply.
fn expected_outcome(command: &OrderCommand, order: &Order, branch: &Branch) -> Option<bool> {
    if order.is_closed() {
        return Some(false);
    }
    match command {
        OrderCommand::AddLines { lines } => Some(lines.iter().all(|l| {
            (1..=MAX_QUANTITY).contains(&l.quantity)
                && branch.item(&l.item).is_ok()
                && !branch.is_86(&l.item)
        })),
        OrderCommand::SetPriority { priority } => Some(order.priority != *priority),
        OrderCommand::MoveTo { table } => {
            Some(branch.table(table).is_ok() && *table != order.table)
        }
        OrderCommand::Fire { course, .. } => {
            let held: Vec<_> = order
                .lines
                .values()
                .filter(|l| l.status == LineStatus::Held && course.is_none_or(|c| c == l.course))
                .collect();
            Some(!held.is_empty() && held.iter().all(|l| !branch.is_86(&l.item)))
        }
        OrderCommand::Close => Some(
            order
                .lines
                .values()
                .all(|l| matches!(l.status, LineStatus::Served | LineStatus::Voided)),
        ),
        OrderCommand::Serve { lines: None } => {
            Some(order.lines.values().any(|l| l.status == LineStatus::Ready))
        }
        _ => None,
    }
}

/// Checks a change `decide` returned against the order it is about to be applied to.
fn check_change(
    order: &Order,
    change: &OrderChange,
    history: &mut History,
) -> Result<(), TestCaseError> {
    match change {
        OrderChange::LinesAdded { lines } => {
            prop_assert!(!lines.is_empty());
            for line in lines {
                prop_assert_eq!(line.id, history.last_line + 1, "line ids are dense");
                prop_assert!(!order.lines.contains_key(&line.id), "line id reused");
                prop_assert_eq!(line.status, LineStatus::Held);
                history.last_line = line.id;
            }
        }
        OrderChange::OrderReady { fire_no, lines } => {
            for id in lines {
                let line = order
                    .lines
                    .get(id)
                    .ok_or_else(|| fail(format!("order_ready names unknown line {id}")))?;
                prop_assert_ne!(
                    line.status,
                    LineStatus::Voided,
                    "ready lists voided line {}",
                    id
                );
                prop_assert_eq!(line.fire_no, Some(*fire_no));
            }
        }
        OrderChange::LinesServed { lines } => {
            prop_assert!(!lines.is_empty());
            for id in lines {
                prop_assert_eq!(order.lines[id].status, LineStatus::Ready);
            }
        }
        OrderChange::TicketBumped { ticket_id, .. } => {
            let t = order
                .ticket(ticket_id)
                .ok_or_else(|| fail("bumped an unknown ticket"))?;
            if t.kind == StationKind::Expo {
                history.expo_bumped.insert(t.fire_no);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The kitchen's invariants, which hold after every step.
fn check_invariants(
    order: &Order,
    branch: &Branch,
    history: &History,
) -> Result<(), TestCaseError> {
    for (id, line) in &order.lines {
        prop_assert_eq!(*id, line.id);
        prop_assert!(*id <= history.last_line);
        prop_assert!((1..=MAX_QUANTITY).contains(&line.quantity));
        match line.status {
            LineStatus::Held => prop_assert_eq!(line.fire_no, None),
            LineStatus::Voided => {}
            _ => prop_assert!(
                line.fire_no.is_some_and(|f| (1..=order.fires).contains(&f)),
                "line {} is {:?} with fire {:?}",
                id,
                line.status,
                line.fire_no
            ),
        }
        if matches!(line.status, LineStatus::Ready | LineStatus::Served) {
            let fire = line.fire_no.unwrap_or_default();
            prop_assert!(
                history.expo_bumped.contains(&fire),
                "line {} is {:?} but expo never sent fire {}",
                id,
                line.status,
                fire
            );
        }
    }

    let ids: BTreeSet<TicketId> = order.tickets.iter().map(|t| t.id).collect();
    prop_assert_eq!(ids.len(), order.tickets.len(), "ticket ids are unique");

    let mut by_fire: BTreeMap<u32, Vec<&Ticket>> = BTreeMap::new();
    for t in &order.tickets {
        by_fire.entry(t.fire_no).or_default().push(t);
    }
    let fires: Vec<u32> = by_fire.keys().copied().collect();
    prop_assert_eq!(
        fires,
        (1..=order.fires).collect::<Vec<_>>(),
        "fires are dense"
    );

    for t in &order.tickets {
        prop_assert!(!t.lines.is_empty(), "ticket {} has no lines", t.id);
        if t.is_live() {
            prop_assert!(
                t.lines.iter().any(|l| !l.voided),
                "live ticket {} has nothing to cook",
                t.id
            );
        }
        if t.status == TicketStatus::Started {
            prop_assert!(
                t.started_at.is_some(),
                "started ticket {} has no start time",
                t.id
            );
        }
        prop_assert_eq!(t.order_id, order.id);
        prop_assert_eq!(
            t.source,
            order.source,
            "a ticket carries its order's source"
        );
        prop_assert!(
            !(t.unseen && t.status == TicketStatus::Bumped),
            "bumped ticket {} still unseen",
            t.id
        );
        if order.priority && t.status != TicketStatus::Voided {
            prop_assert!(
                t.priority,
                "a rush order's live ticket {} is not a rush",
                t.id
            );
        }
        prop_assert_eq!(
            &t.table,
            &order.table,
            "a moved order's tickets are at its table"
        );
        prop_assert_eq!(t.ticket_no, order.ticket_no);
        let station = branch
            .station(&t.station)
            .map_err(|e| fail(format!("ticket at {}: {e}", t.station)))?;
        prop_assert_eq!(station.kind, t.kind);
        prop_assert_eq!(
            t.status == TicketStatus::Bumped,
            t.bumped_at.is_some(),
            "bumped_at of a {:?} ticket",
            t.status
        );
        if t.kind == StationKind::Expo {
            prop_assert_ne!(
                t.status,
                TicketStatus::Started,
                "expo tickets are never started"
            );
        }
        for tl in &t.lines {
            let line = order
                .lines
                .get(&tl.line_id)
                .ok_or_else(|| fail(format!("ticket line {} is not an order line", tl.line_id)))?;
            prop_assert_eq!(&tl.item, &line.item);
            prop_assert_eq!(line.fire_no, Some(t.fire_no));
            prop_assert_eq!(
                tl.voided,
                line.status == LineStatus::Voided,
                "line {} is {:?} but its line on a {} ticket says voided={}",
                line.id,
                line.status,
                t.station,
                tl.voided
            );
            if t.kind == StationKind::Cooking {
                let routed = branch
                    .item(&tl.item)
                    .map_err(|e| fail(format!("fired line {}: {e}", tl.line_id)))?;
                prop_assert!(
                    routed.stations.contains(&t.station),
                    "{} went to {}, which it is not routed to",
                    tl.item,
                    t.station
                );
            }
        }
        if t.status == TicketStatus::Voided {
            prop_assert!(
                t.lines.iter().all(|l| l.voided),
                "voided ticket with live lines"
            );
        }
    }

    for (fire, tickets) in &by_fire {
        let expos: Vec<&&Ticket> = tickets
            .iter()
            .filter(|t| t.kind == StationKind::Expo)
            .collect();
        prop_assert_eq!(
            expos.len(),
            1,
            "fire {} has {} expo tickets",
            fire,
            expos.len()
        );
        let expo = expos[0];
        prop_assert_eq!(&expo.station, branch.expo());
        let cooking: Vec<&&Ticket> = tickets
            .iter()
            .filter(|t| t.kind == StationKind::Cooking)
            .collect();
        let cooking_done = cooking.iter().all(|t| done(t));
        if expo.status == TicketStatus::Bumped {
            prop_assert!(cooking_done, "expo sent fire {} with parts cooking", fire);
        }
        if expo.is_live() {
            prop_assert_eq!(
                expo.parts_ready,
                cooking_done,
                "expo of fire {} says parts_ready={}",
                fire,
                expo.parts_ready
            );
        }
        let stations: BTreeSet<_> = cooking.iter().map(|t| &t.station).collect();
        prop_assert_eq!(stations.len(), cooking.len(), "one ticket a station a fire");

        // Every line of the fire is on the expo ticket and on a ticket of each of its stations.
        let fired: BTreeSet<LineId> = order
            .lines
            .values()
            .filter(|l| l.fire_no == Some(*fire))
            .map(|l| l.id)
            .collect();
        let on_expo: BTreeSet<LineId> = expo.lines.iter().map(|l| l.line_id).collect();
        prop_assert_eq!(&on_expo, &fired);
        for id in &fired {
            let line = &order.lines[id];
            let routed = branch
                .item(&line.item)
                .map_err(|e| fail(format!("fired line {id}: {e}")))?;
            for station in &routed.stations {
                let there = cooking
                    .iter()
                    .any(|t| &t.station == station && t.lines.iter().any(|l| l.line_id == *id));
                prop_assert!(there, "line {} never reached {}", id, station);
            }
            // The food is at the pass exactly while expo has sent it.
            if line.status != LineStatus::Voided {
                prop_assert_eq!(
                    matches!(line.status, LineStatus::Ready | LineStatus::Served),
                    expo.status == TicketStatus::Bumped,
                    "line {} is {:?} and expo of fire {} is {:?}",
                    id,
                    line.status,
                    fire,
                    expo.status
                );
            }
        }
    }
    Ok(())
}

/// Station screens fed only the changes `OrderChange::stations` routes to them, each applied
/// to the screen's own copy of the ticket, as the branch and station actors do.
#[derive(Default)]
struct Screens(BTreeMap<StationId, BTreeMap<TicketId, Ticket>>);

impl Screens {
    fn feed(&mut self, change: &OrderChange, at: DateTime<Utc>) {
        let stations: BTreeSet<&StationId> = change.stations().into_iter().collect();
        for station in stations {
            let screen = self.0.entry(station.clone()).or_default();
            match change {
                OrderChange::CourseFired { tickets, .. } => {
                    for t in tickets.iter().filter(|t| &t.station == station) {
                        screen.insert(t.id, t.clone());
                    }
                }
                OrderChange::LineVoided { tickets, .. }
                | OrderChange::PriorityChanged { tickets, .. }
                | OrderChange::OrderMoved { tickets, .. } => {
                    for r in tickets.iter().filter(|r| &r.station == station) {
                        if let Some(t) = screen.get_mut(&r.ticket_id) {
                            t.apply(change, at);
                        }
                    }
                }
                other => {
                    if let Some(t) = other.ticket_id().and_then(|id| screen.get_mut(id)) {
                        t.apply(change, at);
                    }
                }
            }
        }
    }

    /// Every screen shows the order's tickets at its station, as the order has them.
    fn check(&self, order: &Order, branch: &Branch) -> Result<(), TestCaseError> {
        for station in branch.stations() {
            let on_screen: Vec<&Ticket> = self
                .0
                .get(&station.id)
                .map(|s| s.values().collect())
                .unwrap_or_default();
            let mut in_order: Vec<&Ticket> = order
                .tickets
                .iter()
                .filter(|t| t.station == station.id)
                .collect();
            in_order.sort_by_key(|t| t.id);
            prop_assert_eq!(on_screen, in_order, "the {} screen", station.id);
        }
        Ok(())
    }
}

/// Rebuilds an order from its serialized events, as recovery does.
fn replay(journal: &[NewEvent]) -> Result<Order, TestCaseError> {
    let mut replayed: Option<Order> = None;
    for stored in journal {
        let read = StoredEvent {
            stream: "order/x".into(),
            seq: 1,
            branch: "demo".into(),
            position: 1,
            kind: stored.kind.clone(),
            body: stored.body.clone(),
            at: stored.at,
            decoded: Default::default(),
        };
        let event = rail_actors::stored::decode(&read)
            .map_err(|e| fail(format!("{} does not decode: {e}", stored.body)))?;
        prop_assert_eq!(event.kind(), stored.kind.as_str());
        let Event::Order(e) = &*event else {
            return Err(fail(format!("{} decoded as a branch event", stored.body)));
        };
        replayed
            .get_or_insert_with(|| Order::opened(e.order_id, e.table.clone(), &e.change, stored.at))
            .apply(&e.change, stored.at);
    }
    replayed.ok_or_else(|| fail("empty journal"))
}

fn record(
    journal: &mut Vec<NewEvent>,
    order: &Order,
    change: &OrderChange,
    at: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    let event = Event::Order(OrderEvent {
        order_id: order.id,
        table: order.table.clone(),
        change: change.clone(),
    });
    let new = rail_actors::stored::encode(event.clone(), at);
    // Read back as recovery reads it: from the stored body alone.
    let read = StoredEvent {
        stream: "order/x".into(),
        seq: 1,
        branch: "demo".into(),
        position: 1,
        kind: new.kind.clone(),
        body: new.body.clone(),
        at,
        decoded: Default::default(),
    };
    let decoded = rail_actors::stored::decode(&read)
        .map_err(|e| fail(format!("{} does not decode: {e}", new.body)))?;
    prop_assert_eq!(&*decoded, &event, "event survives serialization");
    journal.push(new);
    Ok(())
}

/// How the order is opened: alone, or with its first lines (and a fire) in the same command.
#[derive(Debug, Clone, Copy)]
enum Opening {
    Alone,
    WithLines,
    WithLinesFired,
}

fn run(steps: &[Step], opening: Opening, rush: bool) -> Result<(), TestCaseError> {
    let mut branch = branch();
    let start = Utc.with_ymd_and_hms(2024, 5, 17, 18, 30, 0).unwrap() + Duration::nanoseconds(987);
    let clock = |n: usize| start + Duration::nanoseconds(1_234_567_891 * n as i64);

    let opened = OrderChange::OrderOpened {
        ticket_no: 42,
        day: NaiveDate::from_ymd_opt(2024, 5, 17).unwrap(),
        guests: Some(4),
        source: Some(OrderSource::Delivery),
        external_ref: Some("YS-48213".into()),
        priority: rush,
    };
    let table = TableId::parse("t1").unwrap();
    let at = micros(clock(0));
    let id = OrderId::new();
    let mut order = Order::opened(id, table.clone(), &opened, at);
    let mut journal = Vec::new();
    let mut history = History::default();
    let mut screens = Screens::default();
    // The first step adds lines: a one-call open takes them (and fires them) itself.
    let then = match (opening, steps.first().and_then(|s| command(s, &order))) {
        (Opening::Alone, _) | (_, None) => Vec::new(),
        (Opening::WithLines, Some(add)) => vec![add],
        (Opening::WithLinesFired, Some(add)) => vec![
            add,
            OrderCommand::Fire {
                course: None,
                priority: false,
            },
        ],
    };
    let skip = usize::from(!then.is_empty());
    let timing = rail_actors::prep::Timing::default();
    let changes = Order::decide_open(id, table, opened.clone(), &then, &branch, &timing, at)
        .map_err(|e| fail(format!("a one-call open of valid lines is refused: {e}")))?;
    prop_assert_eq!(&changes[0], &opened);
    prop_assert_eq!(changes.len(), 1 + then.len(), "one change per command");
    for change in &changes {
        check_change(&order, change, &mut history)?;
        record(&mut journal, &order, change, at)?;
        order.apply(change, at);
        screens.feed(change, at);
    }
    check_invariants(&order, &branch, &history)?;

    for (n, step) in steps.iter().enumerate().skip(skip) {
        // `decide` sees the clock as it is; the journal stores microseconds, and the live
        // order applies what the journal stored.
        let now = clock(n + 1);
        let at = micros(now);
        if let Step::Toggle86(i) = step {
            let item = item(*i);
            let out = !branch.is_86(&item);
            branch.set_86(&item, out);
        }
        if let Some(command) = command(step, &order) {
            let before = order.clone();
            let expected = expected_outcome(&command, &order, &branch);
            let decided = order.decide(&command, &branch, now);
            if let Some(ok) = expected {
                prop_assert_eq!(
                    decided.is_ok(),
                    ok,
                    "{:?} gave {:?}",
                    command,
                    decided.as_ref().err()
                );
            }
            match decided {
                Ok(changes) => {
                    prop_assert!(!changes.is_empty(), "{:?} accepted with no change", command);
                    for change in &changes {
                        check_change(&order, change, &mut history)?;
                        record(&mut journal, &order, change, at)?;
                        order.apply(change, at);
                        screens.feed(change, at);
                    }
                }
                Err(_) => prop_assert_eq!(&order, &before, "a refusal changed the order"),
            }
        }
        check_invariants(&order, &branch, &history)?;
        screens.check(&order, &branch)?;
    }

    let replayed = replay(&journal)?;
    prop_assert_eq!(
        &replayed,
        &order,
        "replaying the journal rebuilds the live order"
    );
    let branch_id = rail_actors::ids::BranchId::parse("demo").unwrap();
    let saved = rail_actors::stored::encode_snapshot(&rail_actors::stored::BranchSnapshot::new(
        None,
        0,
        0,
        [&order],
    ));
    let snapshot = rail_actors::stored::decode_snapshot(&branch_id, &saved)
        .ok_or_else(|| fail("order snapshot does not round-trip"))?;
    prop_assert_eq!(
        &snapshot.orders,
        &vec![order],
        "an order snapshot survives serialization"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decided_changes_keep_the_kitchen_consistent(
        first in valid_add(),
        rest in prop::collection::vec(step(), 0..40),
    ) {
        let steps: Vec<Step> = std::iter::once(first).chain(rest).collect();
        run(&steps, Opening::Alone, false)?;
    }

    #[test]
    fn a_one_call_open_keeps_the_kitchen_consistent(
        first in valid_add(),
        rest in prop::collection::vec(step(), 0..40),
        fired in any::<bool>(),
        rush in any::<bool>(),
    ) {
        let steps: Vec<Step> = std::iter::once(first).chain(rest).collect();
        let opening = if fired { Opening::WithLinesFired } else { Opening::WithLines };
        run(&steps, opening, rush)?;
    }
}
