//! Coalescing: with a coalescing period set, what happens in a burst runs each handler once rather than once per
//! event, as Serf does. Membership changes of one kind within the period run once with every member changed
//! (one line each, the latest per member), and user events of one name run once with the latest of them.
//! Queries are never held: each needs its own answer before its deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Happened;

/// What is being held back, and until when.
#[derive(Debug)]
pub(super) struct Coalescer {
    period: Duration,
    held: HashMap<Key, (Instant, Happened)>,
}

/// What events merge by: the kind of membership change, or the user event's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Member(&'static str),
    User(String),
}

impl Coalescer {
    /// Holds events for `period` after the first of each kind; a zero period holds nothing.
    pub(super) fn new(period: Duration) -> Coalescer {
        Coalescer {
            period,
            held: HashMap::new(),
        }
    }

    /// Takes `happened` at `now`: returns it if it runs at once, or holds it to merge with what follows.
    pub(super) fn hold(&mut self, happened: Happened, now: Instant) -> Option<Happened> {
        if self.period.is_zero() {
            return Some(happened);
        }
        let key = match &happened {
            Happened::Member { .. } => Key::Member(happened.word()),
            Happened::User { name, .. } => Key::User(name.clone()),
            Happened::Query { .. } => return Some(happened),
        };
        match self.held.remove(&key) {
            None => {
                self.held.insert(key, (now + self.period, happened));
            }
            Some((due, earlier)) => {
                self.held.insert(key, (due, merge(earlier, happened)));
            }
        }
        None
    }

    /// When the next held run is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.held.values().map(|(due, _)| *due).min()
    }

    /// The held runs due at `now` (all of them when `now` is `None`, at the end), oldest first.
    pub(super) fn release(&mut self, now: Option<Instant>) -> Vec<Happened> {
        let mut due: Vec<(Instant, Key)> = self
            .held
            .iter()
            .filter(|(_, (at, _))| now.is_none_or(|now| *at <= now))
            .map(|(key, (at, _))| (*at, key.clone()))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        due.into_iter()
            .filter_map(|(_, key)| self.held.remove(&key).map(|(_, h)| h))
            .collect()
    }
}

/// `earlier` and `later`, of one key, as one run.
fn merge(earlier: Happened, later: Happened) -> Happened {
    match (earlier, later) {
        (
            Happened::Member { kind, mut members },
            Happened::Member {
                members: changed, ..
            },
        ) => {
            for line in changed {
                match members.iter_mut().find(|m| m.name == line.name) {
                    Some(known) => *known = line,
                    None => members.push(line),
                }
            }
            Happened::Member { kind, members }
        }
        (earlier @ Happened::User { .. }, later @ Happened::User { .. }) => {
            let ltime = |h: &Happened| match h {
                Happened::User { ltime, .. } => *ltime,
                _ => 0,
            };
            if ltime(&later) >= ltime(&earlier) {
                later
            } else {
                earlier
            }
        }
        (_, later) => later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::{HandlerFilter, MemberLine};

    fn failed(name: &str, state: &str) -> Happened {
        Happened::Member {
            kind: HandlerFilter::MemberFailed,
            members: vec![MemberLine {
                name: name.into(),
                line: format!("{name}\t10.0.0.1:7946\t{state}\t\n"),
            }],
        }
    }

    fn deploy(ltime: u64) -> Happened {
        Happened::User {
            name: "deploy".into(),
            payload: format!("v{ltime}").into_bytes(),
            ltime,
            origin: "m1".into(),
        }
    }

    #[test]
    fn a_burst_runs_once_per_kind_and_name_at_the_end_of_the_period() {
        let start = Instant::now();
        let period = Duration::from_secs(2);
        let mut c = Coalescer::new(period);
        assert!(c.hold(failed("m3", "failed"), start).is_none());
        assert!(c.hold(deploy(7), start).is_none());
        let later = start + Duration::from_millis(500);
        assert!(c.hold(failed("m4", "failed"), later).is_none());
        assert!(c.hold(failed("m3", "failed"), later).is_none());
        assert!(c.hold(deploy(9), later).is_none());
        assert!(c.hold(deploy(8), later).is_none());
        assert_eq!(c.next_due(), Some(start + period));
        assert!(c.release(Some(later)).is_empty(), "nothing is due yet");

        let runs = c.release(Some(start + period));
        assert_eq!(runs.len(), 2);
        let members = runs.iter().find_map(|h| match h {
            Happened::Member { members, .. } => Some(members.len()),
            _ => None,
        });
        assert_eq!(members, Some(2), "m3 once, and m4");
        let latest = runs.iter().find_map(|h| match h {
            Happened::User { ltime, .. } => Some(*ltime),
            _ => None,
        });
        assert_eq!(latest, Some(9), "the latest deploy");
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn without_a_period_and_for_queries_nothing_is_held() {
        let now = Instant::now();
        let mut off = Coalescer::new(Duration::ZERO);
        assert!(off.hold(deploy(1), now).is_some());
        let mut on = Coalescer::new(Duration::from_secs(1));
        let query = Happened::Query {
            id: roster_core::QueryId {
                origin: "m1".into(),
                id: 4,
            },
            name: "uptime".into(),
            payload: Vec::new(),
            ltime: 1,
            timeout: Duration::from_secs(5),
        };
        assert!(on.hold(query, now).is_some());
        assert!(on.hold(deploy(1), now).is_none());
        assert_eq!(on.next_due(), Some(now + Duration::from_secs(1)));
        assert_eq!(
            on.release(None).len(),
            1,
            "what is held goes out at the end"
        );
    }
}
