//! `roster-nfq-delay`: adds a fixed latency to every packet that netfilter queues to it.
//!
//! The kernel of the test machines has no netem qdisc, so latency comes from userspace: rules in a host's
//! namespace send its packets to an NFQUEUE, and this program holds each one for the delay before accepting it.
//! It runs inside that namespace (NFQUEUE is per network namespace), prints `ready` once bound, and exits on its
//! own after `--max-seconds` so a harness that died cannot leave it running for ever. It never drops or changes a
//! packet: when it is not keeping up, the kernel accepts packets itself (fail-open, and the rules use bypass).

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    queue: u16,
    delay: Duration,
    max_run: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut queue = 0u16;
    let mut delay_ms: Option<u64> = None;
    let mut max_seconds = 900u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--queue" => queue = value.parse().map_err(bad)?,
            "--delay-ms" => delay_ms = Some(value.parse().map_err(bad)?),
            "--max-seconds" => max_seconds = value.parse().map_err(bad)?,
            _ => {
                return Err(format!(
                    "unknown flag {flag}; usage: --delay-ms MS [--queue N] [--max-seconds S]"
                ));
            }
        }
    }
    let delay_ms = delay_ms.ok_or("--delay-ms is required")?;
    Ok(Args {
        queue,
        delay: Duration::from_millis(delay_ms),
        max_run: Duration::from_secs(max_seconds),
    })
}

fn run(args: &Args) -> std::io::Result<()> {
    let mut queue = nfq::Queue::open()?;
    queue.bind(args.queue)?;
    // Only the verdict matters, so the kernel need not copy payloads up to us.
    queue.set_copy_range(args.queue, 64)?;
    queue.set_fail_open(args.queue, true)?;
    queue.set_queue_max_len(args.queue, 4096)?;
    queue.set_nonblocking(true);
    println!("ready");
    std::io::stdout().flush()?;

    let started = Instant::now();
    // Every packet waits the same delay, so release order is arrival order and a FIFO suffices.
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    while started.elapsed() < args.max_run {
        // Bounded drain so a flood cannot starve the releases below.
        for _ in 0..1024 {
            match queue.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + args.delay, msg));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, msg)) = held.pop_front() {
                queue.verdict(msg)?;
            }
        }
        // A 1 ms tick keeps the added delay within about a millisecond of the target at negligible CPU cost.
        let next = held.front().map_or(Duration::from_millis(1), |(due, _)| {
            due.saturating_duration_since(now)
        });
        std::thread::sleep(next.clamp(Duration::from_micros(200), Duration::from_millis(1)));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("roster-nfq-delay: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster-nfq-delay: queue {}: {e}", args.queue);
            ExitCode::FAILURE
        }
    }
}
