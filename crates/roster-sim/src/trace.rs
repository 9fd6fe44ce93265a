//! Event traces as lines a person reads: what one member went through, as every list saw it.

use std::fmt::Write as _;
use std::time::Duration;

use roster_core::Event;

/// One traced event as a line, if it concerns `member` (a name).
pub fn line(at: Duration, reporter: &str, event: &Event, member: &str) -> Option<String> {
    let text = match event {
        Event::Changed(c) if c.member.name() == member => format!(
            "{} {}@{}#{} inc {} via {}{}",
            c.kind.as_str(),
            c.member.name(),
            c.member.identity.addr(),
            c.member.identity.joined_at_ms(),
            c.member.incarnation,
            c.via.as_str(),
            c.from
                .as_ref()
                .map(|f| format!(" from {}", f.name()))
                .unwrap_or_default()
        ),
        Event::Probed { target, outcome } if target.name() == member => {
            format!("probed {member}: {outcome:?}")
        }
        Event::FailureSent { member: m, to } if m.name() == member => {
            format!("failure notice of {member} sent to {} members", to.len())
        }
        Event::Conflict { local, other, .. } if local.name() == member => format!(
            "conflict over {member}: {:?} against {:?}",
            local.identity, other.identity
        ),
        _ => return None,
    };
    let mut out = String::new();
    let _ = write!(out, "{:>9.3}s {reporter:>7}: {text}", at.as_secs_f64());
    Some(out)
}

/// The lines of `trace` about `member`, in order.
pub fn lines(
    trace: &[(Duration, usize, Event)],
    member: &str,
    name_of: impl Fn(usize) -> String,
) -> Vec<String> {
    trace
        .iter()
        .filter_map(|(at, node, event)| line(*at, &name_of(*node), event, member))
        .collect()
}
