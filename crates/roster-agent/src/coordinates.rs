//! Network coordinates as the library and the HTTP API show them (`GET /v1/coordinates`): this member's, every
//! member's this agent holds, and the round trip two of them estimate. The JSON bodies are public so that a
//! client such as `roster rtt` reads them with the same types and the same estimate the agent uses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use roster_core::Coordinate;
use serde::{Deserialize, Serialize};

use crate::driver::{CoreState, Shared};

/// Why a round trip could not be estimated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RttError {
    /// The list holds no member of that name.
    #[error("no member named {0:?} is known to this agent")]
    UnknownMember(String),
    /// The member is known, but has sent no coordinate yet (or, for this agent itself, none of its probes
    /// has been answered with one): it may be new, or speak an older wire version.
    #[error("member {0:?} has no network coordinate yet")]
    NoCoordinate(String),
}

/// A coordinate as JSON: its parts in seconds, and its error estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoordinateInfo {
    /// The Euclidean position, eight components, in seconds.
    pub vec: Vec<f64>,
    /// How unsure it is: 1.5 for one that learned nothing, towards 0 as its estimates prove right.
    pub error: f64,
    /// Added to every distance from it, in seconds.
    pub adjustment: f64,
    /// The member's own access link, in seconds.
    pub height: f64,
}

impl From<&Coordinate> for CoordinateInfo {
    fn from(c: &Coordinate) -> CoordinateInfo {
        CoordinateInfo {
            vec: c.vec().to_vec(),
            error: c.error(),
            adjustment: c.adjustment(),
            height: c.height(),
        }
    }
}

impl CoordinateInfo {
    /// The coordinate it shows; `None` for one that is malformed (wrong length, not finite).
    pub fn coordinate(&self) -> Option<Coordinate> {
        let vec = self.vec.as_slice().try_into().ok()?;
        Coordinate::new(vec, self.error, self.adjustment, self.height).ok()
    }
}

/// `GET /v1/coordinates`: this agent's coordinate and every member's it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoordinatesInfo {
    /// This member's name.
    pub name: String,
    /// This member's coordinate, once one of its probes taught it something.
    pub coordinate: Option<CoordinateInfo>,
    /// Round trips that have moved this member's coordinate.
    pub updates: u64,
    /// Every other member of the list, with the coordinate it last sent (`null` when none yet).
    pub members: BTreeMap<String, Option<CoordinateInfo>>,
}

impl CoordinatesInfo {
    pub(crate) fn read(state: &CoreState) -> CoordinatesInfo {
        let node = &state.node;
        let name = node.local().name().to_owned();
        let members = node
            .members()
            .filter(|m| m.name() != name)
            .map(|m| {
                let coordinate = node.coordinate_of(m.name()).map(CoordinateInfo::from);
                (m.name().to_owned(), coordinate)
            })
            .collect();
        CoordinatesInfo {
            coordinate: (node.coordinate_updates() > 0)
                .then(|| CoordinateInfo::from(node.coordinate())),
            updates: node.coordinate_updates(),
            name,
            members,
        }
    }

    /// The coordinate of member `name` (this agent's own by its name).
    pub fn coordinate_of(&self, name: &str) -> Result<Coordinate, RttError> {
        let info = if name == self.name {
            self.coordinate.as_ref()
        } else {
            self.members
                .get(name)
                .ok_or_else(|| RttError::UnknownMember(name.to_owned()))?
                .as_ref()
        };
        info.and_then(CoordinateInfo::coordinate)
            .ok_or_else(|| RttError::NoCoordinate(name.to_owned()))
    }

    /// The round trip between members `a` and `b` that their coordinates estimate. A name the list does not
    /// hold is reported before a coordinate not learned yet.
    pub fn estimated_rtt(&self, a: &str, b: &str) -> Result<Duration, RttError> {
        if let Some(unknown) = [a, b]
            .into_iter()
            .find(|n| *n != self.name && !self.members.contains_key(*n))
        {
            return Err(RttError::UnknownMember(unknown.to_owned()));
        }
        Ok(self.coordinate_of(a)?.distance_to(&self.coordinate_of(b)?))
    }
}

pub(crate) async fn endpoint(State(shared): State<Arc<Shared>>) -> Json<CoordinatesInfo> {
    Json(CoordinatesInfo::read(&shared.lock()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(x: f64) -> CoordinateInfo {
        let mut vec = [0.0; 8];
        vec[0] = x;
        CoordinateInfo::from(&Coordinate::new(vec, 0.1, 0.0, 0.0).unwrap())
    }

    fn coordinates() -> CoordinatesInfo {
        CoordinatesInfo {
            name: "a".into(),
            coordinate: Some(info(0.0)),
            updates: 3,
            members: BTreeMap::from([
                ("b".to_owned(), Some(info(0.020))),
                ("c".to_owned(), None),
                ("d".to_owned(), Some(info(-0.010))),
            ]),
        }
    }

    #[test]
    fn a_round_trip_is_estimated_between_any_two_members_with_coordinates() {
        let c = coordinates();
        assert_eq!(c.estimated_rtt("a", "b").unwrap().as_millis(), 20);
        assert_eq!(c.estimated_rtt("b", "d").unwrap().as_millis(), 30);
    }

    #[test]
    fn an_unknown_member_and_one_without_a_coordinate_are_told_apart() {
        let c = coordinates();
        assert_eq!(
            c.estimated_rtt("a", "zz"),
            Err(RttError::UnknownMember("zz".into()))
        );
        assert_eq!(
            c.estimated_rtt("c", "a"),
            Err(RttError::NoCoordinate("c".into()))
        );
        let fresh = CoordinatesInfo {
            coordinate: None,
            updates: 0,
            ..coordinates()
        };
        assert_eq!(
            fresh.estimated_rtt("a", "b"),
            Err(RttError::NoCoordinate("a".into()))
        );
    }

    #[test]
    fn a_malformed_coordinate_counts_as_none() {
        let mut c = coordinates();
        c.members.insert(
            "e".into(),
            Some(CoordinateInfo {
                vec: vec![0.0; 3],
                ..info(0.0)
            }),
        );
        assert_eq!(
            c.estimated_rtt("a", "e"),
            Err(RttError::NoCoordinate("e".into()))
        );
    }
}
