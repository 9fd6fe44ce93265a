//! Dissemination: gossip each round, full-list syncs (anti-entropy), and reconnect attempts to failed members.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;

use super::{CATCH_UP_SYNCS, MAX_SYNC_CHUNK_BYTES, Node, Sender};
use crate::codec::{self};
use crate::event::Via;
use crate::member::{Identity, Member};
use crate::message::Message;
use crate::time::Time;

impl<R: Rng> Node<R> {
    /// Sends pending updates to the next `gossip_fanout` members along the ring. Walking the ring rather than
    /// drawing at random means one node's successive sends of an update reach distinct members, so in a small
    /// cluster a single node's retransmissions already cover everyone.
    pub(super) fn gossip(&mut self, now: Time) {
        self.next_gossip = now + self.config.gossip_interval;
        let len = self.list.active_count();
        let limit = self.config.retransmit_limit(len, false);
        let mut sent = 0;
        for _ in 0..len {
            let goodbye = self.awaiting_goodbye_answers();
            if sent == self.config.gossip_fanout
                || (!self.broadcasts.owes_gossip(limit) && !goodbye)
            {
                break;
            }
            self.gossip_cursor = self.gossip_cursor.wrapping_add(1);
            let Some(target) = self.list.ring_member(self.gossip_cursor) else {
                break;
            };
            if target.name() == &*self.name {
                continue;
            }
            let target = Arc::clone(&target.identity);
            if goodbye {
                self.say_goodbye(now, target);
            } else {
                self.send(target.addr(), Some(target), &[], None);
            }
            sent += 1;
        }
    }

    /// Merges a full list from `sender`.
    pub(super) fn merge(&mut self, now: Time, members: Vec<Member>, sender: &mut Sender) {
        for member in members {
            self.apply(now, member, None, Via::Sync, sender, true);
            if sender.identity.is_none() {
                sender.identity = self.list.get(&sender.name).map(|m| Arc::clone(&m.identity));
            }
        }
    }

    pub(super) fn anti_entropy(&mut self, now: Time) {
        let members = self.list.active_count();
        self.next_sync = match self.catch_up_syncs.checked_sub(1) {
            Some(left) if left > 0 => {
                self.catch_up_syncs = left;
                now + CATCH_UP_SYNCS[CATCH_UP_SYNCS.len() - left]
            }
            _ => {
                self.catch_up_syncs = 0;
                now + self.jittered(self.config.sync_interval_for(members))
            }
        };
        let returned = self.sync_with_returned.take().filter(|id| {
            self.list
                .get(id.name())
                .is_some_and(|m| m.state.is_active())
        });
        if let Some(peer) = returned.or_else(|| self.random_members(1, None, true).pop()) {
            self.request_sync(peer);
        }
    }

    /// Opens a sync with `to` by sending the digest of this list; a full exchange follows only if they differ.
    pub(super) fn request_sync(&mut self, to: Arc<Identity>) {
        let request = self.sync_request();
        self.send_stream(to.addr(), Some(to), request);
    }

    /// Opens a sync with whoever listens at `addr`, a member this list does not know.
    pub(super) fn request_sync_at(&mut self, addr: SocketAddr) {
        let request = self.sync_request();
        self.send_stream(addr, None, request);
    }

    fn sync_request(&self) -> Message {
        Message::SyncRequest {
            digest: self.list.digest(),
            join: false,
            members: Vec::new(),
        }
    }

    /// Tries the failed members due (see `reconnects`), each by a sync: so that the two sides of a healed
    /// partition find each other again, and a live member failed here hears of it and refutes.
    pub(super) fn reconnect(&mut self, now: Time) {
        let next = now + self.jittered(self.config.reconnect_interval);
        self.reconnects.schedule(next);
        // Members whose failed entries were reaped are still tried while their graves stand.
        let buried: Vec<&Arc<Identity>> = self.graves.failed().collect();
        let active = self.list.active_count();
        let targets = self
            .reconnects
            .choose(&self.list, &buried, active, &mut self.rng);
        for target in targets {
            self.request_sync(target);
        }
    }

    /// The whole list, cut into parts that each fit a stream frame with room to spare.
    pub(super) fn list_in_chunks(&self) -> Vec<Vec<Member>> {
        let mut chunks = vec![Vec::new()];
        let mut bytes = 0;
        for member in self.list.iter() {
            let len = codec::member_len(member);
            if bytes + len > MAX_SYNC_CHUNK_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += len;
            chunks
                .last_mut()
                .expect("one chunk at least")
                .push(member.clone());
        }
        chunks
    }
}
