//! What a run measured: how news about each fault spread through the lists, mistakes (live members marked
//! failed), and the traffic.
//!
//! News is tracked as *rumours*: "member X (this instance) is failed", "... has left", "... is alive". A rumour
//! starts when the engine causes the fact (a crash, a leave, a join), its observers are the nodes running at that
//! moment, and it completes when every observer still running has reported the change through `poll_event`.
//! Observers that stop meanwhile are dropped rather than waited for. The engine classifies events against the
//! truth it holds; this module only counts.

use std::time::Duration;

use roster_core::Time;
use serde::Serialize;

/// Which change a rumour waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Want {
    Failed,
    Left,
    Alive,
    /// A conflict over the subject's name, with the subject as the claimant refused it.
    Conflict,
}

const NOT_OBSERVER: u64 = u64::MAX;
const PENDING: u64 = u64::MAX - 1;

/// News about one member instance, and who has heard it.
#[derive(Clone, Debug)]
pub struct Rumour {
    pub subject: usize,
    pub joined_at_ms: u64,
    pub want: Want,
    pub start: Time,
    /// Per node: `NOT_OBSERVER`, `PENDING`, or the microsecond at which it reported the change.
    marks: Vec<u64>,
    pending: usize,
    pub observers: usize,
    pub first: Option<Time>,
    /// For a crash: when the first list suspected it (the first probe of it, plus the probe window).
    pub first_suspect: Option<Time>,
    pub complete: Option<Time>,
    /// The subject was replaced (a restart) or stopped before the rumour completed; it is not counted.
    pub superseded: bool,
}

impl Rumour {
    /// When each observer that heard the news heard it, in order, as time since the start of the rumour.
    pub fn spread(&self) -> Vec<Duration> {
        let mut times: Vec<Duration> = self
            .marks
            .iter()
            .filter(|&&m| m < PENDING)
            .map(|&m| Duration::from_micros(m.saturating_sub(self.start.as_micros())))
            .collect();
        times.sort_unstable();
        times
    }

    /// Every node still waited for, with when it reported the change (`None`: not yet). Observers that
    /// stopped meanwhile are not waited for.
    pub fn observations(&self) -> impl Iterator<Item = (usize, Option<Time>)> + '_ {
        self.marks
            .iter()
            .enumerate()
            .filter(|&(_, &m)| m != NOT_OBSERVER)
            .map(|(node, &m)| {
                (
                    node,
                    (m < PENDING).then(|| Time::ZERO + Duration::from_micros(m)),
                )
            })
    }

    /// When `node` reported the change, if it did.
    pub fn heard_at(&self, node: usize) -> Option<Time> {
        let mark = *self.marks.get(node)?;
        (mark < PENDING).then(|| Time::ZERO + Duration::from_micros(mark))
    }

    pub fn is_open(&self) -> bool {
        self.complete.is_none() && !self.superseded
    }
}

/// A live member marked failed: what it was, for the report and for replaying.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mistake {
    pub at_s: f64,
    pub observer: String,
    pub member: String,
    pub via: &'static str,
    /// The slots of the observer and of the member.
    #[serde(skip)]
    pub slots: (usize, usize),
}

/// Everything a run counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub rumours: Vec<Rumour>,
    /// User events sent, and where each was delivered.
    pub user_events: Vec<crate::user_events::Followed>,
    /// Tag changes made, and when each list first held them.
    pub tag_changes: Vec<crate::tag_changes::Followed>,
    by_subject: Vec<Vec<u32>>,
    /// Live, unpartitioned members marked failed.
    pub false_positives: Vec<Mistake>,
    /// Members that left marked failed instead (a leave must never show as a crash).
    pub left_marked_failed: Vec<Mistake>,
    /// Live members marked failed by a node that the partition cut off from them: the protocol doing its job.
    pub partition_failed: u64,
    /// Members marked failed while frozen for longer than a suspicion can wait: also the protocol doing its job.
    pub frozen_failed: u64,
    /// Live members suspected (refuted later, or not).
    pub live_suspected: u64,
    /// Datagrams and stream messages sent, and their bytes.
    pub msgs: u64,
    pub bytes: u64,
    pub udp_packets: u64,
    pub stream_msgs: u64,
    pub stream_bytes: u64,
    pub max_packet_bytes: usize,
    pub max_stream_bytes: usize,
    pub lost: u64,
    pub cut: u64,
    /// Datagrams a machine dropped because it was out of its packet budget.
    pub over_budget: u64,
    /// Stream exchanges that failed through loss (a connection that could not open in time).
    pub streams_failed: u64,
    pub decode_errors: u64,
    /// Integral of the number of running nodes over time.
    pub member_seconds: f64,
    running: usize,
    last_count: Time,
    /// Traffic before the first fault: the quiet cluster.
    pub quiet: Option<(u64, f64)>,
    quiet_ended: bool,
    /// Each convergence watch: what it waited for, when it opened, when every list agreed.
    pub watches: Vec<Watch>,
}

/// A wait for every running list to agree on who is running.
#[derive(Clone, Debug)]
pub struct Watch {
    pub label: &'static str,
    pub start: Time,
    pub done: Option<Time>,
}

impl Metrics {
    pub fn new(nodes: usize, start: Time) -> Metrics {
        Metrics {
            by_subject: vec![Vec::new(); nodes],
            last_count: start,
            ..Metrics::default()
        }
    }

    /// The number of running nodes changed (or is about to be read).
    pub fn set_running(&mut self, now: Time, running: usize) {
        self.member_seconds +=
            self.running as f64 * now.saturating_since(self.last_count).as_secs_f64();
        self.last_count = now;
        self.running = running;
    }

    pub fn sent(&mut self, bytes: usize, datagram: bool) {
        self.msgs += 1;
        self.bytes += bytes as u64;
        if datagram {
            self.udp_packets += 1;
            self.max_packet_bytes = self.max_packet_bytes.max(bytes);
        } else {
            self.stream_msgs += 1;
            self.stream_bytes += bytes as u64;
            self.max_stream_bytes = self.max_stream_bytes.max(bytes);
        }
    }

    /// Marks the end of the quiet period (the first fault).
    pub fn end_quiet(&mut self, now: Time) {
        if !self.quiet_ended {
            self.quiet_ended = true;
            self.set_running(now, self.running);
            // A cluster of one has no quiet traffic to speak of.
            self.quiet = Some((self.udp_packets, self.member_seconds)).filter(|_| self.running > 1);
        }
    }

    /// Starts a rumour about `subject`; `observers` are the nodes that must hear it.
    pub fn start_rumour(
        &mut self,
        now: Time,
        subject: usize,
        joined_at_ms: u64,
        want: Want,
        observers: impl Iterator<Item = usize>,
    ) {
        let mut marks = vec![NOT_OBSERVER; self.by_subject.len()];
        let mut pending = 0;
        for o in observers {
            if o != subject && marks[o] == NOT_OBSERVER {
                marks[o] = PENDING;
                pending += 1;
            }
        }
        let id = u32::try_from(self.rumours.len()).expect("fewer than 2^32 rumours");
        self.by_subject[subject].push(id);
        self.rumours.push(Rumour {
            subject,
            joined_at_ms,
            want,
            start: now,
            marks,
            pending,
            observers: pending,
            first: None,
            first_suspect: None,
            complete: if pending == 0 { Some(now) } else { None },
            superseded: false,
        });
    }

    /// `observer` reported that `subject` (instance `joined_at_ms`) is now `want`.
    pub fn heard(
        &mut self,
        now: Time,
        observer: usize,
        subject: usize,
        joined_at_ms: u64,
        want: Want,
    ) {
        for &id in &self.by_subject[subject] {
            let r = &mut self.rumours[id as usize];
            if r.want != want || r.joined_at_ms != joined_at_ms || r.marks[observer] != PENDING {
                continue;
            }
            r.marks[observer] = now.as_micros();
            r.first.get_or_insert(now);
            r.pending -= 1;
            if r.pending == 0 && r.is_open() {
                r.complete = Some(now);
            }
        }
    }

    /// Some list suspects `subject` (instance `joined_at_ms`).
    pub fn suspected(&mut self, now: Time, subject: usize, joined_at_ms: u64) {
        for &id in &self.by_subject[subject] {
            let r = &mut self.rumours[id as usize];
            if r.want == Want::Failed && r.joined_at_ms == joined_at_ms {
                r.first_suspect.get_or_insert(now);
            }
        }
    }

    /// `node` stopped running: nobody waits for it any more, and news about its old instance is moot unless
    /// it is the news of its own end.
    pub fn stopped(&mut self, now: Time, node: usize, kept: Option<Want>) {
        for r in &mut self.rumours {
            if !r.is_open() {
                continue;
            }
            if r.subject == node && Some(r.want) != kept {
                r.superseded = true;
                continue;
            }
            if r.marks[node] == PENDING {
                r.marks[node] = NOT_OBSERVER;
                r.pending -= 1;
                if r.pending == 0 {
                    let last = r.marks.iter().filter(|&&m| m < PENDING).max().copied();
                    r.complete = Some(last.map_or(now, |m| Time::ZERO + Duration::from_micros(m)));
                }
            }
        }
    }

    /// `subject` became a new instance of itself (it took a newer `joined_at` to outrank a former instance):
    /// news of its arrival now waits for every list to hold the new instance.
    pub fn reidentified(&mut self, subject: usize, old_joined_at_ms: u64, new_joined_at_ms: u64) {
        for &id in &self.by_subject[subject] {
            let r = &mut self.rumours[id as usize];
            if r.want == Want::Alive && r.joined_at_ms == old_joined_at_ms && r.is_open() {
                r.joined_at_ms = new_joined_at_ms;
                r.first = None;
                r.pending = 0;
                for mark in &mut r.marks {
                    if *mark != NOT_OBSERVER {
                        *mark = PENDING;
                        r.pending += 1;
                    }
                }
            }
        }
    }

    /// `observer`'s list took a newer instance of `subject`'s name (a clone that outranked it): news of the
    /// instances before `newer_joined_at_ms` is moot there, since that list holds none of them any more.
    pub fn moot_for(&mut self, observer: usize, subject: usize, newer_joined_at_ms: u64) {
        for &id in &self.by_subject[subject] {
            let r = &mut self.rumours[id as usize];
            if r.joined_at_ms < newer_joined_at_ms && r.is_open() && r.marks[observer] == PENDING {
                r.marks[observer] = NOT_OBSERVER;
                r.pending -= 1;
                r.observers -= 1;
                if r.observers == 0 {
                    // Every list moved past the instance before hearing anything of it.
                    r.superseded = true;
                } else if r.pending == 0 {
                    let last = r.marks.iter().filter(|&&m| m < PENDING).max().copied();
                    r.complete =
                        Some(last.map_or(r.start, |m| Time::ZERO + Duration::from_micros(m)));
                }
            }
        }
    }

    /// The nodes that reported the leave of `subject` (instance `joined_at_ms`).
    pub fn heard_leave(
        &self,
        subject: usize,
        joined_at_ms: u64,
    ) -> impl Iterator<Item = usize> + '_ {
        self.by_subject[subject]
            .iter()
            .map(|&id| &self.rumours[id as usize])
            .filter(move |r| r.want == Want::Left && r.joined_at_ms == joined_at_ms)
            .flat_map(|r| (0..r.marks.len()).filter(|&o| r.heard_at(o).is_some()))
    }

    /// A new instance of `subject` started: news about any older one is moot.
    pub fn replaced(&mut self, subject: usize) {
        for &id in &self.by_subject[subject] {
            let r = &mut self.rumours[id as usize];
            if r.is_open() {
                r.superseded = true;
            }
        }
    }

    /// Waits for every list to agree after `label`. A second change of the same kind while the first is still
    /// spreading restarts the watch: convergence counts from the last change.
    pub fn open_watch(&mut self, label: &'static str, now: Time) {
        match self
            .watches
            .iter_mut()
            .find(|w| w.label == label && w.done.is_none())
        {
            Some(open) => open.start = now,
            None => self.watches.push(Watch {
                label,
                start: now,
                done: None,
            }),
        }
    }

    pub fn open_watches(&self) -> bool {
        self.watches.iter().any(|w| w.done.is_none())
    }

    pub fn close_watches(&mut self, now: Time) {
        for w in &mut self.watches {
            w.done.get_or_insert(now);
        }
    }
}
