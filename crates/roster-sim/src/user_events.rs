//! User events in a run: sent by a running member at the moments the world names, and followed to every
//! list, so a report can say how long one took to reach every live member while crashes were detected.

use roster_core::Time;

use crate::engine::{Sim, Status};

/// One user event followed through a run.
#[derive(Clone, Debug)]
pub struct Followed {
    /// When it was sent (true time).
    pub sent: Time,
    /// The member that sent it.
    pub origin: String,
    /// Its time on the origin's event clock.
    pub ltime: u64,
    /// When each slot first delivered it.
    pub heard: Vec<Option<Time>>,
    /// Deliveries past the first, counted over every slot (each must be zero).
    pub repeats: u64,
}

/// How one user event spread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread {
    /// From the send to the last live member that delivered it, if every live member did.
    pub everywhere_s: Option<f64>,
    /// Members running at the end of the run, and running when it was sent, that never delivered it.
    pub missed: usize,
    /// Deliveries past the first.
    pub repeats: u64,
}

impl Sim {
    /// Sends the `k`-th user event of the world from the first running member.
    pub(crate) fn send_user_event(&mut self, k: usize) {
        let Some(origin) = self.running_nodes().next() else {
            return;
        };
        let now = self.node_now(origin);
        let payload = format!("event-{k}");
        let Some(node) = self.slots[origin].node.as_mut() else {
            return;
        };
        let Ok(ltime) = node.send_user_event(now, "sim", payload.as_bytes()) else {
            return;
        };
        let slots = self.slots.len();
        self.metrics.user_events.push(Followed {
            sent: self.now,
            origin: self.slots[origin].identity.name().to_string(),
            ltime,
            heard: vec![None; slots],
            repeats: 0,
        });
        // The origin delivers its own event at once: settling reports it.
        self.settle(origin);
    }

    /// The node in slot `observer` delivered the user event `ltime` from `from`.
    pub(crate) fn user_event_heard(&mut self, observer: usize, from: &str, ltime: u64) {
        let now = self.now;
        if let Some(followed) = self
            .metrics
            .user_events
            .iter_mut()
            .find(|f| f.ltime == ltime && f.origin == from)
            && let Some(heard) = followed.heard.get_mut(observer)
        {
            match heard {
                Some(_) => followed.repeats += 1,
                None => *heard = Some(now),
            }
        }
    }

    /// How each user event spread, judged against the members running at the end of the run that started
    /// before it was sent.
    pub fn user_event_spreads(&self) -> Vec<Spread> {
        self.metrics
            .user_events
            .iter()
            .map(|f| Spread {
                repeats: f.repeats,
                ..self.spread(f.sent, &f.heard)
            })
            .collect()
    }

    /// How something sent at `sent` spread, from when each slot first `heard` it, judged against the members
    /// running at the end of the run that started before it was sent.
    pub(crate) fn spread(&self, sent: Time, heard: &[Option<Time>]) -> Spread {
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i].status == Status::Running && self.slots[i].clock.started() <= sent
            })
            .collect();
        let missed = live.iter().filter(|&&i| heard[i].is_none()).count();
        let last = live.iter().filter_map(|&i| heard[i]).max();
        Spread {
            everywhere_s: (missed == 0)
                .then(|| last.map(|t| (t - sent).as_secs_f64()))
                .flatten(),
            missed,
            repeats: 0,
        }
    }
}
