//! `roster members`: the list a running agent holds, as a table or JSON, filtered by state and by tags, with
//! every field and the agent's own version in `--detailed`.

use std::io::Write;

use anyhow::Context;
use clap::{Args, ValueEnum};
use roster_agent::{MemberInfo, SelfInfo};

use crate::client::{self, HttpArgs};

#[derive(Debug, Args)]
pub struct MembersArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Every field (joined_at in milliseconds too), and the agent's own version
    #[arg(long)]
    pub detailed: bool,
    /// Only members in this state; repeat for more
    #[arg(long = "status", value_enum, value_name = "STATE")]
    pub status: Vec<Status>,
    /// Only members with this tag; repeat for more (all must hold)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A member's state, as `--status` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Status {
    Alive,
    Suspect,
    Failed,
    Left,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Alive => roster_agent::State::Alive.as_str(),
            Status::Suspect => roster_agent::State::Suspect.as_str(),
            Status::Failed => roster_agent::State::Failed.as_str(),
            Status::Left => roster_agent::State::Left.as_str(),
        }
    }
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not a tag like role=web")),
    }
}

impl MembersArgs {
    /// Whether `member` passes the filters.
    fn wants(&self, member: &MemberInfo) -> bool {
        (self.status.is_empty() || self.status.iter().any(|s| s.word() == member.state))
            && self
                .tags
                .iter()
                .all(|(k, v)| member.tags.get(k).is_some_and(|have| have == v))
    }
}

pub fn members(args: &MembersArgs) -> anyhow::Result<()> {
    let body = client::get(&args.http, "/v1/members")?;
    let mut members: Vec<MemberInfo> =
        serde_json::from_str(&body).context("the agent's member list did not parse")?;
    members.retain(|m| args.wants(m));
    let mut out = std::io::stdout().lock();
    if args.detailed {
        let local: SelfInfo = serde_json::from_str(&client::get(&args.http, "/v1/self")?)
            .context("the agent's /v1/self did not parse")?;
        return detailed(&mut out, args.format, &local, &members);
    }
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&members)?)?,
        Format::Table => {
            let width = name_width(&members);
            writeln!(
                out,
                "{:width$}  {:<22}  {:<7}  {:>4}  {:<24}  {:>8}  TAGS",
                "NAME", "ADDR", "STATE", "INC", "JOINED_AT", "RTT_MS"
            )?;
            for m in &members {
                writeln!(
                    out,
                    "{:width$}  {:<22}  {:<7}  {:>4}  {:<24}  {:>8}  {}",
                    m.name,
                    m.addr.to_string(),
                    m.state,
                    m.incarnation,
                    m.joined_at,
                    rtt(m),
                    tags(m)
                )?;
            }
        }
    }
    Ok(())
}

fn name_width(members: &[MemberInfo]) -> usize {
    members
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4)
}

fn rtt(m: &MemberInfo) -> String {
    m.rtt_ms.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

fn tags(m: &MemberInfo) -> String {
    if m.tags.is_empty() {
        return "-".to_owned();
    }
    let pairs: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(",")
}

/// `members --detailed`: the agent's own version first, then every field of every member.
fn detailed(
    out: &mut impl Write,
    format: Format,
    local: &SelfInfo,
    members: &[MemberInfo],
) -> anyhow::Result<()> {
    if format == Format::Json {
        let doc = serde_json::json!({ "agent": local, "members": members });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "agent {} running roster {} (wire version {}), health score {}",
        local.member.name, local.version, local.protocol_version, local.health_score
    )?;
    let width = name_width(members);
    writeln!(
        out,
        "{:width$}  {:<22}  {:<7}  {:>4}  {:<24}  {:>14}  {:>8}  TAGS",
        "NAME", "ADDR", "STATE", "INC", "JOINED_AT", "JOINED_AT_MS", "RTT_MS"
    )?;
    for m in members {
        writeln!(
            out,
            "{:width$}  {:<22}  {:<7}  {:>4}  {:<24}  {:>14}  {:>8}  {}",
            m.name,
            m.addr.to_string(),
            m.state,
            m.incarnation,
            m.joined_at,
            m.joined_at_ms,
            rtt(m),
            tags(m)
        )?;
    }
    Ok(())
}
