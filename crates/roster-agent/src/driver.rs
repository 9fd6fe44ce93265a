//! The driver: the one task that owns the protocol loop. It feeds the core what the sockets receive, fires its
//! timers, sends what it wants sent, and turns what it reports into log lines, snapshot writes and metrics.
//!
//! The core sits behind a mutex only so the HTTP API can read the list; the driver holds the lock for one call
//! into the core and the draining that follows, never across an `.await`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use roster_core::{Event, Node, ProbeOutcome, Transmit, Transport};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::control::OperatorToken;
use crate::diagnose::{Diagnostics, Mismatch};
use crate::error::AgentError;
use crate::eventlog::{EventLog, LoggedEvent};
use crate::keyring::Purpose;
use crate::member::Member;
use crate::metrics::{self, Metrics, PacketDrop};
use crate::seeds::{self, Seeds};
use crate::snapshot::Capture;
use crate::streams;
use crate::subscription::LogPlace;
use crate::transport::{MAX_DATAGRAM, Wire};

/// Shortest pause between two snapshot writes while the list keeps changing, per [`SNAPSHOT_SCALE_MEMBERS`]
/// members: a write costs time and disk in proportion to the list, so a bigger list is written less often
/// (every 16 s at 1,000 members). Any one member in it is enough to rejoin through, so an older snapshot
/// loses little; the write right after joining is not paced.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
const SNAPSHOT_SCALE_MEMBERS: usize = 64;
/// Most datagrams handled in one go once the socket is readable, before timers, commands and sends get a turn:
/// draining a burst in batches keeps the kernel's buffer from overflowing, and the bound keeps a flood from
/// starving the probe schedule.
const DATAGRAM_BATCH: usize = 256;

/// What the core's lock guards.
#[derive(Debug)]
pub(crate) struct CoreState {
    pub node: Node<SmallRng>,
    /// The last direct-probe round trip to each member, for `rtt_ms`.
    pub rtt: HashMap<Box<str>, Duration>,
}

impl CoreState {
    /// The typed view of an entry, with the last round trip to it.
    pub fn member(&self, member: &roster_core::Member) -> Member {
        Member::from_core(member, self.rtt.get(member.name()).copied())
    }
}

/// What the agent's handle, the HTTP API and the driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<CoreState>,
    pub metrics: Metrics,
    pub events: broadcast::Sender<LoggedEvent>,
    /// The last line sent on `events`, held while sending: where a new reader's missed lines would start.
    pub last_line: Mutex<Option<Arc<str>>>,
    /// Where the event log is, if the agent keeps one.
    pub log_place: Option<LogPlace>,
    pub commands: mpsc::Sender<Command>,
    pub clock: Clock,
    /// Turns true when the driver has stopped; the HTTP API winds down then.
    pub stopped: watch::Receiver<bool>,
    /// Seals and opens every message; holds the keyring when the agent encrypts.
    pub wire: Wire,
    /// What acting HTTP requests must carry.
    pub token: OperatorToken,
    /// Whether this node is part of a cluster: a seed answered, or it started one of its own.
    pub joined: AtomicBool,
    /// Whether a leave has begun.
    pub leaving: AtomicBool,
    /// The `--join` addresses as given, for messages.
    pub seeds_given: String,
    /// The throttle for the log lines about a neighbour set up differently.
    pub diagnostics: Mutex<Diagnostics>,
    /// The fleet view's history of counts and round trips.
    pub fleet: crate::fleet::Fleet,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, CoreState> {
        // A panic while holding the lock leaves the core as it was between two calls; reading on is safe.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs (throttled) that a neighbour at `from` is set up differently.
    pub fn diagnose(&self, mismatch: Mismatch, from: SocketAddr, detail: &dyn std::fmt::Display) {
        self.diagnostics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report(mismatch, from, detail);
    }
}

/// A request to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    /// Leave, then answer whether the news went out before the deadline.
    Leave(oneshot::Sender<bool>),
    /// Change this member's tags and tell the others; answer with the tags in force.
    Tags(
        crate::tags::TagChange,
        oneshot::Sender<Result<roster_core::Meta, roster_core::IdentityError>>,
    ),
    /// Mark a failed member left everywhere.
    ForceLeave(
        String,
        oneshot::Sender<Result<roster_core::ForceLeft, roster_core::ForceLeaveError>>,
    ),
    /// Send a user event or a query, or answer a query.
    Events(crate::user_events::EventCommand),
}

/// Something that arrived for the driver from a stream task or the seed resolver.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A peer opened a stream and sent `bytes`; the reply, if any, goes back on `reply`.
    Request {
        peer: SocketAddr,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// The reply to a stream this node opened to `to`.
    Reply { to: SocketAddr, bytes: Vec<u8> },
    /// Seed names resolved: time to join, or to start a cluster of one.
    Seeds(seeds::Resolved),
    /// No seed address resolved within the join timeout.
    SeedsUnresolved,
}

/// How the driver was set up.
#[derive(Debug)]
pub(crate) struct DriverSetup {
    pub shared: Arc<Shared>,
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub commands: mpsc::Receiver<Command>,
    pub stopped: watch::Sender<bool>,
    pub log: Option<EventLog>,
    pub data_dir: Option<PathBuf>,
    pub seeds: Seeds,
    pub max_connections: usize,
    /// The event handlers, their timeout and their coalescing period.
    pub event_handlers: (
        Vec<crate::handlers::EventHandler>,
        crate::handlers::HandlerTiming,
    ),
    /// The tags the configuration gives, which the saved tags are compared with at a restart.
    pub configured_tags: roster_core::Meta,
}

/// A leave in progress.
/// A leave under way: who asked, and, once the core says the leave is done, whether its goodbye went out.
struct Leaving {
    waiters: Vec<oneshot::Sender<bool>>,
    done: Option<bool>,
}

struct Driver {
    shared: Arc<Shared>,
    udp: Arc<UdpSocket>,
    wire: Wire,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound: mpsc::Receiver<Inbound>,
    commands: mpsc::Receiver<Command>,
    log: Option<EventLog>,
    data_dir: Option<PathBuf>,
    streams: Arc<Semaphore>,
    join_required: bool,
    /// Retry a failed join forever, with backoff.
    retry_join: bool,
    /// Every seed address known: given, from the snapshot, resolved.
    seed_addrs: Vec<SocketAddr>,
    /// Failed joins so far, for the backoff.
    join_failures: u32,
    /// When to try joining again after a failed join.
    rejoin_at: Option<Instant>,
    /// Turns true once this node is in a cluster bigger than itself; stops re-resolving seed names.
    settled: watch::Sender<bool>,
    /// Whether systemd has been told the agent is ready.
    ready_notified: bool,
    rng: SmallRng,
    leaving: Option<Leaving>,
    snapshot_dirty: bool,
    snapshot_due: Instant,
    snapshot_writing: Arc<std::sync::atomic::AtomicBool>,
    transmits: Vec<Transmit>,
    reported: Vec<Event>,
    local_name: Box<str>,
    /// Whether the node was on standby at the last flush, to log the change once.
    standby: bool,
    /// Queries this agent sent, and where their answers go.
    open_queries: crate::user_events::OpenQueries,
    /// The event handlers' queue, when any are set.
    handlers: Option<crate::handlers::Handlers>,
    /// The tags the configuration gives (see `tags`).
    configured_tags: roster_core::Meta,
    /// The fleet view's history, sampled on the driver's own wakes.
    fleet: crate::fleet::Sampler,
}

mod commands;
mod join;
mod report;

/// Aborts a task when dropped: the accept loop ends with the driver, however the driver ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the protocol until the node leaves or a fatal error.
pub(crate) async fn run(setup: DriverSetup) -> Result<(), AgentError> {
    let DriverSetup {
        shared,
        udp,
        tcp,
        commands,
        stopped,
        log,
        data_dir,
        seeds,
        max_connections,
        event_handlers,
        configured_tags,
    } = setup;
    shared.metrics.udp_receive_buffer(setup_buffer(&udp));
    let (inbound_tx, inbound) = mpsc::channel(256);
    let streams = Arc::new(Semaphore::new(max_connections.max(1)));
    let wire = shared.wire.clone();
    let (local_name, me): (Box<str>, _) = {
        let state = shared.lock();
        let local = state.node.local();
        let me = crate::handlers::SelfInfo {
            name: local.name().to_owned(),
            addr: local.identity.addr().to_string(),
        };
        (local.name().into(), me)
    };
    let handlers = crate::handlers::Handlers::start(
        event_handlers.0,
        event_handlers.1,
        me,
        shared.commands.clone(),
    );
    let mut driver = Driver {
        shared: shared.clone(),
        udp: Arc::new(udp),
        wire: wire.clone(),
        inbound_tx: inbound_tx.clone(),
        inbound,
        commands,
        log,
        data_dir,
        streams: streams.clone(),
        join_required: seeds.required,
        retry_join: seeds.retry,
        seed_addrs: Vec::new(),
        join_failures: 0,
        rejoin_at: None,
        settled: watch::Sender::new(false),
        ready_notified: false,
        rng: SmallRng::from_os_rng(),
        leaving: None,
        snapshot_dirty: true,
        snapshot_due: Instant::now(),
        snapshot_writing: Arc::default(),
        transmits: Vec::new(),
        reported: Vec::new(),
        local_name,
        standby: false,
        open_queries: Default::default(),
        handlers,
        configured_tags,
        fleet: crate::fleet::Sampler::new(Instant::now()),
    };
    let accept = AbortOnDrop(tokio::spawn(streams::accept_loop(
        tcp,
        wire,
        inbound_tx.clone(),
        streams,
        shared.clone(),
    )));
    driver.start_join(seeds);
    let result = driver.run().await;
    drop(accept);
    if result.is_ok() {
        // A background write may still be in flight; both use the same temporary file.
        let writing = driver.snapshot_writing.clone();
        let until = Instant::now() + Duration::from_secs(2);
        while writing.load(std::sync::atomic::Ordering::Acquire) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        driver.store_snapshot_now();
    }
    let _ = stopped.send(true);
    result
}

impl Driver {
    async fn run(&mut self) -> Result<(), AgentError> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        loop {
            self.flush().await?;
            if let Some(announced) = self.leaving.as_ref().and_then(|l| l.done) {
                if !announced {
                    tracing::warn!("leave timeout passed before the news was fully out");
                }
                for w in self.leaving.take().map(|l| l.waiters).unwrap_or_default() {
                    let _ = w.send(announced);
                }
                return Ok(());
            }
            let wake = self.next_wake();
            sleep.as_mut().reset(wake.into());
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((len, from)) => {
                        self.on_datagram(from, &buf[..len]);
                        self.drain_datagrams(&mut buf);
                    }
                    // Some platforms report ICMP errors for earlier sends here; the socket is still fine.
                    Err(e) => tracing::debug!(error = %e, "udp receive error"),
                },
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound)?,
                Some(command) = self.commands.recv() => self.on_command(command),
                () = &mut sleep => {
                    // What arrived while this process waited for a CPU is taken in before the timers fire:
                    // an ack already in the socket answers its probe, however late the process runs. On a
                    // machine short of CPU the two are ready together, and the timer must not win.
                    self.drain_datagrams(&mut buf);
                    self.on_timer();
                }
            }
        }
    }

    /// Handles the datagrams already waiting, up to a batch, without waiting for more.
    fn drain_datagrams(&mut self, buf: &mut [u8]) {
        for _ in 1..DATAGRAM_BATCH {
            match self.udp.try_recv_from(buf) {
                Ok((len, from)) => self.on_datagram(from, &buf[..len]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => tracing::debug!(error = %e, "udp receive error"),
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let clock = self.shared.clock;
        let mut wake = match self.shared.lock().node.poll_timeout() {
            Some(t) => clock.instant_at(t),
            None => Instant::now() + Duration::from_secs(3600),
        };
        if self.snapshot_dirty {
            wake = wake.min(self.snapshot_due);
        }
        if let Some(at) = self.rejoin_at {
            wake = wake.min(at);
        }
        wake.min(self.fleet.wake_by())
    }

    fn on_timer(&mut self) {
        let now = self.shared.clock.now();
        {
            let mut state = self.shared.lock();
            // The protocol's clock never steps; the wall clock does when NTP sets it right (after a reboot
            // before it synchronised, say). The probe rounds follow the wall clock.
            state.node.handle_wall_clock(now, Clock::wall());
            if state.node.poll_timeout().is_some_and(|t| t <= now) {
                state.node.handle_timeout(now);
            }
        }
        if self.snapshot_dirty && Instant::now() >= self.snapshot_due {
            self.store_snapshot_in_background();
        }
        if self.rejoin_at.is_some_and(|at| Instant::now() >= at) {
            self.rejoin();
        }
        self.fleet.sample_if_due(&self.shared, Instant::now());
    }

    fn on_datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.shared
            .metrics
            .received(metrics::Transport::Udp, bytes.len());
        let opened = match self.wire.open(Purpose::Datagram, bytes) {
            Ok(opened) => opened,
            Err(e) => {
                match Mismatch::of_wire(&e, bytes) {
                    Some(mismatch) => {
                        self.shared.diagnose(mismatch, from, &e);
                        self.shared.metrics.dropped(PacketDrop::Mismatch(mismatch));
                    }
                    None => {
                        tracing::debug!(%from, error = %e, "datagram refused");
                        self.shared.metrics.dropped(PacketDrop::Wire(e.reason()));
                    }
                }
                return;
            }
        };
        let now = self.shared.clock.now();
        let result = self.shared.lock().node.handle_packet(now, from, &opened);
        if let Err(e) = result {
            match Mismatch::of_decode(&e, &opened) {
                Some(mismatch) => {
                    self.shared.diagnose(mismatch, from, &e);
                    self.shared.metrics.dropped(PacketDrop::Mismatch(mismatch));
                }
                None => {
                    tracing::debug!(%from, error = %e, "datagram did not decode");
                    self.shared.metrics.dropped(PacketDrop::Decode);
                }
            }
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) -> Result<(), AgentError> {
        let now = self.shared.clock.now();
        match inbound {
            Inbound::Request { peer, bytes, reply } => {
                let result = self.shared.lock().node.handle_stream(now, peer, &bytes);
                match result {
                    Ok(answer) => {
                        let _ = reply.send(answer);
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "stream request did not decode");
                        self.shared.metrics.dropped(PacketDrop::Decode);
                    }
                }
            }
            Inbound::Reply { to, bytes } => {
                let result = self.shared.lock().node.handle_stream(now, to, &bytes);
                match result {
                    // The exchange is one frame each way; a further message goes on a new stream.
                    Ok(Some(more)) => self.spawn_stream(Transmit {
                        to,
                        transport: Transport::Stream,
                        bytes: more,
                    }),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(%to, error = %e, "stream reply did not decode");
                        self.shared.metrics.dropped(PacketDrop::Decode);
                    }
                }
            }
            Inbound::Seeds(resolved) => self.on_seeds(now, resolved),
            Inbound::SeedsUnresolved => self.on_seeds_unresolved()?,
        }
        Ok(())
    }

    /// Sends what the core wants sent and reports what it has to report.
    async fn flush(&mut self) -> Result<(), AgentError> {
        {
            let mut state = self.shared.lock();
            while let Some(t) = state.node.poll_transmit() {
                self.transmits.push(t);
            }
            while let Some(e) = state.node.poll_event() {
                if let Event::Probed { target, outcome } = &e {
                    match outcome {
                        ProbeOutcome::Acked { rtt } => {
                            self.shared.metrics.probe_rtt(*rtt);
                            state.rtt.insert(target.name().into(), *rtt);
                            self.shared.fleet.rtt(target.name(), *rtt);
                        }
                        ProbeOutcome::AckedOverStream => {
                            self.shared.metrics.probe_acked_over_tcp();
                            tracing::warn!(
                                member = target.name(),
                                addr = %target.addr(),
                                "UDP blocked: only the TCP fallback probe reached this member; open UDP on \
                                 its port both ways"
                            )
                        }
                        ProbeOutcome::AckedIndirectly | ProbeOutcome::Failed => {}
                    }
                    continue;
                }
                self.reported.push(e);
            }
        }
        let mut transmits = std::mem::take(&mut self.transmits);
        for t in transmits.drain(..) {
            match t.transport {
                Transport::Udp => {
                    let bytes = self.wire.seal(Purpose::Datagram, t.bytes);
                    match self.udp.send_to(&bytes, t.to).await {
                        Ok(_) => self
                            .shared
                            .metrics
                            .sent(metrics::Transport::Udp, bytes.len()),
                        Err(e) => {
                            tracing::debug!(to = %t.to, error = %e, "udp send failed");
                            self.shared.metrics.dropped(PacketDrop::SendError);
                        }
                    }
                }
                Transport::Stream => self.spawn_stream(t),
            }
        }
        self.transmits = transmits;
        let mut reported = std::mem::take(&mut self.reported);
        for event in reported.drain(..) {
            self.report(event)?;
        }
        self.reported = reported;
        // Checked after the events are out, so the conflict that caused it is in the log.
        let standby = self.shared.lock().node.is_standby();
        if standby != self.standby {
            self.standby = standby;
            if standby {
                tracing::error!(
                    name = %self.local_name,
                    "another live process holds this name: on standby, taking it once it is free"
                );
            } else {
                tracing::info!(name = %self.local_name, "the name is free again: taking part");
            }
        }
        self.note_readiness();
        Ok(())
    }

    fn spawn_stream(&self, t: Transmit) {
        streams::spawn_request(&self.streams, &self.wire, &self.shared, &self.inbound_tx, t);
    }

    fn snapshot(&self) -> Option<(PathBuf, Capture)> {
        let dir = self.data_dir.clone()?;
        let state = self.shared.lock();
        Some((dir, Capture::of(state.node.local(), state.node.members())))
    }

    /// Marks the snapshot out of date. The first change after a quiet spell is written after a random part of
    /// the pause between writes rather than at once: news heard by every member within the same second (a
    /// crash) would otherwise have every agent on a machine copy its list and start a writer thread together,
    /// and a thousand agents on two cores doing so starve each other's probes into false suspicions.
    fn snapshot_changed(&mut self) {
        if self.snapshot_dirty {
            return;
        }
        self.snapshot_dirty = true;
        let now = Instant::now();
        if self.snapshot_due <= now {
            let members = self.shared.lock().node.members().len();
            self.snapshot_due = now + first_write_delay(snapshot_pause(members), &mut self.rng);
        }
    }

    fn store_snapshot_in_background(&mut self) {
        use std::sync::atomic::Ordering;
        self.snapshot_dirty = false;
        let Some((dir, snapshot)) = self.snapshot() else {
            return;
        };
        self.snapshot_due = Instant::now() + snapshot_pause(snapshot.len() + 1);
        // One write at a time; a change during a write leaves the flag dirty for the next turn.
        if self.snapshot_writing.swap(true, Ordering::AcqRel) {
            self.snapshot_dirty = true;
            self.snapshot_due = Instant::now() + Duration::from_millis(50);
            return;
        }
        let writing = self.snapshot_writing.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = snapshot.store(&dir) {
                tracing::error!(error = %e, "could not write the snapshot");
            }
            writing.store(false, Ordering::Release);
        });
    }

    fn store_snapshot_now(&mut self) {
        if let Some((dir, snapshot)) = self.snapshot()
            && let Err(e) = snapshot.store(&dir)
        {
            tracing::error!(error = %e, "could not write the snapshot");
        }
    }
}

/// The pause after a snapshot of `members` before the next write.
fn snapshot_pause(members: usize) -> Duration {
    let scale = members.div_ceil(SNAPSHOT_SCALE_MEMBERS).max(1);
    SNAPSHOT_EVERY * u32::try_from(scale).unwrap_or(u32::MAX)
}

/// How long the first change after a quiet spell waits to be written: a random part of `pause`.
fn first_write_delay(pause: Duration, rng: &mut impl rand::Rng) -> Duration {
    pause.mul_f64(rng.random_range(0.0..1.0))
}

fn setup_buffer(udp: &UdpSocket) -> usize {
    socket2::SockRef::from(udp).recv_buffer_size().unwrap_or(0)
}

fn config_of(shared: &Shared) -> roster_core::Config {
    shared.lock().node.config().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_writes_are_paced_by_the_size_of_the_list() {
        assert_eq!(snapshot_pause(1), Duration::from_secs(1));
        assert_eq!(snapshot_pause(64), Duration::from_secs(1));
        assert_eq!(snapshot_pause(65), Duration::from_secs(2));
        assert_eq!(snapshot_pause(1000), Duration::from_secs(16));
    }

    #[test]
    fn the_first_writes_after_news_everyone_hears_spread_over_the_pause() {
        let mut rng = SmallRng::seed_from_u64(1);
        let pause = snapshot_pause(1000);
        // A thousand agents on one machine hear of a crash in the same second.
        let mut per_second = [0u32; 16];
        for _ in 0..1000 {
            let delay = first_write_delay(pause, &mut rng);
            assert!(delay < pause, "{delay:?} beyond the pause {pause:?}");
            per_second[delay.as_secs() as usize] += 1;
        }
        assert!(
            per_second.iter().all(|&n| (20..=125).contains(&n)),
            "writes per second of the pause: {per_second:?}"
        );
    }
}
