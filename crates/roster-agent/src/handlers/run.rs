//! Running one handler program on what happened: its environment and standard input, its timeout, its failure
//! logged, and for a query its standard output sent back as the answer.

use std::process::Stdio;
use std::time::Duration;

use roster_core::query::MAX_ANSWER_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{EventHandler, Happened, STDERR_KEPT, SelfInfo};
use crate::driver::Command;
use crate::user_events::EventCommand;

pub(super) async fn run_one(
    handler: &EventHandler,
    happened: &Happened,
    me: &SelfInfo,
    timeout: Duration,
    commands: &mpsc::Sender<Command>,
) {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&handler.program)
        .env("ROSTER_EVENT", happened.word())
        .env("ROSTER_SELF_NAME", &me.name)
        .env("ROSTER_SELF_ADDR", &me.addr)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let (input, timeout) = match happened {
        Happened::Member { members, .. } => (
            members
                .iter()
                .flat_map(|m| m.line.as_bytes())
                .copied()
                .collect(),
            timeout,
        ),
        Happened::User {
            name,
            payload,
            ltime,
            origin,
        } => {
            command
                .env("ROSTER_USER_EVENT", name)
                .env("ROSTER_USER_LTIME", ltime.to_string())
                .env("ROSTER_EVENT_ORIGIN", origin);
            (payload.clone(), timeout)
        }
        Happened::Query {
            id,
            name,
            payload,
            ltime,
            timeout: left,
        } => {
            command
                .env("ROSTER_QUERY_NAME", name)
                .env("ROSTER_QUERY_ID", id.id.to_string())
                .env("ROSTER_QUERY_LTIME", ltime.to_string())
                .env("ROSTER_EVENT_ORIGIN", &*id.origin);
            (payload.clone(), timeout.min(*left))
        }
    };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(program = %handler.program, error = %e, "event handler did not start");
            return;
        }
    };
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        if let Some(stdin) = stdin.as_mut() {
            // A handler that does not read its input is fine.
            let _ = stdin.write_all(&input).await;
        }
        drop(stdin.take());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(stdout) = stdout.as_mut() {
                let _ = stdout
                    .take(MAX_ANSWER_BYTES as u64 + 1)
                    .read_to_end(&mut out)
                    .await;
            }
        };
        let read_err = async {
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.take(STDERR_KEPT as u64).read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        (child.wait().await, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            // Dropping the child kills it.
            tracing::warn!(program = %handler.program, event = happened.word(), ?timeout, "event handler killed at its timeout");
            return;
        }
    };
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            tracing::warn!(
                program = %handler.program,
                event = happened.word(),
                %status,
                stderr = %String::from_utf8_lossy(&err).trim(),
                "event handler failed"
            );
            return;
        }
        Err(e) => {
            tracing::error!(program = %handler.program, error = %e, "event handler could not be waited for");
            return;
        }
    }
    if let Happened::Query { id, .. } = happened {
        if out.len() > MAX_ANSWER_BYTES {
            tracing::warn!(
                program = %handler.program,
                query = %id,
                "the handler's answer is over {MAX_ANSWER_BYTES} bytes; it was not sent"
            );
            return;
        }
        let answer = EventCommand::Answer {
            id: id.clone(),
            payload: out,
            reply: None,
        };
        let _ = commands.send(Command::Events(answer)).await;
    }
}
