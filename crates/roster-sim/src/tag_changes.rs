//! Tag changes in a run: a running member changes its tags (its metadata) at the moments the world names, and
//! the change is followed to every list, so a report can say how long it took to reach every live member while
//! crashes were detected.

use roster_core::{Member, Meta, Time};

use crate::engine::Sim;
use crate::user_events::Spread;

/// The tag every change sets, to a value of its own.
const KEY: &str = "sim-tag";

/// One tag change followed through a run.
#[derive(Clone, Debug)]
pub struct Followed {
    /// When it was made (true time).
    pub sent: Time,
    /// The member whose tags changed.
    pub origin: String,
    /// The instance of it that changed them.
    pub joined_at_ms: u64,
    /// The value the change gave the tag.
    pub value: String,
    /// When each slot's list first held the new tags.
    pub heard: Vec<Option<Time>>,
}

impl Sim {
    /// The first running member makes the world's `k`-th tag change.
    pub(crate) fn change_tags(&mut self, k: usize) {
        let Some(origin) = self.running_nodes().next() else {
            return;
        };
        let now = self.node_now(origin);
        let value = format!("change-{k}");
        let Ok(tags) = Meta::new([(KEY, value.as_str())]) else {
            return;
        };
        let Some(node) = self.slots[origin].node.as_mut() else {
            return;
        };
        if node.set_meta(now, tags).is_err() {
            return;
        }
        let slots = self.slots.len();
        let identity = &self.slots[origin].identity;
        self.metrics.tag_changes.push(Followed {
            sent: self.now,
            origin: identity.name().to_owned(),
            joined_at_ms: identity.joined_at_ms(),
            value,
            heard: vec![None; slots],
        });
        // The origin's own list holds the change at once: settling reports it.
        self.settle(origin);
    }

    /// The list in slot `observer` now holds `member` as it reported: a tag change arrived if it shows one.
    pub(crate) fn tag_change_heard(&mut self, observer: usize, member: &Member) {
        if self.metrics.tag_changes.is_empty() {
            return;
        }
        let Some(value) = member.identity.meta().get(KEY) else {
            return;
        };
        let now = self.now;
        if let Some(followed) = self.metrics.tag_changes.iter_mut().find(|f| {
            f.value == value
                && f.origin == member.name()
                && f.joined_at_ms == member.identity.joined_at_ms()
        }) && let Some(heard) = followed.heard.get_mut(observer)
        {
            heard.get_or_insert(now);
        }
    }

    /// How each tag change spread, judged against the members running at the end of the run that started
    /// before it was made.
    pub fn tag_change_spreads(&self) -> Vec<Spread> {
        self.metrics
            .tag_changes
            .iter()
            .map(|f| self.spread(f.sent, &f.heard))
            .collect()
    }
}
