//! The outbox: packets and streams to send, encoded for each receiver's wire version with queued news filling
//! the room left, and the events to report.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;

use super::{Node, Sender};
use crate::broadcast::{Priority, RetiredFailure};
use crate::codec::{self};
use crate::event::{Change, ChangeKind, Event, Via};
use crate::member::{Identity, Member};
use crate::message::{Message, Update};

/// How a transmit must travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One datagram (UDP in the agent). May be lost.
    Udp,
    /// A reliable stream (a TCP connection in the agent): open a connection to `to`, write the bytes, read the
    /// reply until the peer closes, and hand a non-empty reply to [`Node::handle_stream`] as coming from `to`.
    Stream,
}

/// Bytes the driver must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// The encoded packet (a whole frame, for a stream).
    pub bytes: Vec<u8>,
}

impl<R: Rng> Node<R> {
    /// Sends `messages` back to the sender of the packet being handled, within its reply budget: news fills
    /// only what the budget leaves, `priority` goes only if it fits, and a reply that cannot fit is not sent.
    pub(super) fn reply(
        &mut self,
        sender: &Sender,
        messages: &[Message],
        priority: Option<&Update>,
    ) {
        self.send_within(
            sender.addr,
            sender.identity.clone(),
            messages,
            priority,
            sender.reply_budget,
        );
    }

    /// Sends `messages` to `to` in one datagram, with `priority` next and queued updates filling the rest.
    pub(super) fn send(
        &mut self,
        to: SocketAddr,
        receiver: Option<Arc<Identity>>,
        messages: &[Message],
        priority: Option<&Update>,
    ) {
        self.send_within(to, receiver, messages, priority, usize::MAX);
    }

    /// [`Node::send`] in at most `budget` bytes (and the MTU).
    pub(super) fn send_within(
        &mut self,
        to: SocketAddr,
        receiver: Option<Arc<Identity>>,
        messages: &[Message],
        priority: Option<&Update>,
        budget: usize,
    ) {
        let version = self.version_for(receiver.as_deref());
        let mut buf = Vec::with_capacity(64);
        codec::encode_header(&mut buf, version, &self.name);
        let header = buf.len();
        for message in messages.iter().filter(|m| m.since_version() <= version) {
            codec::encode_message(&mut buf, message);
        }
        if buf.len() > budget {
            return;
        }
        self.coordinates.attach(&mut buf, version, messages, budget);
        let mut priority = priority;
        if let Some(update) = priority {
            let before = buf.len();
            codec::encode_update(&mut buf, update);
            if buf.len() > budget {
                if messages.is_empty() {
                    // The update was all there was to say.
                    return;
                }
                buf.truncate(before);
                priority = None;
            }
        }
        let members = self.list.active_count();
        let limits = (
            self.config.retransmit_limit(members, false),
            self.config.retransmit_limit(members, true),
        );
        let mut retired = Vec::new();
        let skip = priority.map(|u| u.member.name());
        self.broadcasts.fill(
            &mut buf,
            self.config.mtu.min(budget),
            limits,
            receiver.as_ref(),
            version,
            skip,
            &mut retired,
        );
        self.report_retired(retired);
        if buf.len() == header {
            // Nothing this receiver's version can read.
            return;
        }
        self.transmits.push_back(Transmit {
            to,
            transport: Transport::Udp,
            bytes: buf,
        });
    }

    /// The wire version to speak to `receiver`: the newest both speak, or the oldest to someone unknown.
    pub(super) fn version_for(&self, receiver: Option<&Identity>) -> u8 {
        receiver
            .map_or(codec::OLDEST_VERSION, Identity::wire_version)
            .clamp(codec::OLDEST_VERSION, self.config.wire_version)
    }

    pub(super) fn send_stream(
        &mut self,
        to: SocketAddr,
        receiver: Option<Arc<Identity>>,
        message: Message,
    ) {
        let version = self.version_for(receiver.as_deref());
        let bytes = codec::encode_packet_at(version, &self.name, &[message]);
        self.transmits.push_back(Transmit {
            to,
            transport: Transport::Stream,
            bytes,
        });
    }

    pub(super) fn report_retired(&mut self, retired: Vec<RetiredFailure>) {
        for RetiredFailure { member, to } in retired {
            self.events.push_back(Event::FailureSent { member, to });
        }
    }

    /// Queues news to gossip.
    pub(super) fn enqueue(&mut self, update: Update, priority: Priority) {
        if let Some(retired) = self.broadcasts.push(&update, priority) {
            self.report_retired(vec![retired]);
        }
    }

    pub(super) fn push_change(
        &mut self,
        kind: ChangeKind,
        member: Member,
        previous: Option<Member>,
        via: Via,
        from: Option<Arc<Identity>>,
    ) {
        self.events.push_back(Event::Changed(Change {
            kind,
            member,
            previous,
            via,
            from,
        }));
    }
}
