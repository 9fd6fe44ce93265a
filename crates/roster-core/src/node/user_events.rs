//! User events: sending one, and delivering (once) and passing on those heard. See `user_event` for the clock,
//! the repeats and the window of events remembered.

use std::sync::Arc;

use rand::Rng;

use super::Node;
use crate::codec;
use crate::event::Event;
use crate::message::Message;
use crate::time::Time;
use crate::user_event::{self, EventError, UserEvent, Verdict};

impl<R: Rng> Node<R> {
    /// Sends a user event to every member, this one included (it is reported here at once). Returns the time
    /// it took on this node's event clock. Refused when its name is invalid, when name and payload are over
    /// [`user_event::MAX_EVENT_BYTES`], or while this node takes no part (it left, or waits on standby).
    pub fn send_user_event(
        &mut self,
        now: Time,
        name: &str,
        payload: &[u8],
    ) -> Result<u64, EventError> {
        self.start(now);
        user_event::check_name(name)?;
        user_event::check_size(name, payload)?;
        if !self.participating() {
            return Err(EventError::NotParticipating);
        }
        let ltime = self.user_events.send(user_event::event_key(name, payload));
        let event = UserEvent {
            ltime,
            name: Arc::from(name),
            payload: Arc::from(payload),
            origin: Arc::clone(&self.name),
        };
        self.deliver_user_event(&event);
        self.pass_on(&Message::UserEvent(event));
        self.next_gossip = self.next_gossip.min(now);
        Ok(ltime)
    }

    /// The event clock: one past the newest event this node sent or heard.
    pub fn event_clock(&self) -> u64 {
        self.user_events.clock().time()
    }

    /// A user event arrived in gossip: delivered and passed on if it is new.
    pub(super) fn hear_user_event(&mut self, event: UserEvent) {
        if self.standby {
            return;
        }
        if self.user_events.hear(event.ltime, event.key()) != Verdict::New {
            return;
        }
        self.deliver_user_event(&event);
        self.pass_on(&Message::UserEvent(event));
    }

    fn deliver_user_event(&mut self, event: &UserEvent) {
        self.events.push_back(Event::User {
            name: Arc::clone(&event.name),
            payload: Arc::clone(&event.payload),
            ltime: event.ltime,
            from: Arc::clone(&event.origin),
        });
    }

    /// Queues a user event or query for gossip, as often as any routine news.
    pub(super) fn pass_on(&mut self, message: &Message) {
        if self.leaving() {
            return;
        }
        let mut bytes = Vec::with_capacity(64);
        codec::encode_message(&mut bytes, message);
        self.broadcasts.push_event(bytes);
    }

    /// A peer's clocks, from a full sync. While joining, this node also drops every event and query stamped
    /// before them: they were sent before it was a member.
    pub(super) fn take_clocks(&mut self, event: u64, query: u64, joining: bool) {
        self.user_events.sync(event, joining);
        self.queries_heard.sync(query, joining);
    }

    /// This node's clocks, to go beside its list in a full sync.
    pub(super) fn clocks(&self) -> Message {
        Message::Clocks {
            event: self.user_events.clock().time(),
            query: self.queries_heard.clock().time(),
        }
    }
}
