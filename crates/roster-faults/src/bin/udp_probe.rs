//! `roster-udp-probe`: a UDP echo server and pinger, so the harness can prove its faults work on a plain
//! socket before it trusts them with agents.
//!
//! `echo --bind IP:PORT [--max-seconds S]` answers every datagram with itself.
//! `ping --bind IP:PORT --to IP:PORT [--count N] [--interval-ms MS] [--timeout-ms MS]` sends numbered
//! datagrams and prints one line: `sent=N received=M rtt_min_ms=.. rtt_avg_ms=.. rtt_max_ms=..`.
//! It only ever sends to the test range 10.213.0.0/16 or to loopback, and every loop is bounded.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn allowed(addr: SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback() || ip.octets()[..2] == [10, 213],
        IpAddr::V6(ip) => ip.is_loopback(),
    }
}

fn flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.insert(flag.trim_start_matches("--").to_owned(), value.clone());
    }
    Ok(out)
}

fn get<T: std::str::FromStr>(
    flags: &HashMap<String, String>,
    key: &str,
    default: Option<T>,
) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match flags.get(key) {
        Some(v) => v.parse().map_err(|e| format!("--{key} {v}: {e}")),
        None => default.ok_or_else(|| format!("--{key} is required")),
    }
}

fn echo(flags: &HashMap<String, String>) -> Result<(), String> {
    let bind: SocketAddr = get(flags, "bind", None)?;
    let max_run = Duration::from_secs(get(flags, "max-seconds", Some(300))?);
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut buf = [0u8; 1500];
    while started.elapsed() < max_run {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) if allowed(from) => {
                let _ = socket.send_to(&buf[..n], from);
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    Ok(())
}

fn ping(flags: &HashMap<String, String>) -> Result<(), String> {
    let bind: SocketAddr = get(flags, "bind", None)?;
    let to: SocketAddr = get(flags, "to", None)?;
    if !allowed(to) {
        return Err(format!(
            "{to} is outside the test range 10.213.0.0/16 and loopback"
        ));
    }
    let count: u32 = get(flags, "count", Some(100))?;
    let interval = Duration::from_millis(get(flags, "interval-ms", Some(10))?);
    let timeout = Duration::from_millis(get(flags, "timeout-ms", Some(1000))?);
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(|e| e.to_string())?;
    let mut sent_at: HashMap<u32, Instant> = HashMap::new();
    let mut rtts: Vec<Duration> = Vec::new();
    let mut buf = [0u8; 64];
    let mut receive = |sent_at: &HashMap<u32, Instant>, rtts: &mut Vec<Duration>| match socket
        .recv_from(&mut buf)
    {
        Ok((4, from)) if from == to => {
            let seq = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if let Some(at) = sent_at.get(&seq) {
                rtts.push(at.elapsed());
            }
        }
        _ => {}
    };
    for seq in 0..count {
        let next = Instant::now() + interval;
        sent_at.insert(seq, Instant::now());
        socket
            .send_to(&seq.to_le_bytes(), to)
            .map_err(|e| format!("send to {to}: {e}"))?;
        while Instant::now() < next {
            receive(&sent_at, &mut rtts);
        }
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && rtts.len() < count as usize {
        receive(&sent_at, &mut rtts);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let min = rtts.iter().min().map_or(f64::NAN, |d| ms(*d));
    let max = rtts.iter().max().map_or(f64::NAN, |d| ms(*d));
    let avg = if rtts.is_empty() {
        f64::NAN
    } else {
        rtts.iter().map(|d| ms(*d)).sum::<f64>() / rtts.len() as f64
    };
    println!(
        "sent={count} received={} rtt_min_ms={min:.3} rtt_avg_ms={avg:.3} rtt_max_ms={max:.3}",
        rtts.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((mode, rest)) if mode == "echo" => flags(rest).and_then(|f| echo(&f)),
        Some((mode, rest)) if mode == "ping" => flags(rest).and_then(|f| ping(&f)),
        _ => Err("usage: roster-udp-probe echo|ping --bind IP:PORT [...]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster-udp-probe: {e}");
            ExitCode::from(2)
        }
    }
}
