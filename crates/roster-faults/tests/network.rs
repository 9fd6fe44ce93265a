//! The harness checked on its own, with a plain UDP echo instead of agents: containment, each fault doing what
//! it says (and nothing more), and a teardown that leaves nothing behind. The agent scenarios trust these.

use roster_faults::{Cluster, Fault, network, report, serial};

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in `{line}`"))
}

/// Pings `to`'s echo from `from` and returns (received of `count`, min rtt ms, avg rtt ms).
fn ping(c: &Cluster, from: usize, to: usize, count: u32, interval_ms: u32) -> (u32, f64, f64) {
    let bind = format!("{}:9001", c.net.host(from).ip);
    let target = format!("{}:9000", c.net.host(to).ip);
    let (count, interval) = (count.to_string(), interval_ms.to_string());
    let args = [
        "ping",
        "--bind",
        &bind,
        "--to",
        &target,
        "--count",
        &count,
        "--interval-ms",
        &interval,
        "--timeout-ms",
        "600",
    ];
    let out = c.udp_probe(from, &args).expect("udp probe runs");
    (
        field(&out, "received") as u32,
        field(&out, "rtt_min_ms"),
        field(&out, "rtt_avg_ms"),
    )
}

#[test]
fn faults_do_what_they_say_on_a_plain_udp_echo() {
    let Some(bins) = roster_faults::prepare(
        "network",
        env!("CARGO_BIN_EXE_roster-nfq-delay"),
        env!("CARGO_BIN_EXE_roster-udp-probe"),
    ) else {
        return;
    };
    let _serial = serial();
    let mut c = Cluster::new("network", 3, &bins).expect("test network");
    for i in [2, 3] {
        let bind = format!("{}:9000", c.net.host(i).ip);
        c.spawn_udp_probe(i, &["echo", "--bind", &bind, "--max-seconds", "120"])
            .expect("echo server");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let (clean, clean_rtt, _) = ping(&c, 1, 2, 50, 5);
    assert_eq!(clean, 50, "no fault: every echo comes back");

    c.add_fault(Fault::Partition {
        a: vec![1],
        b: vec![2],
    })
    .expect("partition");
    let (cut, ..) = ping(&c, 1, 2, 20, 5);
    let (beside, ..) = ping(&c, 1, 3, 20, 5);
    assert_eq!(
        (cut, beside),
        (0, 20),
        "a partition cuts h1-h2 and nothing else"
    );
    c.heal().expect("heal");

    c.add_fault(Fault::OneWay {
        from: vec![2],
        to: vec![1],
    })
    .expect("one-way");
    let (one_way, ..) = ping(&c, 1, 2, 20, 5);
    let (other_way, ..) = ping(&c, 3, 2, 20, 5);
    assert_eq!(
        (one_way, other_way),
        (0, 20),
        "h2's packets to h1 are dropped, h2's to h3 are not"
    );
    c.heal().expect("heal");

    c.add_fault(Fault::Loss {
        hosts: vec![2],
        percent: 30,
    })
    .expect("loss");
    let (lossy, ..) = ping(&c, 1, 2, 400, 2);
    assert!(
        (220..=340).contains(&lossy),
        "30 % loss on h2's sends: {lossy} of 400 echoes came back"
    );
    c.heal().expect("heal");

    c.add_latency(&[2, 3], 100).expect("latency");
    let (slow, slow_min, slow_avg) = ping(&c, 1, 2, 20, 10);
    let (between, between_min, _) = ping(&c, 2, 3, 20, 10);
    c.remove_latency();
    let (after, after_rtt, _) = ping(&c, 1, 2, 20, 5);
    assert!(
        slow == 20 && slow_min >= 195.0 && slow_avg < 260.0,
        "h1-h2 round trip with 100 ms each way: {slow_min} ms"
    );
    assert!(
        between == 20 && (195.0..260.0).contains(&between_min),
        "two delayed hosts: still 200 ms: {between_min} ms"
    );
    assert!(
        after == 20 && after_rtt < 50.0,
        "latency removed: {after_rtt} ms"
    );

    let id = c.net.id.clone();
    drop(c);
    let left: Vec<String> = network::own_netns()
        .into_iter()
        .filter(|n| n.starts_with(&id))
        .collect();
    assert!(left.is_empty(), "teardown left namespaces: {left:?}");
    report::summary(
        "network",
        &format!(
            "clean rtt {clean_rtt:.3} ms; partition 0/20 (bystander 20/20); one-way 0/20 (other way 20/20); \
             30 % loss -> {lossy}/400 back; 100 ms each way -> rtt {slow_min:.1} ms (between two delayed hosts \
             {between_min:.1} ms); after removal {after_rtt:.3} ms; teardown clean"
        ),
    );
}
