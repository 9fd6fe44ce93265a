//! Event handlers: programs run on membership changes, user events and queries, in the manner of Serf.
//!
//! Each handler is `[FILTER[,FILTER...]=]PROGRAM`, run with `sh -c`. Filters: `member-join`, `member-leave`,
//! `member-failed`, `member-update`, `user` (any user event), `user:NAME`, `query`, `query:NAME`; no filter
//! runs the program on everything. What happened is in the environment (`ROSTER_EVENT`, `ROSTER_SELF_NAME`,
//! `ROSTER_SELF_ADDR`, and for a user event `ROSTER_USER_EVENT` and `ROSTER_USER_LTIME`, for a query
//! `ROSTER_QUERY_NAME`, `ROSTER_QUERY_ID`, `ROSTER_QUERY_LTIME`, for both `ROSTER_EVENT_ORIGIN`); the payload,
//! or for a membership change one line per member (`NAME<TAB>ADDR<TAB>STATE<TAB>KEY=VALUE,...`), is on
//! standard input. A query's answer is the program's standard output, up to the answer limit.
//!
//! Handlers never hold up the protocol: the driver only queues what happened (a bounded queue; past it,
//! events are dropped and logged), and a task of its own runs the programs, a few at a time, each killed at
//! its timeout (for a query, at the query's deadline if that comes first). Failures are logged. With a
//! coalescing period, a burst of changes of one kind, or of user events of one name, runs each handler once
//! (see `coalesce`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_core::{ChangeKind, Event, QueryId, State};
use tokio::sync::{Semaphore, mpsc};

use crate::driver::Command;

mod coalesce;
mod run;

use coalesce::Coalescer;
use run::run_one;

/// Events waiting for a handler; past this they are dropped (and logged).
const QUEUE: usize = 256;
/// Handler programs running at once.
const CONCURRENT: usize = 4;
/// Bytes of a failing handler's standard error kept for the log.
const STDERR_KEPT: usize = 512;

/// What a handler runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandlerFilter {
    /// A member joined (or came back after it failed).
    MemberJoin,
    /// A member left.
    MemberLeave,
    /// A member failed.
    MemberFailed,
    /// A member changed its metadata or address.
    MemberUpdate,
    /// A user event: any, or the one named.
    User(Option<String>),
    /// A query this member matches: any, or the one named.
    Query(Option<String>),
}

impl HandlerFilter {
    fn parse(text: &str) -> Option<HandlerFilter> {
        let named = |rest: Option<&str>| rest.filter(|n| !n.is_empty()).map(str::to_owned);
        Some(match text.split_once(':') {
            Some(("user", name)) => HandlerFilter::User(named(Some(name))?.into()),
            Some(("query", name)) => HandlerFilter::Query(named(Some(name))?.into()),
            Some(_) => return None,
            None => match text {
                "member-join" => HandlerFilter::MemberJoin,
                "member-leave" => HandlerFilter::MemberLeave,
                "member-failed" => HandlerFilter::MemberFailed,
                "member-update" => HandlerFilter::MemberUpdate,
                "user" => HandlerFilter::User(None),
                "query" => HandlerFilter::Query(None),
                _ => return None,
            },
        })
    }

    fn matches(&self, happened: &Happened) -> bool {
        match (self, happened) {
            (HandlerFilter::User(name), Happened::User { name: event, .. })
            | (HandlerFilter::Query(name), Happened::Query { name: event, .. }) => {
                name.as_ref().is_none_or(|n| n == event)
            }
            (filter, Happened::Member { kind, .. }) => filter == kind,
            _ => false,
        }
    }
}

/// A handler: the program and what it runs on (everything, when `filters` is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventHandler {
    /// What it runs on; empty for everything.
    pub filters: Vec<HandlerFilter>,
    /// The program, run with `sh -c`.
    pub program: String,
}

impl std::str::FromStr for EventHandler {
    type Err = String;

    /// Parses `[FILTER[,FILTER...]=]PROGRAM`. Text before the first `=` that is not a list of filters is part
    /// of the program (a program may hold `=` itself).
    fn from_str(text: &str) -> Result<EventHandler, String> {
        let text = text.trim();
        let (filters, program) = match text.split_once('=') {
            Some((head, program))
                if head
                    .split(',')
                    .all(|f| HandlerFilter::parse(f.trim()).is_some()) =>
            {
                let filters = head
                    .split(',')
                    .filter_map(|f| HandlerFilter::parse(f.trim()))
                    .collect();
                (filters, program.trim())
            }
            Some((head, _)) if looks_like_filters(head) => {
                return Err(format!(
                    "event handler {text:?}: unknown filter in {head:?} (known: member-join, member-leave, \
                     member-failed, member-update, user, user:NAME, query, query:NAME)"
                ));
            }
            _ => (Vec::new(), text),
        };
        if program.is_empty() {
            return Err(format!("event handler {text:?} names no program"));
        }
        Ok(EventHandler {
            filters,
            program: program.to_owned(),
        })
    }
}

/// Whether text before an `=` was meant as filters (a word list), not part of a command.
fn looks_like_filters(head: &str) -> bool {
    !head.is_empty()
        && head.chars().all(|c| {
            c.is_ascii_lowercase() || c == '-' || c == ',' || c == ':' || c.is_ascii_digit()
        })
}

/// One member's line on a membership handler's standard input.
#[derive(Clone, Debug)]
struct MemberLine {
    name: String,
    /// `NAME\tADDR\tSTATE\tKEY=VALUE,...` and a newline.
    line: String,
}

/// What a handler is told.
#[derive(Clone, Debug)]
enum Happened {
    Member {
        kind: HandlerFilter,
        /// Every member the change is about: one, or several once coalesced.
        members: Vec<MemberLine>,
    },
    User {
        name: String,
        payload: Vec<u8>,
        ltime: u64,
        origin: String,
    },
    Query {
        id: QueryId,
        name: String,
        payload: Vec<u8>,
        ltime: u64,
        /// How long is left to answer, from when it was queued.
        timeout: Duration,
    },
}

impl Happened {
    fn of(event: &Event, now: roster_core::Time) -> Option<Happened> {
        Some(match event {
            Event::Changed(change) => {
                let kind = match change.kind {
                    ChangeKind::Join => HandlerFilter::MemberJoin,
                    ChangeKind::Leave => HandlerFilter::MemberLeave,
                    ChangeKind::Failed => HandlerFilter::MemberFailed,
                    ChangeKind::Updated => HandlerFilter::MemberUpdate,
                    // A failed member back is a join again; a refuted suspicion changes nothing.
                    ChangeKind::Alive
                        if change
                            .previous
                            .as_ref()
                            .is_some_and(|p| p.state == State::Failed) =>
                    {
                        HandlerFilter::MemberJoin
                    }
                    ChangeKind::Alive | ChangeKind::Suspect => return None,
                };
                let id = &change.member.identity;
                let meta: Vec<String> = id.meta().iter().map(|(k, v)| format!("{k}={v}")).collect();
                let line = format!(
                    "{}\t{}\t{}\t{}\n",
                    id.name(),
                    id.addr(),
                    change.member.state.as_str(),
                    meta.join(",")
                );
                Happened::Member {
                    kind,
                    members: vec![MemberLine {
                        name: id.name().to_owned(),
                        line,
                    }],
                }
            }
            Event::User {
                name,
                payload,
                ltime,
                from,
            } => Happened::User {
                name: name.to_string(),
                payload: payload.to_vec(),
                ltime: *ltime,
                origin: from.to_string(),
            },
            Event::Query {
                query,
                ltime,
                name,
                payload,
                deadline,
            } => Happened::Query {
                id: query.clone(),
                name: name.to_string(),
                payload: payload.to_vec(),
                ltime: *ltime,
                timeout: *deadline - now,
            },
            _ => return None,
        })
    }

    fn word(&self) -> &'static str {
        match self {
            Happened::Member { kind, .. } => match kind {
                HandlerFilter::MemberJoin => "member-join",
                HandlerFilter::MemberLeave => "member-leave",
                HandlerFilter::MemberFailed => "member-failed",
                _ => "member-update",
            },
            Happened::User { .. } => "user",
            Happened::Query { .. } => "query",
        }
    }
}

/// The driver's end: queues what happened for the handlers' task.
#[derive(Debug)]
pub(crate) struct Handlers {
    queue: mpsc::Sender<Happened>,
}

/// Who this agent is, for the handlers' environment.
#[derive(Clone, Debug)]
pub(crate) struct SelfInfo {
    pub name: String,
    pub addr: String,
}

impl Handlers {
    /// Starts the task that runs `handlers`; query answers go back through `commands`.
    pub(crate) fn start(
        handlers: Vec<EventHandler>,
        timing: HandlerTiming,
        me: SelfInfo,
        commands: mpsc::Sender<Command>,
    ) -> Option<Handlers> {
        if handlers.is_empty() {
            return None;
        }
        let (queue, rx) = mpsc::channel(QUEUE);
        let runner = Runner {
            handlers: handlers.into(),
            timeout: timing.timeout,
            coalesce: timing.coalesce,
            me: Arc::new(me),
            commands,
            slots: Arc::new(Semaphore::new(CONCURRENT)),
        };
        tokio::spawn(runner.run(rx));
        Some(Handlers { queue })
    }

    /// Queues `event` for the handlers that run on it; never waits.
    pub(crate) fn dispatch(&self, event: &Event, now: roster_core::Time) {
        let Some(happened) = Happened::of(event, now) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(happened)) = self.queue.try_send(happened) {
            tracing::warn!(
                event = happened.word(),
                "event handlers are {QUEUE} events behind; this one was dropped"
            );
        }
    }
}

/// How long a handler may run, and how long a burst is held to run it once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HandlerTiming {
    pub timeout: Duration,
    pub coalesce: Duration,
}

struct Runner {
    handlers: Arc<[EventHandler]>,
    timeout: Duration,
    coalesce: Duration,
    me: Arc<SelfInfo>,
    commands: mpsc::Sender<Command>,
    slots: Arc<Semaphore>,
}

impl Runner {
    async fn run(self, mut rx: mpsc::Receiver<Happened>) {
        let mut held = Coalescer::new(self.coalesce);
        loop {
            let due = held.next_due();
            let ready = tokio::select! {
                received = rx.recv() => match received {
                    Some(happened) => held.hold(happened, Instant::now()).into_iter().collect(),
                    // The agent stopped: what was held still runs.
                    None => {
                        for happened in held.release(None) {
                            self.start_handlers(happened).await;
                        }
                        return;
                    }
                },
                () = sleep_until(due) => held.release(Some(Instant::now())),
            };
            for happened in ready {
                self.start_handlers(happened).await;
            }
        }
    }

    /// Starts every handler that runs on `happened`, as slots free up.
    async fn start_handlers(&self, happened: Happened) {
        let happened = Arc::new(happened);
        for handler in self.handlers.iter() {
            if !handler.filters.is_empty() && !handler.filters.iter().any(|f| f.matches(&happened))
            {
                continue;
            }
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                return;
            };
            let (handler, happened) = (handler.clone(), Arc::clone(&happened));
            let (me, commands, timeout) =
                (Arc::clone(&self.me), self.commands.clone(), self.timeout);
            tokio::spawn(async move {
                run_one(&handler, &happened, &me, timeout, &commands).await;
                drop(slot);
            });
        }
    }
}

/// Sleeps until `due`, or for ever when nothing is due.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_parse_with_and_without_filters() {
        let h: EventHandler = "member-join,member-failed=/usr/bin/notify".parse().unwrap();
        assert_eq!(
            h.filters,
            vec![HandlerFilter::MemberJoin, HandlerFilter::MemberFailed]
        );
        assert_eq!(h.program, "/usr/bin/notify");
        let h: EventHandler = "user:deploy=./deploy.sh".parse().unwrap();
        assert_eq!(h.filters, vec![HandlerFilter::User(Some("deploy".into()))]);
        let h: EventHandler = "./all.sh".parse().unwrap();
        assert!(h.filters.is_empty());
        let h: EventHandler = "FOO=1 ./run.sh".parse().unwrap();
        assert_eq!((h.filters.len(), h.program.as_str()), (0, "FOO=1 ./run.sh"));
        let e = "member-joined=./x.sh".parse::<EventHandler>().unwrap_err();
        assert!(e.contains("unknown filter"), "{e}");
        assert!("user=".parse::<EventHandler>().is_err());
    }

    #[test]
    fn filters_match_by_kind_and_name() {
        let deploy = Happened::User {
            name: "deploy".into(),
            payload: Vec::new(),
            ltime: 1,
            origin: "m1".into(),
        };
        assert!(HandlerFilter::User(None).matches(&deploy));
        assert!(HandlerFilter::User(Some("deploy".into())).matches(&deploy));
        assert!(!HandlerFilter::User(Some("restart".into())).matches(&deploy));
        assert!(!HandlerFilter::Query(None).matches(&deploy));
        let failed = Happened::Member {
            kind: HandlerFilter::MemberFailed,
            members: Vec::new(),
        };
        assert!(HandlerFilter::MemberFailed.matches(&failed));
        assert!(!HandlerFilter::MemberJoin.matches(&failed));
    }
}
