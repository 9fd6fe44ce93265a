//! `Config`: the protocol's knobs, and the timers derived from the deadlines.
//!
//! Operators state what they need (a crashed member failed in one list within `detect_deadline`, in every list
//! within `disseminate_deadline`, for round trips up to `max_rtt` and up to `max_simultaneous_failures` crashes
//! at once) and the probe period they can afford. Everything else follows; docs/timing.md walks through the same
//! derivation with the simulator's evidence. In short, for a crash at time 0:
//!
//! 1. **First probe.** The ring schedule (see `probe`) has every member probed once per round when views agree,
//!    always at the same phase of the round. A crashed member's prober changes every round, walking back along
//!    the ring through its `ring_span` predecessors; at most `f - 1` of those probers can be crashed too, so
//!    someone live probes it within `f` rounds, where `f = max_simultaneous_failures`. Rounds are numbered by
//!    each member's own wall clock, and a prober whose clock is ahead probes early, one behind late: with clocks
//!    up to `max_clock_skew` apart, `f` rounds become `f * probe_interval + max_clock_skew`. Two shortcuts
//!    usually bring it much sooner, but the bound does not count on them: a member whose prober of the round
//!    has not pinged it probes that prober at once, and in a cluster of at most `ring_span + 1` members a probe
//!    left unanswered makes its prober probe every other member at once (see `node/probing`).
//! 2. **Probe window.** The direct ping, then ping-req through helpers, end within one `probe_interval`; the
//!    member is then suspected. Local health stretches the direct timeout only up to half the window, never the
//!    probe interval: a struggling member waits longer before accusing, but never probes less often.
//! 3. **Suspicion.** Every member that hears the suspicion runs its own timer, which starts at `suspicion_max`
//!    and shrinks toward `suspicion_min` as independent members confirm (Lifeguard). The budget left by 1 and 2
//!    caps `suspicion_max`: `suspicion_max <= detect_deadline - (f + 1) * probe_interval - max_clock_skew`.
//!    `suspicion_min` must leave a falsely suspected member time to hear of it (the accuser tells it directly,
//!    and its probers tell it again) and to answer its accusers: two probe periods plus two round trips.
//! 4. **Spread.** Members that heard the suspicion late, or never, learn of the failure by gossip: a rumour
//!    reaches N members in about `log(N) / log(fanout + 1) + ln(N) / fanout` gossip rounds. Detection plus that
//!    spread must fit `disseminate_deadline`.
//!
//! [`Config::validate`] checks 3 and 4 for the cluster size at hand and refuses a configuration that cannot meet
//! its deadlines, saying by how much.

use std::time::Duration;

/// How each member picks whom to probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ProbeSchedule {
    /// Members order the list by a hash of each name and, in round `r`, probe the member `r mod S + 1` places
    /// after themselves, where `S` is `ring_span` (or the number of other members, if fewer). When views agree
    /// every member is probed exactly once per round, which bounds the time until a crashed member is first
    /// probed. The default.
    Ring,
    /// SWIM's schedule: round-robin over a privately shuffled list, new members inserted at random positions.
    /// Every member is probed once per period on average, but the time to the first probe of a crashed member
    /// has an exponential tail. Kept for comparison in the simulator.
    Shuffled,
}

/// The protocol's configuration. Start from [`Config::default`] (a LAN of any size) and change what you need.
///
/// With the `serde` feature it reads and writes as a table of these names, any of them left out taking its
/// default and an unknown one refused; durations are strings such as `"750ms"` or `"1m30s"`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Config {
    /// A crashed member must be failed in at least one list within this time.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub detect_deadline: Duration,
    /// A crashed member must be failed in every live list within this time.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub disseminate_deadline: Duration,
    /// The largest round trip the deadlines are promised for.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub max_rtt: Duration,
    /// The largest cluster the deadlines are promised for; a node refuses a configuration that cannot meet them
    /// at this size.
    pub max_members: usize,
    /// How many members may crash at once with the deadlines still holding.
    pub max_simultaneous_failures: u32,
    /// One probe per member per interval: the protocol period.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub probe_interval: Duration,
    /// How members pick their probe targets.
    pub probe_schedule: ProbeSchedule,
    /// Ring schedule: a member probes the `ring_span` members after it on the ring in turn, one each round.
    /// Any span of at least `max_simultaneous_failures` keeps a crashed member's first probe within that many
    /// rounds while views agree; a short span keeps a difference of views (a join or a failure still
    /// spreading) from disturbing more than the few members right after the one the views disagree on.
    pub ring_span: usize,
    /// How far apart members' wall clocks may be (the largest difference between any two) with the deadlines
    /// still holding. Probe rounds are numbered by each member's own wall clock, so a difference shifts when a
    /// member's probers probe it: a crashed member's first probe may come this much later.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub max_clock_skew: Duration,
    /// The direct ping timeout never falls below this, however short the measured round trips.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub probe_timeout_floor: Duration,
    /// Helpers asked to ping a target that missed its direct ping (SWIM's k).
    pub indirect_checks: usize,
    /// Also probe over a stream (TCP in the agent) when the direct ping times out, so a member whose UDP is
    /// filtered is reported as such rather than failed.
    pub stream_fallback: bool,
    /// Independent confirmations that shrink a suspicion to `suspicion_min` (Lifeguard's K); never more than
    /// the members left to give them.
    pub suspicion_confirmations: usize,
    /// `suspicion_max` is at most this multiple of `suspicion_min`, and also within the deadline budget.
    pub suspicion_max_stretch: u32,
    /// Highest local-health score. Each point stretches the direct ping timeout by one more base timeout, up to
    /// half the probe interval.
    pub awareness_max: u32,
    /// Interval between gossip rounds while updates are pending.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub gossip_interval: Duration,
    /// Members sent to in each gossip round.
    pub gossip_fanout: usize,
    /// Each update is sent `retransmit_mult * ceil(log10(N + 1))` times (SWIM's λ log N).
    pub retransmit_mult: u32,
    /// Urgent news (a suspicion, a failure, a leave, a refutation) is sent this many times more often than
    /// other updates, so that it is very likely everywhere before it retires: a lost refutation is a false
    /// failure, a lost failure notice a stale list.
    pub urgent_retransmit_factor: u32,
    /// Largest UDP payload the node produces.
    pub mtu: usize,
    /// Interval between anti-entropy syncs for a cluster of up to `sync_scale_members`; it grows linearly beyond.
    /// A sync whose digests match costs two small messages.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub sync_interval: Duration,
    /// Cluster size from which the sync interval grows with N.
    pub sync_scale_members: usize,
    /// Interval between attempts to sync with a random failed member, so healed partitions merge.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub reconnect_interval: Duration,
    /// Failed members are forgotten (and no longer retried) after this long.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub failed_reap_timeout: Duration,
    /// Members that left are forgotten after this long.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub left_reap_timeout: Duration,
    /// First retry of an unanswered join; the interval doubles up to `join_retry_max`.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub join_retry: Duration,
    /// Longest interval between join retries.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub join_retry_max: Duration,
    /// Give up (and report `JoinFailed`) when no seed answered within this time.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub join_timeout: Duration,
    /// How long a leaving node keeps telling the others before it stops, if its goodbye has not yet gone out
    /// as often as any news does; [`crate::Event::Left`] says which happened.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub leave_timeout: Duration,
    /// Ping-reqs this node relays for others at once; more are refused with a nack.
    pub max_pending_relays: usize,
    /// The newest wire version this node speaks: the build's own, or the one before it to play an older build
    /// (for testing a cluster halfway through an upgrade).
    pub wire_version: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            detect_deadline: Duration::from_secs(10),
            disseminate_deadline: Duration::from_secs(15),
            max_rtt: Duration::from_millis(200),
            max_members: 10_000,
            max_simultaneous_failures: 3,
            probe_interval: Duration::from_secs(1),
            probe_schedule: ProbeSchedule::Ring,
            ring_span: 8,
            max_clock_skew: Duration::from_secs(1),
            probe_timeout_floor: Duration::from_millis(100),
            indirect_checks: 3,
            stream_fallback: true,
            suspicion_confirmations: 2,
            suspicion_max_stretch: 3,
            awareness_max: 4,
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            retransmit_mult: 4,
            urgent_retransmit_factor: 2,
            mtu: 1400,
            sync_interval: Duration::from_secs(30),
            sync_scale_members: 64,
            reconnect_interval: Duration::from_secs(10),
            failed_reap_timeout: Duration::from_secs(24 * 3600),
            left_reap_timeout: Duration::from_secs(300),
            join_retry: Duration::from_millis(500),
            join_retry_max: Duration::from_secs(4),
            join_timeout: Duration::from_secs(30),
            leave_timeout: Duration::from_secs(5),
            max_pending_relays: 64,
            wire_version: crate::codec::VERSION,
        }
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A knob that must be positive is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The knob.
        field: &'static str,
    },
    #[error(
        "the deadlines cannot hold: the first probe ({first_probe:?}) and the probe window ({probe_window:?}) \
         leave {budget:?} of the {detect_deadline:?} detection deadline for a suspicion, but a falsely suspected \
         member needs at least {suspicion_min:?} to refute; shorten probe_interval, lower max_clock_skew or lengthen \
         detect_deadline"
    )]
    /// The detection deadline leaves a suspicion less time than a falsely suspected member needs to refute.
    NoSuspicionBudget {
        /// The deadline asked for.
        detect_deadline: Duration,
        /// Worst time to the first probe.
        first_probe: Duration,
        /// Worst time a probe takes.
        probe_window: Duration,
        /// What is left for the suspicion.
        budget: Duration,
        /// What the suspicion needs at least.
        suspicion_min: Duration,
    },
    #[error(
        "the deadlines cannot hold at {members} members: detection takes up to {detect:?} and gossip up to \
         {spread:?} more, {total:?} in all, over the {disseminate_deadline:?} dissemination deadline; shorten \
         gossip_interval or probe_interval, or lengthen disseminate_deadline"
    )]
    /// Detection plus gossip's spread at this size exceed the dissemination deadline.
    SpreadTooSlow {
        /// The cluster size checked.
        members: usize,
        /// Worst detection.
        detect: Duration,
        /// Worst spread at that size.
        spread: Duration,
        /// The two together.
        total: Duration,
        /// The deadline asked for.
        disseminate_deadline: Duration,
    },
    #[error(
        "ring_span {ring_span} is under max_simultaneous_failures ({max_simultaneous_failures}): a crashed member \
         whose predecessors on the ring crashed with it might never be probed"
    )]
    /// A ring span shorter than the crashes promised at once.
    RingSpanTooShort {
        /// The span asked for.
        ring_span: usize,
        /// Crashes at once the deadlines are promised for.
        max_simultaneous_failures: u32,
    },
    #[error(
        "wire version {version} is not spoken by this build, which speaks {} to {}",
        crate::codec::OLDEST_VERSION,
        crate::codec::VERSION
    )]
    /// A wire version this build does not speak.
    UnknownWireVersion {
        /// The version asked for.
        version: u8,
    },
    #[error("mtu {mtu} is too small: at least {min} bytes are needed for one full update")]
    /// An MTU too small for one update of the largest size.
    MtuTooSmall {
        /// The MTU asked for.
        mtu: usize,
        /// The smallest that works.
        min: usize,
    },
    #[error(
        "max_rtt ({max_rtt:?}) must be under half the probe interval ({probe_interval:?}) for a ping-req to fit"
    )]
    /// A worst round trip too long for a ping-req to fit in the probe period.
    RttTooLong {
        /// The round trip asked for.
        max_rtt: Duration,
        /// The probe period asked for.
        probe_interval: Duration,
    },
}

/// The timers that follow from a `Config` and a cluster size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Worst time from a crash to the first probe of the crashed member.
    pub first_probe: Duration,
    /// Longest time from the first ping of a probe to the verdict.
    pub probe_window: Duration,
    /// The shortest a suspicion can be (with all confirmations in).
    pub suspicion_min: Duration,
    /// The longest a suspicion can be (with no confirmation).
    pub suspicion_max: Duration,
    /// Expected time for gossip to reach every member.
    pub spread: Duration,
    /// Worst time from a crash to the first list that marks it failed.
    pub detect_worst: Duration,
    /// Worst time from a crash to every list marking it failed.
    pub disseminate_worst: Duration,
}

/// The smallest MTU that still carries one update of the largest size.
pub const MIN_MTU: usize = 1024;

impl Config {
    /// The timers for a cluster of `members`.
    pub fn timers(&self, members: usize) -> Timers {
        let period = self.probe_interval;
        let first_probe = period * self.max_simultaneous_failures.max(1) + self.max_clock_skew;
        let probe_window = period;
        let suspicion_min = (period * 2 + self.max_rtt * 2).max(Duration::from_secs(1));
        let budget = self
            .detect_deadline
            .saturating_sub(first_probe + probe_window);
        let suspicion_max = (suspicion_min * self.suspicion_max_stretch.max(1))
            .min(budget)
            .max(suspicion_min);
        let spread = self.spread_time(members);
        let detect_worst = first_probe + probe_window + suspicion_max;
        Timers {
            first_probe,
            probe_window,
            suspicion_min,
            suspicion_max,
            spread,
            detect_worst,
            disseminate_worst: detect_worst + spread,
        }
    }

    /// Expected time for a rumour to reach `members` members: gossip rounds of `gossip_fanout`, each hop taking
    /// a gossip interval plus half the worst round trip.
    pub fn spread_time(&self, members: usize) -> Duration {
        let n = members.max(2) as f64;
        let fanout = self.gossip_fanout.max(1) as f64;
        let rounds = (n.ln() / (fanout + 1.0).ln() + n.ln() / fanout).ceil();
        (self.gossip_interval + self.max_rtt / 2).mul_f64(rounds)
    }

    /// The anti-entropy interval for a cluster of `members`: constant up to `sync_scale_members`, then growing
    /// linearly so that the bytes each member spends on full syncs stay bounded as N grows.
    pub fn sync_interval_for(&self, members: usize) -> Duration {
        let scale = members
            .max(1)
            .div_ceil(self.sync_scale_members.max(1))
            .max(1);
        self.sync_interval * u32::try_from(scale).unwrap_or(u32::MAX)
    }

    /// How many times an update is sent in a cluster of `members`.
    pub fn retransmit_limit(&self, members: usize, urgent: bool) -> u32 {
        let scale = ((members as f64 + 1.0).log10().ceil() as u32).max(1);
        let limit = self.retransmit_mult.max(1) * scale;
        if urgent {
            limit * self.urgent_retransmit_factor.max(1)
        } else {
            limit
        }
    }

    /// How many last looks at suspects a list takes at once: one for each member that may crash at once, and one
    /// for a suspicion that loss raised. The rest wait for one to end, so that a cut of hundreds is not a burst
    /// of a whole probe per suspect from every list.
    pub fn last_looks_at_once(&self) -> usize {
        self.max_simultaneous_failures as usize + 1
    }

    /// Checks that the configuration can meet its deadlines at `members` members.
    pub fn validate(&self, members: usize) -> Result<Timers, ConfigError> {
        for (field, value) in [
            ("probe_interval", self.probe_interval),
            ("gossip_interval", self.gossip_interval),
            ("detect_deadline", self.detect_deadline),
            ("disseminate_deadline", self.disseminate_deadline),
            ("sync_interval", self.sync_interval),
            ("reconnect_interval", self.reconnect_interval),
            ("join_retry", self.join_retry),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        if !(crate::codec::OLDEST_VERSION..=crate::codec::VERSION).contains(&self.wire_version) {
            return Err(ConfigError::UnknownWireVersion {
                version: self.wire_version,
            });
        }
        if self.ring_span < self.max_simultaneous_failures as usize {
            return Err(ConfigError::RingSpanTooShort {
                ring_span: self.ring_span,
                max_simultaneous_failures: self.max_simultaneous_failures,
            });
        }
        if self.gossip_fanout == 0 {
            return Err(ConfigError::Zero {
                field: "gossip_fanout",
            });
        }
        if self.mtu < MIN_MTU {
            return Err(ConfigError::MtuTooSmall {
                mtu: self.mtu,
                min: MIN_MTU,
            });
        }
        if self.max_rtt * 2 >= self.probe_interval {
            return Err(ConfigError::RttTooLong {
                max_rtt: self.max_rtt,
                probe_interval: self.probe_interval,
            });
        }
        let timers = self.timers(members);
        let budget = self
            .detect_deadline
            .saturating_sub(timers.first_probe + timers.probe_window);
        if budget < timers.suspicion_min {
            return Err(ConfigError::NoSuspicionBudget {
                detect_deadline: self.detect_deadline,
                first_probe: timers.first_probe,
                probe_window: timers.probe_window,
                budget,
                suspicion_min: timers.suspicion_min,
            });
        }
        if timers.disseminate_worst > self.disseminate_deadline {
            return Err(ConfigError::SpreadTooSlow {
                members,
                detect: timers.detect_worst,
                spread: timers.spread,
                total: timers.disseminate_worst,
                disseminate_deadline: self.disseminate_deadline,
            });
        }
        Ok(timers)
    }

    /// The base direct-ping timeout before any round trip has been measured.
    pub(crate) fn initial_probe_timeout(&self) -> Duration {
        (self.max_rtt * 2)
            .max(self.probe_timeout_floor)
            .min(self.probe_timeout_ceiling())
    }

    /// The direct ping never waits longer than half the probe window: the other half is for ping-req.
    pub(crate) fn probe_timeout_ceiling(&self) -> Duration {
        self.probe_interval / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_meet_the_deadlines_from_five_to_ten_thousand_members() {
        let config = Config::default();
        for members in [5, 50, 500, 5_000, 10_000] {
            let timers = config
                .validate(members)
                .unwrap_or_else(|e| panic!("{members} members: {e}"));
            assert!(
                timers.detect_worst <= config.detect_deadline,
                "{members}: {timers:?}"
            );
            assert!(
                timers.disseminate_worst <= config.disseminate_deadline,
                "{members}: {timers:?}"
            );
        }
    }

    #[test]
    fn suspicion_is_capped_by_the_budget_not_by_cluster_size() {
        // 10 s, less 3 rounds and 1 s of clock skew to the first probe, less the 1 s probe window.
        let timers = Config::default().timers(10);
        assert_eq!(timers.first_probe, Duration::from_secs(4));
        assert_eq!(timers.suspicion_max, Duration::from_secs(5));
        assert_eq!(
            Config::default().timers(10_000).suspicion_max,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn clocks_further_apart_leave_less_for_a_suspicion_and_too_far_are_refused() {
        let skewed = |skew: f64| Config {
            max_clock_skew: Duration::from_secs_f64(skew),
            ..Config::default()
        };
        assert_eq!(skewed(0.0).timers(50).suspicion_max, Duration::from_secs(6));
        assert_eq!(skewed(2.0).timers(50).suspicion_max, Duration::from_secs(4));
        let err = skewed(4.0).validate(50).unwrap_err();
        assert!(
            matches!(err, ConfigError::NoSuspicionBudget { .. })
                && err.to_string().contains("max_clock_skew"),
            "{err}"
        );
    }

    #[test]
    fn a_ring_span_shorter_than_the_simultaneous_failures_is_refused() {
        let config = Config {
            ring_span: 2,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(50),
            Err(ConfigError::RingSpanTooShort { .. })
        ));
    }

    #[test]
    fn a_slow_probe_period_is_refused_with_the_reason() {
        let config = Config {
            probe_interval: Duration::from_secs(3),
            ..Config::default()
        };
        let err = config.validate(10).unwrap_err();
        assert!(
            matches!(err, ConfigError::NoSuspicionBudget { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("shorten probe_interval"));
    }

    #[test]
    fn slow_gossip_is_refused_at_scale() {
        let config = Config {
            gossip_interval: Duration::from_secs(1),
            ..Config::default()
        };
        assert!(config.validate(5).is_ok());
        assert!(matches!(
            config.validate(10_000),
            Err(ConfigError::SpreadTooSlow { .. })
        ));
    }

    #[test]
    fn retransmissions_grow_with_log_n_and_urgent_news_gets_more() {
        let config = Config::default();
        assert_eq!(config.retransmit_limit(5, false), 4);
        assert_eq!(config.retransmit_limit(10_000, false), 20);
        assert_eq!(config.retransmit_limit(5, true), 8);
    }
}
