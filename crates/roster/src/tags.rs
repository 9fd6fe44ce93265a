//! `roster tags`: show this member's tags, or change them live through a running agent (as the operator, with
//! the agent's token). The other members see the change like any other update; with a data directory it
//! survives a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use roster_agent::SelfInfo;
use serde_json::json;

use crate::client::{self, HttpArgs};

#[derive(Debug, Subcommand)]
pub enum TagsCommand {
    /// Print this member's tags, one KEY=VALUE a line.
    List(HttpArgs),
    /// Set tags (adding or replacing each key).
    Set(SetArgs),
    /// Delete tags by key (a key the member does not have is no error).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The tags, KEY=VALUE
    #[arg(required = true, value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The keys
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,
    #[command(flatten)]
    pub http: HttpArgs,
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not a tag like role=web")),
    }
}

pub fn run(command: TagsCommand) -> anyhow::Result<()> {
    let (http, body) = match command {
        TagsCommand::List(http) => {
            let local: SelfInfo = serde_json::from_str(&client::get(&http, "/v1/self")?)
                .context("the agent's /v1/self did not parse")?;
            print(&local.member.tags);
            return Ok(());
        }
        TagsCommand::Set(args) => {
            let set: BTreeMap<String, String> = args.tags.into_iter().collect();
            (args.http, json!({ "set": set }))
        }
        TagsCommand::Delete(args) => (args.http, json!({ "delete": args.keys })),
    };
    let reply = client::act_json(
        &http,
        "/v1/tags",
        &body.to_string(),
        Duration::from_secs(10),
    )?;
    let tags: BTreeMap<String, String> =
        serde_json::from_value(reply["tags"].clone()).context("the agent's answer has no tags")?;
    print(&tags);
    Ok(())
}

fn print(tags: &BTreeMap<String, String>) {
    for (key, value) in tags {
        println!("{key}={value}");
    }
}
