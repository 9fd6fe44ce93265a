//! Inputs from the network: a datagram or a stream message, decoded, its sender identified, and each message
//! handed to the part it concerns.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;

use super::{CATCH_UP_SYNCS, Node, Sender};
use crate::codec::{self, DecodeError};
use crate::event::{Event, Via};
use crate::message::{Message, Update};
use crate::time::Time;

impl<R: Rng> Node<R> {
    /// A datagram arrived from `from`.
    pub fn handle_packet(
        &mut self,
        now: Time,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        let handled = self.receive_packet(now, from, bytes);
        self.finish_leave(now);
        handled
    }

    fn receive_packet(
        &mut self,
        now: Time,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        self.start(now);
        let packet = codec::decode_packet_upto(bytes, self.config.wire_version)
            .inspect_err(|_| self.stats.undecodable += 1)?;
        // Acks and nacks are matched by sequence number; only pings, ping-reqs and news need the sender's entry,
        // and in a large list that lookup is the costliest part of handling an ack.
        let identify = packet.messages.iter().any(|m| {
            !matches!(
                m,
                Message::Ack { .. } | Message::Nack { .. } | Message::Coordinate(_)
            )
        });
        let Some(mut sender) = self.sender(now, packet.sender, from, identify, Some(bytes.len()))
        else {
            return Ok(());
        };
        sender.probing = packet
            .messages
            .iter()
            .any(|m| matches!(m, Message::Ping { target, .. } if **target == *self.name));
        for message in packet.messages {
            match message {
                Message::Ping {
                    seq,
                    target,
                    round_clock,
                } => {
                    if *target == *self.name {
                        self.pinged_at = now;
                        if let Some(stamp) = round_clock {
                            // The prober's round clock, one way: half the usual round trip late.
                            let trip = self.rtt.smoothed().unwrap_or(self.config.max_rtt);
                            self.sample_round_clock(now, stamp, trip);
                        }
                        // A prober this list knows at another address is a second live process with a taken
                        // name (or a member behind NAT), and one it holds as failed (or forced out as left) is
                        // back (a long pause, a partition healed): tell it what the list holds, which settles a
                        // conflict at once and lets a member that is alive after all refute now rather than at
                        // the next sync, or never, once nobody tries to reconnect to it. A
                        // datagram's source can be forged, so for a prober this list does not hold at that address
                        // the record goes over a stream (whose handshake reaches nothing that does not answer), at
                        // most once per probe interval; a member at its own address gets it with the ack.
                        let moved = sender.identity.as_ref().is_some_and(|id| id.addr() != from);
                        let held = self.list.get(&sender.name);
                        // Reaped here: the grave is what this list holds of it.
                        let grave = held
                            .is_none()
                            .then(|| self.graves.get(&sender.name))
                            .flatten();
                        let stranger = held.is_none() && grave.is_none() && self.participating();
                        let record = match held {
                            Some(m) => (moved || !m.state.is_active()).then(|| m.clone()),
                            None => grave.map(|g| g.claim()),
                        }
                        .map(|member| Update {
                            member,
                            accuser: None,
                        });
                        if stranger && now >= self.next_stranger_sync {
                            // A member this list has never heard of pings it: the news of its join missed
                            // this list (news retires after a few sends, and a full sync may be 30 s away).
                            // Ask it for its list, over a stream, whose handshake a forged source fails.
                            self.next_stranger_sync = now + self.config.probe_interval;
                            self.request_sync_at(from);
                        }
                        let ack = self.ack_for(now, &sender, seq);
                        match record {
                            Some(record) if sender.reply_budget != usize::MAX => {
                                if now >= self.next_conflict_notice {
                                    self.send_stream(
                                        from,
                                        sender.identity.clone(),
                                        Message::Update(record),
                                    );
                                    self.next_conflict_notice = now + self.config.probe_interval;
                                }
                                self.reply(&sender, &[ack], None);
                            }
                            record => self.reply(&sender, &[ack], record.as_ref()),
                        }
                    } else {
                        self.stats.misdirected += 1;
                    }
                }
                Message::Ack { seq, round_clock } => {
                    self.on_ack(now, seq, &sender, false, round_clock)
                }
                Message::Nack { seq } => {
                    self.exchanges.count_nack(seq);
                }
                Message::PingReq { seq, target, addr } => {
                    self.relay(now, &sender, seq, target, addr)
                }
                Message::Update(update) => self.apply(
                    now,
                    update.member,
                    update.accuser,
                    Via::Gossip,
                    &sender,
                    false,
                ),
                Message::Conflict { holder, claimant } => self.note_conflict(holder, claimant),
                Message::UserEvent(event) => self.hear_user_event(event),
                Message::Query(query) => self.hear_query(now, query),
                Message::QueryAnswer(answer) => self.hear_answer(&sender, answer),
                Message::Coordinate(coordinate) => {
                    // Only a member this list holds at the address it sends from may place itself.
                    let known = sender.identity.is_some() && sender.reply_budget == usize::MAX;
                    self.coordinates.heard(&sender.name, known, coordinate)
                }
                Message::SyncRequest { .. }
                | Message::SyncResponse { .. }
                | Message::SyncPush { .. }
                | Message::Clocks { .. } => {
                    // A whole list belongs on a stream; a datagram claiming to carry one is not ours.
                    self.stats.misdirected += 1;
                }
            }
        }
        self.coordinates.end_packet();
        for correction in std::mem::take(&mut self.corrections) {
            self.reply(&sender, &[], Some(&correction));
        }
        Ok(())
    }

    /// A stream message arrived from `from`; the returned bytes, if any, go back on the same stream.
    pub fn handle_stream(
        &mut self,
        now: Time,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        let answer = self.receive_stream(now, from, bytes);
        self.finish_leave(now);
        answer
    }

    fn receive_stream(
        &mut self,
        now: Time,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        self.start(now);
        let packet = codec::decode_packet_upto(bytes, self.config.wire_version)
            .inspect_err(|_| self.stats.undecodable += 1)?;
        // The answer goes back in the version the question came in.
        let version = packet.version;
        if *packet.sender == *self.name {
            // Another process calls itself by this node's name. Asking to join, it is told the name is taken;
            // holding the name, it says so in its answer to this node's own request.
            let other = Sender {
                name: Arc::clone(&self.name),
                addr: from,
                identity: None,
                alive: false,
                reply_budget: usize::MAX,
                probing: false,
            };
            for message in &packet.messages {
                if let Message::SyncResponse { members, .. } = message {
                    self.name_taken = false;
                    for claim in members {
                        self.apply(now, claim.clone(), None, Via::Sync, &other, true);
                    }
                }
            }
            let refusal = packet.messages.iter().find_map(|m| match m {
                Message::SyncRequest {
                    join: true,
                    members,
                    ..
                } => self.refused_join(members),
                _ => None,
            });
            return Ok(refusal.map(|holder| {
                let answer = self.refusal(holder);
                codec::encode_packet_at(version, &self.name, &[answer])
            }));
        }
        let Some(mut sender) = self.sender(now, packet.sender, from, true, None) else {
            return Ok(None);
        };
        // Clocks that come with a seed's answer to this node's join are the cluster's before it arrived.
        let joining = self.join.is_some();
        let mut reply = Vec::new();
        for message in packet.messages {
            match message {
                Message::Ping { seq, target, .. } if *target == *self.name => {
                    reply.push(Message::Ack {
                        seq,
                        round_clock: None,
                    })
                }
                Message::Ack { seq, .. } => self.on_ack(now, seq, &sender, true, None),
                Message::Update(update) => self.apply(
                    now,
                    update.member,
                    update.accuser,
                    Via::Gossip,
                    &sender,
                    false,
                ),
                Message::SyncRequest {
                    digest,
                    join,
                    members,
                } => {
                    if join && let Some(holder) = self.refused_join(&members) {
                        // The joiner learns who holds its name, and whom to ask again; nothing else.
                        let refusal = self.refusal(holder);
                        reply.push(refusal);
                        continue;
                    }
                    self.merge(now, members, &mut sender);
                    // Matching digests mean matching lists: answer with the digest alone.
                    let mut chunks = if join || digest != self.list.digest() {
                        self.list_in_chunks()
                    } else {
                        vec![Vec::new()]
                    };
                    let rest = chunks.split_off(1);
                    reply.push(Message::SyncResponse {
                        digest: self.list.digest(),
                        members: chunks.pop().unwrap_or_default(),
                    });
                    reply.push(self.clocks());
                    // A list too large for one frame goes on in pushes, each a frame of its own.
                    let to = sender.identity.as_ref().map_or(from, |id| id.addr());
                    for chunk in rest {
                        self.send_stream(
                            to,
                            sender.identity.clone(),
                            Message::SyncPush { members: chunk },
                        );
                    }
                }
                Message::SyncResponse { digest, members } => {
                    let full = !members.is_empty();
                    self.name_taken = false;
                    if self.standby {
                        // What a node on standby held is stale (nobody told it of changes): it takes the
                        // answer's view whole, a few members to ask again or the seed's whole list.
                        self.forget_members();
                    }
                    let bytes: usize = members.iter().map(codec::member_len).sum();
                    self.quiet_merge = self.join.is_some() && bytes > self.config.mtu;
                    self.merge(now, members, &mut sender);
                    self.quiet_merge = false;
                    // A seed answered, and this node's name is not held by another live process there.
                    if self.join.is_some() && !self.name_taken {
                        self.join = None;
                        self.standby = false;
                        let through = sender
                            .identity
                            .clone()
                            .unwrap_or_else(|| self.list.local().identity.clone());
                        self.events.push_back(Event::Joined { through });
                        // News that was still spreading while the seed answered (another member joining at
                        // the same moment, say) may have retired before reaching this node: catch up with a
                        // few quick syncs with other members, cheap when the digests already match.
                        self.catch_up_syncs = CATCH_UP_SYNCS.len();
                        self.next_sync = now + CATCH_UP_SYNCS[0];
                    }
                    if full && digest != self.list.digest() && self.participating() {
                        for chunk in self.list_in_chunks() {
                            self.send_stream(
                                from,
                                sender.identity.clone(),
                                Message::SyncPush { members: chunk },
                            );
                        }
                    }
                }
                Message::SyncPush { members } => self.merge(now, members, &mut sender),
                Message::Conflict { holder, claimant } => self.note_conflict(holder, claimant),
                Message::Clocks { event, query } => self.take_clocks(event, query, joining),
                Message::UserEvent(event) => self.hear_user_event(event),
                Message::Query(query) => self.hear_query(now, query),
                Message::Ping { .. }
                | Message::Nack { .. }
                | Message::PingReq { .. }
                | Message::QueryAnswer(_)
                | Message::Coordinate(_) => self.stats.misdirected += 1,
            }
        }
        reply.extend(self.corrections.drain(..).map(Message::Update));
        // A joiner asks in the oldest version, not knowing what the seed speaks; its record (now in the list)
        // says what it speaks, and the answer may use that.
        let version = sender
            .identity
            .as_deref()
            .map_or(version, |id| self.version_for(Some(id)).max(version));
        Ok((!reply.is_empty()).then(|| codec::encode_packet_at(version, &self.name, &reply)))
    }
}
