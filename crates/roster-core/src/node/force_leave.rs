//! Forcing a failed member out of every list (Serf's `force-leave`): an operator who knows a failed member will
//! not come back has it marked `left` instead, so that nobody keeps trying to reconnect to it and every list
//! reaps it on the shorter left timeout.
//!
//! The claim is made at the failed instance's own identity and incarnation, so it outranks `failed` by
//! precedence alone (left > failed at equal incarnation) and spreads like any other news. Should the member turn
//! out to be alive after all (cut off, not crashed), it refutes the claim like any other about itself.

use rand::Rng;

use super::Node;
use crate::event::Via;
use crate::member::{Member, State};
use crate::time::Time;

/// Why a force-leave was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForceLeaveError {
    /// No member of that name is in the list.
    #[error("no member named {name:?} is in the list")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The member is alive or suspect: it may still answer, and would refute the claim at once.
    #[error("{name} is {state}, not failed: only a failed member can be forced to leave")]
    NotFailed {
        /// The member.
        name: String,
        /// The state this list holds it in.
        state: State,
    },
    /// The name is this node's own: a node leaves with [`Node::leave`].
    #[error("{name} is this member itself: leave instead")]
    Local {
        /// This node's name.
        name: String,
    },
}

/// What a force-leave did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForceLeft {
    /// The failed member is now `left` here, and the news is on its way to the others.
    Marked,
    /// The member had already left: nothing to do.
    AlreadyLeft,
}

impl<R: Rng> Node<R> {
    /// Marks the failed member `name` as left in this list and tells the others. Refused for a member that is
    /// alive, suspect, unknown, or this node itself.
    pub fn force_leave(&mut self, now: Time, name: &str) -> Result<ForceLeft, ForceLeaveError> {
        self.start(now);
        if name == &*self.name {
            return Err(ForceLeaveError::Local {
                name: name.to_owned(),
            });
        }
        let member = self
            .list
            .get(name)
            .cloned()
            .ok_or_else(|| ForceLeaveError::Unknown {
                name: name.to_owned(),
            })?;
        match member.state {
            State::Alive | State::Suspect => Err(ForceLeaveError::NotFailed {
                name: name.to_owned(),
                state: member.state,
            }),
            State::Left => Ok(ForceLeft::AlreadyLeft),
            State::Failed => {
                let claim = Member::new(member.identity, member.incarnation, State::Left);
                let sender = self.as_sender();
                self.apply(now, claim, None, Via::ForceLeave, &sender, false);
                self.next_gossip = self.next_gossip.min(now);
                Ok(ForceLeft::Marked)
            }
        }
    }
}
