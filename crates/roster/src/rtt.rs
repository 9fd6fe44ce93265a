//! `roster rtt`: the round trip between two members that their network coordinates estimate, read from a
//! running agent's `GET /v1/coordinates`; nothing is sent to the members themselves.

use anyhow::Context;
use clap::Args;
use roster_agent::{CoordinatesInfo, RttError};

use crate::BadInput;
use crate::client::{self, HttpArgs};

#[derive(Debug, Args)]
pub struct RttArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// A member
    pub a: String,
    /// Another member [default: the agent asked]
    pub b: Option<String>,
}

pub fn rtt(args: &RttArgs) -> anyhow::Result<()> {
    let body = client::get(&args.http, "/v1/coordinates")?;
    let coordinates: CoordinatesInfo =
        serde_json::from_str(&body).context("the agent's /v1/coordinates did not parse")?;
    let b = args.b.as_deref().unwrap_or(&coordinates.name);
    let rtt = coordinates.estimated_rtt(&args.a, b).map_err(|e| match e {
        // A name the list does not hold is the operator's to fix; a coordinate not learned yet is not.
        RttError::UnknownMember(_) => anyhow::Error::new(BadInput(e.to_string())),
        RttError::NoCoordinate(_) => anyhow::Error::new(e),
    })?;
    println!(
        "estimated {} <-> {} rtt: {:.3} ms",
        args.a,
        b,
        rtt.as_secs_f64() * 1000.0
    );
    Ok(())
}
