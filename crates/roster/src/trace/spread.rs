//! How one change spread: from the lines of many event logs, which list learned it when and from whom, put in
//! an order that respects causality.
//!
//! Every machine stamps its lines by its own clock, so timestamps from two machines do not compare. What does
//! compare is causality: a list that learned the news from `m2` learned it after `m2` did. The spread is a tree
//! (each list names the one member it heard from), and [`Spread::of`] walks it from the lists that learned the
//! change first-hand, correcting each list's clock by as much as its line is stamped before its sender's (which
//! only a clock behind its sender's can produce; such lines are flagged). Every sender-to-receiver pair in the
//! logs also bounds how far two clocks can be apart ([`Skew`]).
//!
//! A failure mostly travels as a suspicion: most lists hear that a member is suspected, and mark it failed when
//! their own suspicion times out (or when another list's word of the failure comes first). The tie to follow
//! is the one by which the news first reached a list, the suspicion's sender, so the tree of a failure goes
//! back to the list whose own probe went unanswered.
//!
//! This module reads records and computes; it prints nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use roster_eventlog::{Kind, Record};
use serde::Serialize;

/// What to trace.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub member: String,
    /// The kind of change; by default the member's failure, else its leave, its suspicion or its join.
    pub kind: Option<Kind>,
    /// Only the instance that started at this time (Unix milliseconds).
    pub joined_at_ms: Option<u64>,
    /// Only the change at this incarnation.
    pub incarnation: Option<u32>,
}

/// The kinds tried, in order, when the query names none.
const DEFAULT_KINDS: [Kind; 4] = [Kind::Failed, Kind::Leave, Kind::Suspect, Kind::Join];

/// Why there is nothing to trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("the logs hold no lines")]
    Empty,
    #[error(
        "no line in these logs ({lines} lines from {lists} lists) is about {member}; they name: {named}"
    )]
    UnknownMember {
        member: String,
        lines: usize,
        lists: usize,
        named: String,
    },
    #[error("{member} has no {wanted} line in these logs; its lines are: {has}")]
    NoSuchChange {
        member: String,
        wanted: String,
        has: String,
    },
    #[error(
        "`sent` lines are not a change of their own: they show who passed a failure on; trace --event failed"
    )]
    NotAChange,
}

/// One list learning the change.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    /// The node whose list it is.
    pub node: String,
    /// The line's own stamp, by that node's clock (Unix milliseconds).
    pub time_ms: u64,
    /// The stamp corrected for causality: moved later by as much as this list's clock must be behind its
    /// sender's for the lines to make sense (see [`Hop::before_sender_ms`]).
    pub causal_ms: u64,
    pub via: Option<String>,
    /// Who told it, as its line says.
    pub from: Option<String>,
    /// For a failure: how this list came to suspect the member first, if it did before the failure.
    pub suspected: Option<Suspected>,
    /// The index of the hop of the member that told it, when that member's log is among those read.
    pub parent: Option<usize>,
    /// Hops from the nearest first-hand list (0 for one).
    pub depth: usize,
    /// How much earlier than its sender's line this list's line is stamped (for a suspicion, its suspect
    /// line against its sender's): this list's clock is behind its sender's by at least this, and its times
    /// here are moved later by as much.
    pub before_sender_ms: Option<u64>,
    /// The members this node told (its `sent` lines for the change).
    pub told: Vec<String>,
    pub incarnation: u32,
}

/// How a list came to suspect a member before it marked it failed.
#[derive(Clone, Debug, Serialize)]
pub struct Suspected {
    /// The suspect line's stamp, by this list's clock.
    pub time_ms: u64,
    /// The stamp with this list's clock correction (see [`Hop::causal_ms`]).
    pub causal_ms: u64,
    pub via: Option<String>,
    pub from: Option<String>,
}

impl Hop {
    /// The member whose news first reached this list: the sender of the suspicion that came before the
    /// change, or else of the change.
    pub fn told_by(&self) -> Option<&str> {
        match &self.suspected {
            Some(s) => s.from.as_deref(),
            None => self.from.as_deref(),
        }
    }

    /// When the news first reached this list, corrected: its suspicion's time for a failure that came as
    /// one, else the change's.
    pub fn arrival_ms(&self) -> u64 {
        self.suspected
            .as_ref()
            .map_or(self.causal_ms, |s| s.causal_ms.min(self.causal_ms))
    }

    /// Learned it by itself (its own probe, or the member's own word), not told.
    pub fn first_hand(&self) -> bool {
        let own = |via: Option<&str>| {
            matches!(
                via,
                None | Some(
                    "probe" | "indirect-probe" | "suspicion-timeout" | "self" | "force-leave"
                )
            )
        };
        self.told_by().is_none()
            && match &self.suspected {
                Some(s) => own(s.via.as_deref()),
                None => own(self.via.as_deref()),
            }
    }
}

/// What the sender-to-receiver pairs in all the logs say about two clocks: `a`'s clock minus `b`'s lies
/// within `[at_least_ms, at_most_ms]` (either bound may be unknown).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Skew {
    pub a: String,
    pub b: String,
    pub at_least_ms: Option<i64>,
    pub at_most_ms: Option<i64>,
    /// How many pairs of lines the bounds come from.
    pub evidence: usize,
}

impl Skew {
    /// Whether the lines prove the two clocks apart (not merely allow it).
    pub fn proven(&self) -> bool {
        self.at_least_ms.is_some_and(|lo| lo > 0) || self.at_most_ms.is_some_and(|hi| hi < 0)
    }
}

/// Another change of the same kind about the member, which `--joined-at` / `--incarnation` would pick.
#[derive(Clone, Debug, Serialize)]
pub struct Other {
    pub joined_at_ms: u64,
    pub incarnation: Option<u32>,
    pub lists: usize,
}

/// The spread of one change.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    pub member: String,
    pub kind: Kind,
    pub addr: String,
    pub joined_at_ms: u64,
    /// Set when the change is one incarnation's (suspect, alive, update).
    pub incarnation: Option<u32>,
    /// By corrected time ([`Hop::causal_ms`]).
    pub hops: Vec<Hop>,
    /// Lists in the logs that never logged the change.
    pub unheard: Vec<String>,
    /// Senders named by a line whose own log is not among those read.
    pub missing_logs: Vec<String>,
    /// Every list in the logs.
    pub lists: Vec<String>,
    /// For a failure: the first list to suspect the instance first-hand, and its stamp.
    pub first_suspect: Option<(String, u64)>,
    pub others: Vec<Other>,
    /// Pairs of clocks the logs prove apart, largest first.
    pub skew: Vec<Skew>,
}

/// Whether changes of this kind are told apart by incarnation as well as by instance.
fn per_incarnation(kind: Kind) -> bool {
    matches!(kind, Kind::Suspect | Kind::Alive | Kind::Update)
}

fn names(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Spread {
    /// Traces `query` through `records` (the lines of every log, in any order).
    pub fn of(records: &[Record], query: &Query) -> Result<Spread, TraceError> {
        if records.is_empty() {
            return Err(TraceError::Empty);
        }
        if query.kind == Some(Kind::Sent) {
            return Err(TraceError::NotAChange);
        }
        let lists: BTreeSet<&str> = records.iter().map(|r| r.node.as_str()).collect();
        let about: Vec<&Record> = records
            .iter()
            .filter(|r| r.member == query.member)
            .collect();
        if about.is_empty() {
            let mut named: BTreeSet<&str> = records.iter().map(|r| r.member.as_str()).collect();
            let total = named.len();
            let mut shown: Vec<&str> = std::mem::take(&mut named).into_iter().take(20).collect();
            if total > shown.len() {
                shown.push("...");
            }
            return Err(TraceError::UnknownMember {
                member: query.member.clone(),
                lines: records.len(),
                lists: lists.len(),
                named: shown.join(", "),
            });
        }
        let has = |kind: Kind| about.iter().any(|r| r.kind == kind);
        let kind = match query.kind {
            Some(kind) => kind,
            None => DEFAULT_KINDS
                .into_iter()
                .find(|&k| has(k))
                .unwrap_or(Kind::Join),
        };
        // Group the member's lines of that kind into changes: one per instance, or per instance and
        // incarnation for the kinds an instance goes through more than once.
        let key = |r: &Record| {
            (
                r.joined_at_ms,
                per_incarnation(kind).then_some(r.incarnation),
            )
        };
        let mut changes: BTreeMap<(u64, Option<u32>), Vec<&Record>> = BTreeMap::new();
        for r in about.iter().filter(|r| r.kind == kind) {
            if query.joined_at_ms.is_some_and(|j| j != r.joined_at_ms)
                || query.incarnation.is_some_and(|i| i != r.incarnation)
            {
                continue;
            }
            changes.entry(key(r)).or_default().push(r);
        }
        // The earliest change by any stamp: clocks differ, but changes of one kind are usually far apart.
        let Some((&chosen, _)) = changes
            .iter()
            .min_by_key(|(_, lines)| lines.iter().map(|r| r.time_ms).min())
        else {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for r in &about {
                *counts.entry(r.kind.to_string()).or_default() += 1;
            }
            let mut wanted = kind.to_string();
            if query.joined_at_ms.is_some() || query.incarnation.is_some() {
                wanted.push_str(" line for that instance or incarnation");
            }
            return Err(TraceError::NoSuchChange {
                member: query.member.clone(),
                wanted,
                has: names(&counts),
            });
        };
        let others = changes
            .iter()
            .filter(|(k, _)| **k != chosen)
            .map(|(&(joined_at_ms, incarnation), lines)| Other {
                joined_at_ms,
                incarnation,
                lists: lines.iter().map(|r| &r.node).collect::<BTreeSet<_>>().len(),
            })
            .collect();
        let lines = &changes[&chosen];

        // Each list's first line of the change is when it learned it.
        let mut first: BTreeMap<&str, &Record> = BTreeMap::new();
        for r in lines {
            let slot = first.entry(r.node.as_str()).or_insert(r);
            if r.time_ms < slot.time_ms {
                *slot = r;
            }
        }
        let mut told: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        if kind == Kind::Failed {
            for r in about.iter().filter(|r| {
                r.kind == Kind::Sent
                    && r.joined_at_ms == chosen.0
                    && first.contains_key(r.node.as_str())
            }) {
                told.entry(r.node.as_str())
                    .or_default()
                    .extend(r.to.iter().map(String::as_str));
            }
        }
        // A failure travels first as a suspicion: a list's first suspect line of the instance, before its
        // failure, says how the news first reached it (and a list whose own probe raised the suspicion is a
        // detector, even if another list's word that the member failed reached it before its own timer ran
        // out).
        let mut suspected: BTreeMap<&str, &Record> = BTreeMap::new();
        if kind == Kind::Failed {
            for r in about
                .iter()
                .filter(|r| r.kind == Kind::Suspect && r.joined_at_ms == chosen.0)
            {
                let Some(failed) = first.get(r.node.as_str()) else {
                    continue;
                };
                if r.time_ms > failed.time_ms {
                    continue;
                }
                let slot = suspected.entry(r.node.as_str()).or_insert(r);
                if r.time_ms < slot.time_ms {
                    *slot = r;
                }
            }
        }
        let hops = causal_order(&first, &suspected, &told);
        let missing_logs: BTreeSet<String> = hops
            .iter()
            .filter(|h| h.parent.is_none())
            .filter_map(|h| h.told_by().map(str::to_owned))
            .collect();
        let unheard = lists
            .iter()
            .filter(|n| !first.contains_key(**n) && **n != query.member)
            .map(|n| n.to_string())
            .collect();
        let first_suspect = (kind == Kind::Failed)
            .then(|| {
                about
                    .iter()
                    .filter(|r| {
                        r.kind == Kind::Suspect && r.joined_at_ms == chosen.0 && r.is_first_hand()
                    })
                    .min_by_key(|r| r.time_ms)
                    .map(|r| (r.node.clone(), r.time_ms))
            })
            .flatten();
        let sample = lines[0];
        Ok(Spread {
            member: query.member.clone(),
            kind,
            addr: sample.addr.clone(),
            joined_at_ms: chosen.0,
            incarnation: chosen.1,
            hops,
            unheard,
            missing_logs: missing_logs.into_iter().collect(),
            lists: lists.iter().map(|n| n.to_string()).collect(),
            first_suspect,
            others,
            skew: skew(records),
        })
    }

    /// The first list to learn it first-hand (by corrected time; independent detectors compare only by their
    /// own clocks).
    pub fn first_detector(&self) -> Option<&Hop> {
        self.hops.iter().find(|h| h.first_hand())
    }

    /// The list that learned it last, by causal time.
    pub fn last_to_hear(&self) -> Option<&Hop> {
        self.hops.iter().max_by_key(|h| (h.causal_ms, h.depth))
    }

    /// The corrected time the spread started at: the first hop's, or the first suspicion's for a failure.
    pub fn start_ms(&self) -> u64 {
        self.hops.iter().map(Hop::arrival_ms).min().unwrap_or(0)
    }

    /// The hops whose parent is `parent` (`None`: the roots), in the order the news reached them.
    pub fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + use<'_> {
        let mut found: Vec<usize> = (0..self.hops.len())
            .filter(|&i| self.hops[i].parent == parent)
            .collect();
        found.sort_by_key(|&i| (self.hops[i].arrival_ms(), i));
        found.into_iter()
    }
}

/// Builds the hops and orders them by corrected time. Each list's clock is corrected along the tree, from the
/// first-hand lists down: a list whose line is stamped before the line of the member that told it has a clock
/// behind that member's (corrected) clock by at least the gap, and all its times move later by as much.
fn causal_order(
    first: &BTreeMap<&str, &Record>,
    suspected: &BTreeMap<&str, &Record>,
    told: &HashMap<&str, BTreeSet<&str>>,
) -> Vec<Hop> {
    let nodes: Vec<&str> = first.keys().copied().collect();
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    // Who told each list, and which pair of stamps that tie compares: the change itself, or the suspicion.
    let tie: Vec<Option<(usize, bool)>> = nodes
        .iter()
        .map(|n| {
            let line = first[n];
            let (from, by_suspicion) = match suspected.get(n) {
                Some(s) => (s.from.as_deref()?, true),
                None => (line.from.as_deref()?, false),
            };
            let p = *index.get(from)?;
            (nodes[p] != *n).then_some((p, by_suspicion))
        })
        .collect();
    // A loop (impossible in honest logs, possible in logs of two separate runs mixed together) is cut where
    // it closes.
    let n = nodes.len();
    let mut parent: Vec<Option<usize>> = tie.iter().map(|t| t.map(|(p, _)| p)).collect();
    for start in 0..n {
        let mut seen = vec![false; n];
        let mut at = start;
        seen[at] = true;
        while let Some(p) = parent[at] {
            if seen[p] {
                parent[at] = None;
                break;
            }
            seen[p] = true;
            at = p;
        }
    }
    let anchor = |i: usize, by_suspicion: bool| -> Option<u64> {
        if by_suspicion {
            suspected.get(nodes[i]).map(|r| r.time_ms)
        } else {
            Some(first[nodes[i]].time_ms)
        }
    };
    // Each list's clock correction and depth, parents before children.
    let mut shift: Vec<Option<u64>> = vec![None; n];
    let mut depth = vec![0usize; n];
    for start in 0..n {
        let mut chain = vec![start];
        while let Some(p) = parent[*chain.last().expect("never empty")] {
            if shift[p].is_some() || chain.len() > n {
                break;
            }
            chain.push(p);
        }
        for &i in chain.iter().rev() {
            if shift[i].is_some() {
                continue;
            }
            let (s, d) = match (parent[i], tie[i]) {
                (Some(p), Some((_, by_suspicion))) => {
                    let theirs = anchor(p, by_suspicion).map(|t| t + shift[p].unwrap_or(0));
                    let ours = anchor(i, by_suspicion);
                    let gap = match (theirs, ours) {
                        (Some(theirs), Some(ours)) => theirs.saturating_sub(ours),
                        _ => 0,
                    };
                    (gap, depth[p] + 1)
                }
                _ => (0, 0),
            };
            shift[i] = Some(s);
            depth[i] = d;
        }
    }
    let causal = |i: usize| first[nodes[i]].time_ms + shift[i].unwrap_or(0);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (causal(i), depth[i], nodes[i]));
    let position: HashMap<usize, usize> =
        order.iter().enumerate().map(|(pos, &i)| (i, pos)).collect();
    order
        .iter()
        .map(|&i| {
            let r = first[nodes[i]];
            let s = shift[i].unwrap_or(0);
            Hop {
                node: nodes[i].to_owned(),
                time_ms: r.time_ms,
                causal_ms: causal(i),
                via: r.via.clone(),
                from: r.from.clone(),
                suspected: suspected.get(nodes[i]).map(|r| Suspected {
                    time_ms: r.time_ms,
                    causal_ms: r.time_ms + s,
                    via: r.via.clone(),
                    from: r.from.clone(),
                }),
                parent: parent[i].map(|p| position[&p]),
                depth: depth[i],
                // Stamps are whole milliseconds: a gap of one proves nothing about the clocks.
                before_sender_ms: (s > 1).then_some(s),
                told: told
                    .get(nodes[i])
                    .map(|t| t.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                incarnation: r.incarnation,
            }
        })
        .collect()
}

/// Bounds on every pair of clocks from every line that names its sender, across all changes in the logs: a
/// receiver `b` that heard from `a` logged after `a` did in true time, so `clock_a - clock_b > t_a - t_b - 1`
/// (with stamps truncated to the millisecond).
fn skew(records: &[Record]) -> Vec<Skew> {
    // When each list first logged each change.
    let mut learned: HashMap<(&str, &str, u64, Kind), u64> = HashMap::new();
    for r in records.iter().filter(|r| r.kind != Kind::Sent) {
        let at = learned
            .entry((r.node.as_str(), r.member.as_str(), r.joined_at_ms, r.kind))
            .or_insert(r.time_ms);
        *at = (*at).min(r.time_ms);
    }
    // (a, b) with a < b: the lower and upper bounds on clock_a - clock_b.
    #[derive(Default)]
    struct Bounds {
        lo: Option<i64>,
        hi: Option<i64>,
        evidence: usize,
    }
    let mut pairs: BTreeMap<(&str, &str), Bounds> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind != Kind::Sent) {
        let Some(sender) = r.from.as_deref() else {
            continue;
        };
        if sender == r.node {
            continue;
        }
        let Some(&sent) = learned.get(&(sender, r.member.as_str(), r.joined_at_ms, r.kind)) else {
            continue;
        };
        // Stamps are whole milliseconds (truncated), so the readings were up to 1 ms later than stamped: the
        // receiver's stamp may be one less than the truth allows without any difference between the clocks.
        let gap = sent as i64 - r.time_ms as i64 - 1;
        let (a, b, lower) = if sender < r.node.as_str() {
            (sender, r.node.as_str(), true)
        } else {
            (r.node.as_str(), sender, false)
        };
        let entry = pairs.entry((a, b)).or_default();
        entry.evidence += 1;
        if lower {
            // clock_a - clock_b > gap
            entry.lo = Some(entry.lo.map_or(gap, |lo| lo.max(gap)));
        } else {
            // clock_b - clock_a > gap, so clock_a - clock_b < -gap
            entry.hi = Some(entry.hi.map_or(-gap, |hi| hi.min(-gap)));
        }
    }
    let mut found: Vec<Skew> = pairs
        .into_iter()
        .map(|((a, b), bounds)| Skew {
            a: a.to_owned(),
            b: b.to_owned(),
            at_least_ms: bounds.lo,
            at_most_ms: bounds.hi,
            evidence: bounds.evidence,
        })
        .filter(Skew::proven)
        .collect();
    let size = |s: &Skew| s.at_least_ms.unwrap_or(0).max(-s.at_most_ms.unwrap_or(0));
    found.sort_by(|x, y| {
        size(y)
            .cmp(&size(x))
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    found
}
