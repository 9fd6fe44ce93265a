//! `roster trace`: how one change travelled. Reads the event logs of many machines (files, data directories,
//! or a directory of data directories), finds the change, and shows when each list learned it and from whom:
//! the first detector, the last to hear, the tree of who told whom, and what the clocks allow. Text for the
//! terminal, SVG or HTML for a report, JSON for a program.

mod picture;
mod spread;
mod text;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use roster_eventlog::{Kind, parse_rfc3339_ms, read_logs};

pub use self::spread::{Query, Spread};
use crate::BadInput;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Svg,
    Html,
    Json,
}

/// `roster trace`'s flags.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The member whose change to trace
    pub member: String,
    /// Event logs: events.jsonl files, data directories, or a directory holding a cluster's data directories
    #[arg(required = true, value_name = "LOG_OR_DIR")]
    pub logs: Vec<PathBuf>,
    /// The change: failed, leave (or left), join, suspect, alive, update, conflict [default: failed, else
    /// leave, suspect, join, whichever the logs hold]
    #[arg(long, value_name = "EVENT", value_parser = parse_kind)]
    pub event: Option<Kind>,
    /// The instance, by its start as the logs write it (2026-11-29T21:02:10.004Z) [default: the earliest change]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub joined_at: Option<u64>,
    /// The incarnation, for a change that can happen at several (suspect, alive, update)
    #[arg(long, value_name = "N")]
    pub incarnation: Option<u32>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the output to this file instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
        .map_err(|e: roster_eventlog::ParseError| e.to_string())
}

fn parse_time(s: &str) -> Result<u64, String> {
    parse_rfc3339_ms(s).ok_or_else(|| format!("{s:?} is not a time like 2026-11-29T21:02:10.004Z"))
}

/// Traces one change through logs already read: the spread, or why there is none.
pub fn trace(records: &[roster_eventlog::Record], query: &Query) -> anyhow::Result<Spread> {
    Spread::of(records, query).map_err(|e| BadInput(e.to_string()).into())
}

/// The spread rendered in `format`.
pub fn render(spread: &Spread, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Text => text::render(spread),
        Format::Svg => picture::svg(spread),
        Format::Html => picture::html(spread),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(spread)?),
    })
}

/// A few lines for a person who has no time for the whole trace.
pub fn short(spread: &Spread) -> Vec<String> {
    let mut lines = vec![text::headline(spread)];
    lines.extend(text::summary(spread));
    lines
}

/// Runs `roster trace`.
pub fn run(args: &TraceArgs) -> anyhow::Result<()> {
    let records = read_logs(&args.logs).map_err(|e| BadInput(e.to_string()))?;
    let query = Query {
        member: args.member.clone(),
        kind: args.event,
        joined_at_ms: args.joined_at,
        incarnation: args.incarnation,
    };
    let spread = trace(&records, &query)?;
    let out = render(&spread, args.format)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, out)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{out}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
