//! `roster demo`: a cluster of real agents on loopback living through a scripted story, shown live.
//!
//! The story: every agent joins; three crash at once (`kill -9`); one leaves; a crashed one restarts from its
//! data directory alone. Each crash is timed against Roster's deadlines (first detection within
//! 10 s, every live list within 15 s) from the agents' own event logs, and the exit code says whether every
//! deadline held: 0 yes, 1 no (or the story could not finish), 130 interrupted. The agents are child
//! processes of this binary; the demo kills them and removes their files however it ends.

mod cluster;
mod screen;
mod trace;
mod watch;

use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use clap::Args;
use roster_core::mix::SplitMix64;

use self::cluster::Cluster;
use self::screen::{Frame, Screen, Status};
use self::watch::Watcher;
use crate::BadInput;
use crate::interrupt::interrupted;

/// `roster demo`'s flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Agents to run (5 to 64): three crash, one leaves, the first one stays up throughout
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub nodes: usize,
    /// Seed for who joins through whom and who crashes, leaves and restarts [default: from the clock]
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Print plain lines instead of redrawing a table (implied when stdout is not a terminal)
    #[arg(long)]
    pub no_tty: bool,
    /// Copy every agent's event log into DIR/<name>/ before the demo's directory is removed, for `roster trace`
    #[arg(long, value_name = "DIR")]
    pub keep_logs: Option<std::path::PathBuf>,
}

/// How many crash at once: the most the deadlines are promised for.
const CRASHES: usize = 3;
/// A pause between acts, so that a person watching can see each settle.
const PAUSE: Duration = Duration::from_millis(1500);
/// How often the lists are read for the table; the logs are read every tick.
const LIST_EVERY: Duration = Duration::from_millis(400);
const TICK: Duration = Duration::from_millis(100);

/// The story stopped before its end.
#[derive(Debug)]
enum Stop {
    Interrupted,
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::Failed(e)
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if !(5..=64).contains(&args.nodes) {
        return Err(BadInput(format!(
            "--nodes {} is out of range: the story needs 5 to 64 agents",
            args.nodes
        ))
        .into());
    }
    crate::interrupt::catch_signals()?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1)
            % 100_000
    });
    let tty = !args.no_tty && std::io::stdout().is_terminal();
    let mut demo = Demo::new(args.nodes, seed, tty)?;
    demo.keep_logs = args.keep_logs.clone();
    let outcome = demo.story();
    demo.finish(outcome)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn secs(ms: u64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

/// One timed change: when it started, and when the first and the last live list showed it.
#[derive(Debug)]
struct Timed {
    what: &'static str,
    member: String,
    since_ms: u64,
    first_ms: Option<u64>,
    every_ms: Option<u64>,
    first_deadline: Option<Duration>,
    every_deadline: Duration,
}

impl Timed {
    fn met(&self) -> bool {
        let within = |ms: Option<u64>, deadline: Duration| {
            ms.is_some_and(|ms| u128::from(ms) <= deadline.as_millis())
        };
        self.first_deadline
            .is_none_or(|deadline| within(self.first_ms, deadline))
            && within(self.every_ms, self.every_deadline)
    }

    fn line(&self, waited_ms: u64) -> String {
        let mark = |ms: u64, deadline: Duration| {
            let verdict = if u128::from(ms) <= deadline.as_millis() {
                "ok"
            } else {
                "MISSED"
            };
            format!("{} (<= {} s) {verdict}", secs(ms), deadline.as_secs())
        };
        let mut line = format!("{:<6} {:<4} ", self.what, self.member);
        if let Some(deadline) = self.first_deadline {
            match self.first_ms {
                Some(first) => line.push_str(&format!("detected {}, ", mark(first, deadline))),
                None => {
                    line.push_str(&format!("waiting for detection: {}", secs(waited_ms)));
                    return line;
                }
            }
        }
        match self.every_ms {
            Some(every) => {
                line.push_str(&format!("every list {}", mark(every, self.every_deadline)))
            }
            None => line.push_str(&format!("every list: waiting {}", secs(waited_ms))),
        }
        line
    }
}

#[derive(Debug)]
struct Demo {
    cluster: Cluster,
    watch: Watcher,
    screen: Screen,
    rng: SplitMix64,
    seed: u64,
    nodes: usize,
    status: Vec<(String, Status)>,
    act: String,
    timed: Vec<Timed>,
    listed_at: Option<Instant>,
    detect_deadline: Duration,
    disseminate_deadline: Duration,
    /// Where to copy the event logs before the directory goes.
    keep_logs: Option<std::path::PathBuf>,
}

impl Demo {
    fn new(nodes: usize, seed: u64, tty: bool) -> anyhow::Result<Demo> {
        let defaults = roster_agent::AgentConfig::new("demo", ([127, 0, 0, 1], 0).into()).protocol;
        Ok(Demo {
            cluster: Cluster::new()?,
            watch: Watcher::default(),
            screen: Screen::new(tty),
            rng: SplitMix64::new(seed),
            seed,
            nodes,
            status: Vec::new(),
            act: String::new(),
            timed: Vec::new(),
            listed_at: None,
            detect_deadline: defaults.detect_deadline,
            disseminate_deadline: defaults.disseminate_deadline,
            keep_logs: None,
        })
    }

    fn story(&mut self) -> Result<(), Stop> {
        let n = self.nodes;
        self.act(&format!(
            "act 1/4: {n} agents join, each through a random earlier one"
        ));
        for i in 0..n {
            let join =
                (i > 0).then(|| self.cluster.agents[self.rng.below(i as u64) as usize].addr());
            let name = format!("d{}", i + 1);
            let index = self.cluster.add(&name, join)?;
            let agent = &self.cluster.agents[index];
            let (pid, addr, http) = (agent.pid().unwrap_or(0), agent.addr(), agent.http_addr());
            let seed = join
                .map(|a| format!(" joining through {a}"))
                .unwrap_or_default();
            self.say(&format!("started {name} pid {pid} on {addr}{seed}"));
            if i == 0 {
                self.say(&format!("dashboard: http://{http}/"));
            }
            self.status.push((name, Status::Running));
            self.tick()?;
        }
        let all: Vec<String> = self.status.iter().map(|(n, _)| n.clone()).collect();
        self.wait(
            "every agent lists every agent alive",
            Duration::from_secs(20),
            |d| d.all_running_see(&all, |s, _| s == "alive"),
        )?;
        self.say(&format!("converged: all {n} lists hold {n} alive members"));

        // Victims, the leaver and the restarter are never d1, whose dashboard the operator may be watching.
        let mut others: Vec<usize> = (1..n).collect();
        let mut victims = Vec::new();
        for _ in 0..CRASHES {
            victims.push(others.remove(self.rng.below(others.len() as u64) as usize));
        }
        victims.sort_unstable();
        let leaver = others[self.rng.below(others.len() as u64) as usize];
        let restarter = victims[self.rng.below(victims.len() as u64) as usize];
        // The restart needs a snapshot that lists the cluster: wait until it does, bounded.
        let snapshot = self.cluster.agents[restarter].data_dir.join("snapshot");
        self.wait(
            "the snapshots hold the whole cluster",
            Duration::from_secs(5),
            |_| {
                std::fs::read_to_string(&snapshot)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v["members"].as_array().map(|m| m.len() + 1 >= n))
                    .unwrap_or(false)
            },
        )?;
        self.pause()?;

        let names: Vec<String> = victims.iter().map(|&i| self.name(i)).collect();
        self.act(&format!(
            "act 2/4: {} crash at once (kill -9)",
            names.join(", ")
        ));
        let crash_ms = now_ms();
        for &i in &victims {
            self.cluster.agents[i].kill();
            self.status[i].1 = Status::Crashed;
        }
        self.say(&format!("kill -9 {}", names.join(" ")));
        for name in &names {
            self.timed.push(Timed {
                what: "crash",
                member: name.clone(),
                since_ms: crash_ms,
                first_ms: None,
                every_ms: None,
                first_deadline: Some(self.detect_deadline),
                every_deadline: self.disseminate_deadline,
            });
        }
        let bound = self.disseminate_deadline + Duration::from_secs(5);
        self.wait("every live list marks the crashed failed", bound, |d| {
            d.all_running_see(&names, |s, _| s == "failed")
                && d.timed.iter().all(|t| t.every_ms.is_some())
        })?;
        self.pause()?;

        let leaver_name = self.name(leaver);
        self.act(&format!("act 3/4: {leaver_name} leaves gracefully"));
        let leave_ms = now_ms();
        self.cluster.leave(&self.cluster.agents[leaver]);
        self.say(&format!("POST /v1/leave to {leaver_name}"));
        self.timed.push(Timed {
            what: "leave",
            member: leaver_name.clone(),
            since_ms: leave_ms,
            first_ms: None,
            every_ms: None,
            first_deadline: None,
            every_deadline: self.disseminate_deadline,
        });
        let bound = self.disseminate_deadline + Duration::from_secs(5);
        self.wait(
            "the leaver stops and every live list says left",
            bound,
            |d| {
                d.cluster.agents[leaver].has_exited()
                    && d.all_running_see(std::slice::from_ref(&leaver_name), |s, _| s == "left")
                    && d.timed.iter().all(|t| t.every_ms.is_some())
            },
        )?;
        self.status[leaver].1 = Status::Left;
        self.say(&format!("{leaver_name} exited after its leave"));
        let failed = self
            .watch
            .lines
            .iter()
            .filter(|l| l.member == leaver_name && l.event == "failed" && l.time_ms >= leave_ms)
            .count();
        if failed > 0 {
            return Err(Stop::Failed(anyhow!(
                "{failed} lists marked the leaver {leaver_name} failed instead of left"
            )));
        }
        self.pause()?;

        let name = self.name(restarter);
        self.act(&format!(
            "act 4/4: {name} restarts from its data directory, no --join"
        ));
        let old_joined = self
            .watch
            .state(&self.name(0), &name)
            .map(|(_, j)| j)
            .unwrap_or(0);
        let restart_ms = now_ms();
        self.cluster.restart(restarter)?;
        self.status[restarter].1 = Status::Running;
        self.say(&format!(
            "restarted {name} pid {}",
            self.cluster.agents[restarter].pid().unwrap_or(0)
        ));
        self.timed.push(Timed {
            what: "rejoin",
            member: name.clone(),
            since_ms: restart_ms,
            first_ms: None,
            every_ms: None,
            first_deadline: None,
            every_deadline: self.disseminate_deadline,
        });
        let bound = self.disseminate_deadline + Duration::from_secs(5);
        self.wait("every live list holds the new instance alive", bound, |d| {
            d.all_running_see(std::slice::from_ref(&name), |s, joined| {
                s == "alive" && joined > old_joined
            }) && d.timed.iter().all(|t| t.every_ms.is_some())
        })?;
        self.act("the story is over: every list agrees");
        self.pause()?;
        Ok(())
    }

    fn name(&self, index: usize) -> String {
        self.status[index].0.clone()
    }

    fn act(&mut self, text: &str) {
        self.act = text.to_owned();
        self.say(text);
    }

    fn say(&mut self, text: &str) {
        self.screen.say(text);
    }

    /// Whether every running agent lists every one of `names` (but itself) in a state `ok` accepts.
    fn all_running_see(&self, names: &[String], ok: impl Fn(&str, u64) -> bool) -> bool {
        self.status
            .iter()
            .filter(|(_, s)| *s == Status::Running)
            .all(|(observer, _)| {
                names.iter().filter(|n| *n != observer).all(|member| {
                    self.watch
                        .state(observer, member)
                        .is_some_and(|(state, joined)| ok(state, joined))
                })
            })
    }

    /// Ticks until `done` holds, for at most `bound`.
    fn wait(
        &mut self,
        what: &str,
        bound: Duration,
        mut done: impl FnMut(&mut Demo) -> bool,
    ) -> Result<(), Stop> {
        let deadline = Instant::now() + bound;
        loop {
            self.tick()?;
            // Read the lists afresh before deciding, so a stale list never ends a wait.
            self.watch.read_lists(&self.cluster);
            self.listed_at = Some(Instant::now());
            if done(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Stop::Failed(anyhow!(
                    "gave up after {} s waiting until {what}",
                    bound.as_secs()
                )));
            }
            std::thread::sleep(TICK);
        }
    }

    fn pause(&mut self) -> Result<(), Stop> {
        let until = Instant::now() + PAUSE;
        while Instant::now() < until {
            self.tick()?;
            std::thread::sleep(TICK);
        }
        Ok(())
    }

    /// Reads what changed, times it, and redraws.
    fn tick(&mut self) -> Result<(), Stop> {
        if interrupted() {
            return Err(Stop::Interrupted);
        }
        let fresh = self.watch.read_logs(&self.cluster);
        if self.listed_at.is_none_or(|t| t.elapsed() >= LIST_EVERY) {
            self.watch.read_lists(&self.cluster);
            self.listed_at = Some(Instant::now());
        }
        // Only the failures, leaves and rejoins the story caused are news worth a line of their own.
        let quiet = !self.screen.is_tty() && self.nodes > 10;
        for line in &fresh {
            // Once a change is in every list, later lines about it (a restarted agent catching up) are not news.
            let about_timed = line.node != line.member
                && self.timed.iter().any(|t| {
                    t.member == line.member && line.time_ms >= t.since_ms && t.every_ms.is_none()
                });
            if about_timed && matches!(line.event.as_str(), "failed" | "leave" | "join") && !quiet {
                let via = line.via.as_deref().unwrap_or("?");
                let from = line
                    .from
                    .as_deref()
                    .map(|f| format!(" from {f}"))
                    .unwrap_or_default();
                self.screen.say(&format!(
                    "{} lists {} {} (via {via}{from})",
                    line.node,
                    line.member,
                    if line.event == "join" {
                        "alive again"
                    } else {
                        line.event.as_str()
                    }
                ));
            }
        }
        self.update_timings();
        let timings = self.timing_lines();
        let title = format!(
            "roster demo: {} agents, seed {}, dashboard http://{}/",
            self.nodes,
            self.seed,
            self.cluster
                .agents
                .first()
                .map(|a| a.http_addr().to_string())
                .unwrap_or_default()
        );
        self.screen.draw(
            &Frame {
                title: &title,
                act: &self.act,
                agents: &self.status,
                timings: &timings,
            },
            &self.watch,
        );
        Ok(())
    }

    /// Fills in first and every-list times from the logs of the agents running now.
    fn update_timings(&mut self) {
        let running: Vec<String> = self
            .status
            .iter()
            .filter(|(_, s)| *s == Status::Running)
            .map(|(n, _)| n.clone())
            .collect();
        for t in &mut self.timed {
            if t.every_ms.is_some() {
                continue;
            }
            let events: &[&str] = match t.what {
                "crash" => &["failed"],
                "leave" => &["leave"],
                _ => &["join", "alive", "update"],
            };
            let observers: Vec<&String> = running.iter().filter(|n| **n != t.member).collect();
            let seen: Vec<Option<u64>> = observers
                .iter()
                .map(|o| self.watch.first(o, &t.member, events, t.since_ms))
                .collect();
            if t.first_ms.is_none() {
                t.first_ms = seen.iter().flatten().min().map(|ms| ms - t.since_ms);
                if let Some(first) = t.first_ms {
                    let line = format!("first detection of {} after {}", t.member, secs(first));
                    if t.what == "crash" {
                        self.screen.say(&line);
                    }
                }
            }
            if !observers.is_empty() && seen.iter().all(Option::is_some) {
                let every = seen.iter().flatten().max().map(|ms| ms - t.since_ms);
                t.every_ms = every;
                if let Some(every) = every {
                    let verb = match t.what {
                        "crash" => "failed",
                        "leave" => "left",
                        _ => "alive again",
                    };
                    self.screen.say(&format!(
                        "{} is {verb} in every live list after {}",
                        t.member,
                        secs(every)
                    ));
                }
            }
        }
    }

    fn timing_lines(&self) -> Vec<String> {
        let now = now_ms();
        let mut lines = vec![format!(
            "deadlines: failed in one list within {} s, in every live list within {} s",
            self.detect_deadline.as_secs(),
            self.disseminate_deadline.as_secs()
        )];
        for t in &self.timed {
            lines.push(format!("  {}", t.line(now.saturating_sub(t.since_ms))));
        }
        lines
    }

    /// Prints the summary, stops everything, and turns the outcome into the exit status.
    fn finish(&mut self, outcome: Result<(), Stop>) -> anyhow::Result<()> {
        self.screen.finish();
        // The trace reads the logs, which go with the directory: before the shutdown removes it.
        let kept = match &self.keep_logs {
            Some(dir) => match trace::keep_logs(&self.cluster, dir) {
                Ok(()) => Some(dir.clone()),
                Err(e) => {
                    eprintln!("the event logs were not kept: {e:#}");
                    None
                }
            },
            None => None,
        };
        let traced = self
            .timed
            .iter()
            .find(|t| t.what == "crash")
            .map(|t| trace::first_crash(&self.cluster, &t.member, kept.as_ref()))
            .unwrap_or_default();
        let (stopped, removed) = self.cluster.shutdown();
        println!();
        println!(
            "summary (replay: roster demo --nodes {} --seed {}):",
            self.nodes, self.seed
        );
        for t in &self.timed {
            println!("  {}", t.line(now_ms().saturating_sub(t.since_ms)));
        }
        let crashes_met = self
            .timed
            .iter()
            .filter(|t| t.what == "crash" && t.met())
            .count();
        let all_met = self.timed.iter().all(Timed::met);
        let complete = outcome.is_ok();
        println!(
            "  cleanup: {stopped} agents stopped, {} {}",
            self.cluster.dir().display(),
            if removed { "removed" } else { "NOT removed" }
        );
        if !traced.is_empty() {
            println!();
            for line in &traced {
                println!("{line}");
            }
            println!();
        }
        match outcome {
            Err(Stop::Interrupted) => {
                println!("result: INTERRUPTED");
                // The conventional status of a program stopped by SIGINT; everything is cleaned up by now.
                std::process::exit(130);
            }
            Err(Stop::Failed(e)) => {
                println!("result: FAIL: {e:#}");
                bail!("the demo did not complete: {e:#}")
            }
            Ok(()) if complete && all_met && crashes_met == CRASHES => {
                println!(
                    "result: PASS: {CRASHES} of {CRASHES} crashes detected within the deadlines, story complete"
                );
                Ok(())
            }
            Ok(()) => {
                println!(
                    "result: FAIL: {crashes_met} of {CRASHES} crashes detected within the deadlines"
                );
                bail!("a deadline was missed")
            }
        }
    }
}
