//! Deterministic generators of valid domain histories, for tests,
//! property tests, crash tests and the benchmark.
//!
//! A [`HistoryGenerator`] runs many customer journeys at once, interleaved
//! at random: quotes are created, configured, priced (sometimes approved),
//! proposed, signed and accepted (some are withdrawn, expire or stay in
//! draft); accepted quotes become orders through the real fulfillment policy
//! ([`domain::policy::react`]); handoffs are dispatched and observed with
//! random outcomes (success, callback, unknown then reconciliation, retries,
//! rejections, fallout); operators resolve some fallout cases (new attempt,
//! external resolution, line cancellation). Every event comes from the
//! domain's deciders, so every history is one the platform could record.
//! Same seed, same history: no clock, no OS randomness.

use std::collections::{BTreeMap, HashMap, VecDeque};

use domain::decider::{Decider, DomainEvent};
use domain::handoff::{HandoffCommand, HandoffDecider, HandoffEvent, HandoffState, RetryPolicy};
use domain::ids::{
    BillingAccountId, CustomerId, HandoffId, LineId, OrderId, QuoteId, Segment, StreamRef,
    TenantId, Timestamp,
};
use domain::order::{
    OrderCommand, OrderDecider, OrderEvent, OrderState, QuoteEvidence, Resolution,
};
use domain::outcome::{Observation, ObservationSource, OutcomeClass};
use domain::policy::{react, IssuedCommand, PolicyCommand, PolicyInput, TriggerEvent};
use domain::quote::{
    CustomerSnapshot, LinePrice, PriceResult, PriceTotals, QuoteCommand, QuoteDecider, QuoteEvent,
};
use domain::testing::fixtures;
use eventlog::{AppendRequest, ExpectedVersion, NewEvent};
use ulid::Ulid;

use crate::models::audit::CAUSATION_EVENT_ID;

/// A tiny xorshift generator (no RNG crate, fully reproducible).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next raw value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }
}

/// Where journeys start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyStart {
    /// At quote creation (the full quote-to-order flow).
    Quote,
    /// At order capture (no quote events; for fallout-heavy data sets).
    Order,
}

/// The shape of generated histories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The seed.
    pub seed: u64,
    /// Tenants journeys are spread over (`tenant-0` …).
    pub tenants: usize,
    /// Journeys in progress at once (how interleaved the log is).
    pub concurrent_journeys: usize,
    /// Where journeys start.
    pub start: JourneyStart,
    /// Most lines per quote/order (at least 1).
    pub max_lines: u32,
    /// Percent of first observations that end in a rejection or fallout.
    pub fallout_percent: u32,
    /// Percent of fallout cases an operator resolves.
    pub resolve_percent: u32,
    /// Percent of quotes withdrawn, expired or left in draft.
    pub abandon_percent: u32,
}

impl Default for HistoryConfig {
    /// Quote-to-order journeys over 8 tenants, 64 at a time, up to 3 lines,
    /// 10 % fallout, 60 % of it resolved, 15 % of quotes abandoned.
    fn default() -> Self {
        Self {
            seed: 1,
            tenants: 8,
            concurrent_journeys: 64,
            start: JourneyStart::Quote,
            max_lines: 3,
            fallout_percent: 10,
            resolve_percent: 60,
            abandon_percent: 15,
        }
    }
}

impl HistoryConfig {
    /// A fallout-heavy history for one tenant (`tenant-0`): journeys start
    /// at order capture, every line's first handoff falls out, none is
    /// resolved; for benchmarks of the fallout queue.
    pub fn fallout_heavy(seed: u64) -> Self {
        Self {
            seed,
            tenants: 1,
            concurrent_journeys: 32,
            start: JourneyStart::Order,
            max_lines: 4,
            fallout_percent: 100,
            resolve_percent: 0,
            abandon_percent: 0,
        }
    }
}

/// One append the generator produced: events for one stream.
#[derive(Debug, Clone)]
pub struct GeneratedAppend {
    /// The stream.
    pub stream_id: String,
    /// The events, in order, with ids, tenant, correlation and causation set.
    pub events: Vec<NewEvent>,
}

impl GeneratedAppend {
    /// The append request (expected version `Any`: the generator already
    /// decided against the stream's state).
    pub fn request(self) -> AppendRequest {
        AppendRequest::new(self.stream_id, ExpectedVersion::Any, self.events)
    }
}

enum Action {
    Quote(QuoteCommand),
    Policy {
        trigger: String,
        command: PolicyCommand,
    },
    Dispatch(HandoffId),
    Observe(HandoffId, OutcomeClass, ObservationSource),
    Resolve(OrderId, LineId),
}

struct Journey {
    id: u64,
    tenant: TenantId,
    correlation: String,
    clock: i64,
    quote_id: QuoteId,
    quote: <QuoteDecider as Decider>::State,
    orders: HashMap<String, OrderState>,
    handoffs: HashMap<String, HandoffState>,
    queue: VecDeque<Action>,
    commands: u64,
}

/// An endless, deterministic stream of valid appends.
pub struct HistoryGenerator {
    config: HistoryConfig,
    rng: Rng,
    journeys: Vec<Journey>,
    next_journey: u64,
    next_event: u64,
    ready: VecDeque<GeneratedAppend>,
    /// Every capability on: milestones are notified.
    capabilities: domain::capability::Capabilities,
}

impl std::fmt::Debug for HistoryGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryGenerator")
            .field("config", &self.config)
            .field("journeys", &self.next_journey)
            .finish()
    }
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn retry_policy() -> RetryPolicy {
    fixtures::retry_policy()
}

impl HistoryGenerator {
    /// A generator for `config`.
    pub fn new(config: HistoryConfig) -> Self {
        Self {
            rng: Rng::new(config.seed),
            config,
            journeys: Vec::new(),
            next_journey: 0,
            next_event: 0,
            ready: VecDeque::new(),
            capabilities: domain::capability::Capabilities::all(),
        }
    }

    /// The tenant ids journeys are spread over.
    pub fn tenants(&self) -> Vec<TenantId> {
        (0..self.config.tenants.max(1))
            .map(|i| TenantId::new(format!("tenant-{i}")))
            .collect()
    }

    /// Appends whose events add up to at least `events` events.
    pub fn take_events(&mut self, events: u64) -> Vec<GeneratedAppend> {
        let mut out = Vec::new();
        let mut n = 0u64;
        while n < events {
            let Some(a) = self.next() else { break };
            n += a.events.len() as u64;
            out.push(a);
        }
        out
    }

    fn start_journey(&mut self) -> Journey {
        let id = self.next_journey;
        self.next_journey += 1;
        let tenants = u64::try_from(self.config.tenants.max(1)).unwrap_or(1);
        let tenant = TenantId::new(format!("tenant-{}", self.rng.below(tenants)));
        let clock = fixtures::T0.0 + i64::try_from(id).unwrap_or(0) * 2_000;
        let quote_id = QuoteId::new(format!("q{}-{id}", self.config.seed));
        let mut j = Journey {
            id,
            tenant: tenant.clone(),
            correlation: format!("corr-{}-{id}", self.config.seed),
            clock,
            quote_id: quote_id.clone(),
            quote: QuoteDecider::initial(),
            orders: HashMap::new(),
            handoffs: HashMap::new(),
            queue: VecDeque::new(),
            commands: 0,
        };
        let lines =
            1 + u32::try_from(self.rng.below(u64::from(self.config.max_lines.max(1)))).unwrap_or(0);
        let line_ids: Vec<String> = (1..=lines).map(|i| format!("l{i}")).collect();
        let customer = CustomerSnapshot {
            customer_id: CustomerId::new(format!("c{}", self.rng.below(500))),
            name: format!("Customer {id}"),
            segment: Segment::new(if self.rng.chance(50) {
                "smb"
            } else {
                "enterprise"
            }),
            authority_reference: "crm-rev-1".to_owned(),
            taken_at: Timestamp(clock),
        };
        match self.config.start {
            JourneyStart::Order => {
                let order_id = OrderId::new(format!("o{}-{id}", self.config.seed));
                let command = OrderCommand::Capture {
                    order_id: order_id.clone(),
                    tenant_id: tenant,
                    evidence: QuoteEvidence {
                        quote_id,
                        revision: 1,
                        price_input_hash: "price-input-r1".to_owned(),
                        signed_artifact_hash: "art".to_owned(),
                    },
                    customer_id: customer.customer_id,
                    billing_account: BillingAccountId::new("ba-1"),
                    lines: line_ids
                        .iter()
                        .map(|l| fixtures::accepted_line(l))
                        .collect(),
                    at: Timestamp(clock),
                };
                j.queue.push_back(Action::Policy {
                    trigger: String::new(),
                    command: PolicyCommand {
                        command_id: format!("cmd-capture-{id}"),
                        action: "capture".to_owned(),
                        stream_id: domain::ids::order_stream(&order_id),
                        command: IssuedCommand::Order(command),
                    },
                });
            }
            JourneyStart::Quote => {
                let t = Timestamp(clock);
                j.queue.push_back(Action::Quote(QuoteCommand::Create {
                    quote_id,
                    tenant_id: tenant,
                    customer,
                    catalog_version: "catalog-2024.06".to_owned(),
                    customer_suspension: None,
                    catalog: domain::catalog::VersionStanding::Unmanaged,
                    at: t,
                }));
                for l in &line_ids {
                    j.queue.push_back(Action::Quote(QuoteCommand::AddLine {
                        line: fixtures::line(l),
                        at: t,
                    }));
                }
                let abandon = self.rng.chance(self.config.abandon_percent);
                let how = self.rng.below(3);
                if abandon && how == 0 {
                    return j; // left in draft
                }
                let discount = if self.rng.chance(25) { 20 } else { 5 };
                j.queue.push_back(Action::Quote(QuoteCommand::Price {
                    price: price(&line_ids, discount, clock),
                    policy: fixtures::approval_policy(),
                    at: t,
                }));
                if abandon {
                    j.queue.push_back(Action::Quote(if how == 1 {
                        QuoteCommand::Withdraw {
                            reason: "customer went elsewhere".to_owned(),
                            at: t,
                        }
                    } else {
                        // Once the price's validity has ended.
                        QuoteCommand::Expire {
                            at: t.plus_millis(366 * DAY_MS),
                        }
                    }));
                    return j;
                }
                let hash = format!("art-{id}");
                j.queue
                    .push_back(Action::Quote(QuoteCommand::RecordProposal {
                        revision: 1,
                        artifact: fixtures::proposal(&hash),
                        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
                        at: t,
                    }));
                j.queue
                    .push_back(Action::Quote(QuoteCommand::RecordSignature {
                        revision: 1,
                        signature: fixtures::signature(&hash),
                        at: t,
                    }));
                j.queue.push_back(Action::Quote(QuoteCommand::Accept {
                    billing_account: BillingAccountId::new("ba-1"),
                    price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
                    capabilities: domain::capability::Capabilities::all(),
                    at: t,
                }));
            }
        }
        j
    }

    fn event_id(&mut self) -> Ulid {
        self.next_event += 1;
        Ulid((u128::from(self.config.seed) << 64) | u128::from(self.next_event))
    }

    /// Runs the next action of journey `idx`; `false` when it has none left.
    fn step(&mut self, idx: usize) -> bool {
        loop {
            let Some(action) = self.journeys[idx].queue.pop_front() else {
                return false;
            };
            let advance = 1_000 + i64::try_from(self.rng.below(59_000)).unwrap_or(0);
            self.journeys[idx].clock += advance;
            if self.run(idx, action) {
                return true;
            }
        }
    }

    fn new_events<E: serde::Serialize + DomainEvent>(
        &mut self,
        idx: usize,
        events: &[E],
        command_id: &str,
        trigger: Option<&str>,
    ) -> (Vec<NewEvent>, Vec<String>) {
        let mut out = Vec::new();
        let mut ids = Vec::new();
        for e in events {
            let id = self.event_id();
            let j = &self.journeys[idx];
            let payload = eventlog::encode_payload(e).unwrap_or_default();
            let mut ev = NewEvent::new(e.event_type(), j.tenant.as_str(), &j.correlation, payload)
                .caused_by(command_id);
            ev.event_id = Some(id);
            ev.schema_version = e.schema_version();
            if let Some(t) = trigger.filter(|t| !t.is_empty()) {
                ev.metadata = BTreeMap::from([(CAUSATION_EVENT_ID.to_owned(), t.to_owned())]);
            }
            ids.push(id.to_string());
            out.push(ev);
        }
        (out, ids)
    }

    fn command_id(&mut self, idx: usize) -> String {
        let j = &mut self.journeys[idx];
        j.commands += 1;
        format!("cmd-{}-{}-{}", self.config.seed, j.id, j.commands)
    }

    fn run(&mut self, idx: usize, action: Action) -> bool {
        let now = Timestamp(self.journeys[idx].clock);
        match action {
            Action::Quote(command) => {
                let Ok(events) = QuoteDecider::decide(&self.journeys[idx].quote, &command) else {
                    return false;
                };
                if events.is_empty() {
                    return false;
                }
                let stream = domain::ids::quote_stream(&self.journeys[idx].quote_id);
                let command_id = self.command_id(idx);
                let (new, ids) = self.new_events(idx, &events, &command_id, None);
                let j = &mut self.journeys[idx];
                j.quote = events.iter().fold(
                    std::mem::replace(&mut j.quote, QuoteDecider::initial()),
                    QuoteDecider::evolve,
                );
                for (e, id) in events.iter().zip(&ids) {
                    if let QuoteEvent::ApprovalRequired { .. } = e {
                        // Approve most; refuse some (the journey then ends).
                        if self.rng.chance(90) {
                            self.journeys[idx].queue.push_front(Action::Quote(
                                QuoteCommand::Approve {
                                    approver: "manager-1".to_owned(),
                                    at: now,
                                },
                            ));
                        } else {
                            self.journeys[idx].queue.clear();
                            self.journeys[idx].queue.push_front(Action::Quote(
                                QuoteCommand::RejectApproval {
                                    approver: "manager-1".to_owned(),
                                    reason: "discount too deep".to_owned(),
                                    at: now,
                                },
                            ));
                        }
                    }
                    self.react(idx, id, &stream, TriggerEvent::Quote(e));
                }
                self.ready.push_back(GeneratedAppend {
                    stream_id: stream,
                    events: new,
                });
                true
            }
            Action::Policy { trigger, command } => match command.command {
                IssuedCommand::Order(cmd) => {
                    let state = self.journeys[idx]
                        .orders
                        .get(&command.stream_id)
                        .cloned()
                        .unwrap_or(OrderState::Empty);
                    let Ok(events) = OrderDecider::decide(&state, &cmd) else {
                        return false;
                    };
                    if events.is_empty() {
                        return false;
                    }
                    let (new, ids) =
                        self.new_events(idx, &events, &command.command_id, Some(&trigger));
                    let next = events.iter().fold(state, OrderDecider::evolve);
                    self.journeys[idx]
                        .orders
                        .insert(command.stream_id.clone(), next);
                    for (e, id) in events.iter().zip(&ids) {
                        if let OrderEvent::LineFalloutRaised { line_id, .. } = e {
                            if self.rng.chance(self.config.resolve_percent) {
                                if let Ok(StreamRef::Order(order_id)) =
                                    StreamRef::parse(&command.stream_id)
                                {
                                    self.journeys[idx]
                                        .queue
                                        .push_back(Action::Resolve(order_id, line_id.clone()));
                                }
                            }
                        }
                        self.react(idx, id, &command.stream_id, TriggerEvent::Order(e));
                    }
                    self.ready.push_back(GeneratedAppend {
                        stream_id: command.stream_id,
                        events: new,
                    });
                    true
                }
                IssuedCommand::Handoff(cmd) => self.handoff(
                    idx,
                    &command.stream_id,
                    &cmd,
                    &command.command_id,
                    Some(&trigger),
                ),
            },
            Action::Dispatch(h) => {
                let stream = domain::ids::handoff_stream(&h);
                let due = match self.journeys[idx].handoffs.get(&stream) {
                    Some(HandoffState::Open(o)) => match o.status {
                        domain::handoff::HandoffStatus::RetryScheduled { due_at } => due_at.0,
                        _ => 0,
                    },
                    _ => 0,
                };
                let j = &mut self.journeys[idx];
                j.clock = j.clock.max(due);
                let cmd = HandoffCommand::RecordDispatch {
                    at: Timestamp(j.clock),
                };
                let command_id = self.command_id(idx);
                self.handoff(idx, &stream, &cmd, &command_id, None)
            }
            Action::Observe(h, class, source) => {
                let stream = domain::ids::handoff_stream(&h);
                let attempt = match self.journeys[idx].handoffs.get(&stream) {
                    Some(HandoffState::Open(o)) => o.subject.attempt,
                    _ => return false,
                };
                let code = match class {
                    OutcomeClass::Succeeded | OutcomeClass::Accepted => "200",
                    OutcomeClass::BusinessRejected => "ERR-BIZ-17",
                    OutcomeClass::ValidationRejected => "422",
                    OutcomeClass::Unknown => "TIMEOUT",
                    OutcomeClass::TechnicalRetryable => "503",
                    OutcomeClass::SecurityConfiguration => "401",
                    OutcomeClass::SchemaMismatch => "BAD-SHAPE",
                    OutcomeClass::DuplicateConflict => "409",
                    _ => "E999",
                };
                let cmd = HandoffCommand::Observe {
                    observation: Observation {
                        handoff_id: h,
                        attempt,
                        class,
                        raw_code: Some(code.to_owned()),
                        raw_label: Some(format!("{class:?} from target")),
                        external_reference: Some(format!("ext-{}", self.next_event)),
                        observed_at: now,
                        source,
                    },
                    retry_policy: retry_policy(),
                };
                let command_id = self.command_id(idx);
                self.handoff(idx, &stream, &cmd, &command_id, None)
            }
            Action::Resolve(order_id, line_id) => {
                let resolution = match self.rng.below(10) {
                    0..=3 => Resolution::NewAttempt,
                    4..=7 => Resolution::ResolvedExternally {
                        reference: format!("manual-{}", self.next_event),
                        note: "checked in the target's console".to_owned(),
                    },
                    _ => Resolution::CancelLine {
                        reason: "customer agreed to drop the line".to_owned(),
                    },
                };
                let cmd = OrderCommand::ResolveFallout {
                    line_id,
                    resolution,
                    operator: "ops-1".to_owned(),
                    at: now,
                };
                let command_id = self.command_id(idx);
                self.run(
                    idx,
                    Action::Policy {
                        trigger: String::new(),
                        command: PolicyCommand {
                            command_id,
                            action: "operator".to_owned(),
                            stream_id: domain::ids::order_stream(&order_id),
                            command: IssuedCommand::Order(cmd),
                        },
                    },
                )
            }
        }
    }

    fn handoff(
        &mut self,
        idx: usize,
        stream: &str,
        cmd: &HandoffCommand,
        command_id: &str,
        trigger: Option<&str>,
    ) -> bool {
        let Ok(StreamRef::Handoff(id)) = StreamRef::parse(stream) else {
            return false;
        };
        let state = self.journeys[idx]
            .handoffs
            .get(stream)
            .cloned()
            .unwrap_or(HandoffState::Empty);
        let Ok(events) = HandoffDecider::decide(&state, cmd) else {
            return false;
        };
        if events.is_empty() {
            return false;
        }
        let (new, ids) = self.new_events(idx, &events, command_id, trigger);
        let next = events.iter().fold(state, HandoffDecider::evolve);
        let forward = matches!(&next, HandoffState::Open(h) if domain::order::Step::of_purpose(h.subject.purpose).is_some());
        self.journeys[idx].handoffs.insert(stream.to_owned(), next);
        for (e, eid) in events.iter().zip(&ids) {
            let follow = match e {
                HandoffEvent::HandoffRequested { .. } => Some(Action::Dispatch(id.clone())),
                HandoffEvent::HandoffSent { .. } => Some(Action::Observe(
                    id.clone(),
                    self.first_outcome(forward),
                    ObservationSource::Dispatch,
                )),
                HandoffEvent::HandoffAccepted { .. } => Some(Action::Observe(
                    id.clone(),
                    OutcomeClass::Succeeded,
                    ObservationSource::Callback,
                )),
                HandoffEvent::HandoffOutcomeUnknown { .. } => {
                    let class = if self.rng.chance(80) {
                        OutcomeClass::Succeeded
                    } else {
                        OutcomeClass::BusinessRejected
                    };
                    Some(Action::Observe(
                        id.clone(),
                        class,
                        ObservationSource::Reconciliation,
                    ))
                }
                HandoffEvent::HandoffRetryScheduled { .. } => Some(Action::Dispatch(id.clone())),
                _ => None,
            };
            if let Some(f) = follow {
                // Leave room for other journeys' events between the steps.
                self.journeys[idx].queue.push_back(f);
            }
            self.react(idx, eid, stream, TriggerEvent::Handoff(e));
        }
        self.ready.push_back(GeneratedAppend {
            stream_id: stream.to_owned(),
            events: new,
        });
        true
    }

    fn first_outcome(&mut self, forward: bool) -> OutcomeClass {
        if forward && self.rng.chance(self.config.fallout_percent) {
            return match self.rng.below(6) {
                0 | 1 => OutcomeClass::BusinessRejected,
                2 => OutcomeClass::ValidationRejected,
                3 => OutcomeClass::SchemaMismatch,
                4 => OutcomeClass::SecurityConfiguration,
                _ => OutcomeClass::Unclassified,
            };
        }
        match self.rng.below(100) {
            0..=79 => OutcomeClass::Succeeded,
            80..=89 => OutcomeClass::Accepted,
            90..=94 => OutcomeClass::Unknown,
            _ => OutcomeClass::TechnicalRetryable,
        }
    }

    fn react(&mut self, idx: usize, event_id: &str, stream: &str, event: TriggerEvent<'_>) {
        let input = PolicyInput {
            event_id,
            stream_id: stream,
            recorded_at: Timestamp(self.journeys[idx].clock),
            event,
            capabilities: &self.capabilities,
        };
        for command in react(&input) {
            self.journeys[idx].queue.push_back(Action::Policy {
                trigger: event_id.to_owned(),
                command,
            });
        }
    }
}

fn price(lines: &[String], discount: i64, now: i64) -> PriceResult {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut p = fixtures::price(1, &refs, fixtures::percent(discount));
    p.valid_from = Timestamp(now);
    p.valid_until = Timestamp(now).plus_millis(365 * DAY_MS);
    p.lines = lines
        .iter()
        .map(|l| LinePrice {
            line_id: LineId::new(l.clone()),
            components: fixtures::charges(),
        })
        .collect();
    let count = i64::try_from(lines.len()).unwrap_or(1);
    p.totals = PriceTotals {
        one_time: fixtures::eur(9_900 * count),
        recurring_monthly: fixtures::eur(4_990 * count),
    };
    p
}

impl Iterator for HistoryGenerator {
    type Item = GeneratedAppend;

    /// The next append; never `None`.
    fn next(&mut self) -> Option<GeneratedAppend> {
        loop {
            if let Some(a) = self.ready.pop_front() {
                return Some(a);
            }
            while self.journeys.len() < self.config.concurrent_journeys.max(1) {
                let j = self.start_journey();
                self.journeys.push(j);
            }
            let n = u64::try_from(self.journeys.len()).unwrap_or(1);
            let idx = usize::try_from(self.rng.below(n)).unwrap_or(0);
            if !self.step(idx) {
                self.journeys.swap_remove(idx);
            }
        }
    }
}
