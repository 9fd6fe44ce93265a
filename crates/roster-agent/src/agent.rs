//! [`Agent`]: a running member, as the program that started it holds it. It reads the list, follows events,
//! changes tags, sends user events and queries, forces failed members out, rotates keys and leaves; every
//! request goes to the driver, the one task that calls into the protocol.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roster_core::{ForceLeft, Meta, QueryFilter, QueryId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::SelfInfo;
use crate::control::OperatorToken;
use crate::driver::{Command, Shared};
use crate::error::AgentError;
use crate::health::Health;
use crate::keys::Keys;
use crate::member::Member;
use crate::metrics::AgentMetrics;
use crate::subscription::Subscription;
use crate::tags::{self, TagChange};
use crate::user_events::{self, EventCommand, QueryStream, SendRefused};

/// A running agent: one member of a cluster. Dropping it stops the agent at once, as a crash would (the others
/// fail it); [`Agent::leave`] leaves gracefully.
#[derive(Debug)]
pub struct Agent {
    pub(crate) shared: Arc<Shared>,
    pub(crate) driver: Option<JoinHandle<Result<(), AgentError>>>,
    pub(crate) http: Option<JoinHandle<()>>,
    pub(crate) metrics_http: Option<JoinHandle<()>>,
    pub(crate) addr: SocketAddr,
    pub(crate) http_addr: Option<SocketAddr>,
    pub(crate) metrics_addr: Option<SocketAddr>,
}

impl Agent {
    /// The address other members reach this one at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the HTTP API listens, if it does ([`AgentConfig::http`](crate::AgentConfig::http)).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Where the metrics listener of its own listens, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The token acting HTTP requests must carry, and the file it is in.
    pub fn http_token(&self) -> &OperatorToken {
        &self.shared.token
    }

    /// Every member of the list, this one first.
    pub fn members(&self) -> Vec<Member> {
        let state = self.shared.lock();
        state.node.members().map(|m| state.member(m)).collect()
    }

    /// The member named `name`, if the list holds it.
    pub fn member(&self, name: &str) -> Option<Member> {
        let state = self.shared.lock();
        state.node.member(name).map(|m| state.member(m))
    }

    /// This member, as the list holds it.
    pub fn local(&self) -> Member {
        let state = self.shared.lock();
        state.member(state.node.local())
    }

    /// This agent as `GET /v1/self` shows it: this member, its local health, its version.
    pub fn self_info(&self) -> SelfInfo {
        SelfInfo::read(&self.shared, &self.shared.lock())
    }

    /// Whether this agent is a working member, as `GET /v1/health` answers.
    pub fn health(&self) -> Health {
        Health::read(&self.shared, &self.shared.lock())
    }

    /// The events from now on, typed. A reader that falls behind is told how many it missed, and can read them
    /// back from the event log when the agent keeps one (see [`Subscription`]).
    ///
    /// ```
    /// # use roster_agent::{Agent, AgentConfig, Event, RecvError};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let mut config = AgentConfig::new("m1", "127.0.0.1:0".parse()?);
    /// config.data_dir = Some(dir.path().to_owned());
    /// let agent = Agent::start(config).await?;
    /// let mut events = agent.subscribe();
    /// // A reader busy elsewhere while 300 tag changes happen: more than the agent keeps for it.
    /// for i in 0..300 {
    ///     agent.set_tags([("tick", i.to_string())]).await?;
    /// }
    /// let mut seen = Vec::new();
    /// loop {
    ///     let events = match events.recv().await {
    ///         Ok(event) => vec![event],
    ///         Err(RecvError::Lagged(lagged)) => events.replay(&lagged).await?,
    ///         Err(RecvError::Closed) => break,
    ///     };
    ///     for event in events {
    ///         if let Event::Updated(member) = event {
    ///             seen.extend(member.tag("tick").map(str::to_owned));
    ///         }
    ///     }
    ///     if seen.len() == 300 {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(seen[299], "299");
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self) -> Subscription {
        // Under the lock the driver holds while it sends, so that no line falls between the two.
        let last = self
            .shared
            .last_line
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let rx = self.shared.events.subscribe();
        Subscription::new(
            rx,
            self.shared.stopped.clone(),
            self.shared.clock,
            last.clone(),
            self.shared.log_place.clone(),
        )
    }

    /// This member's tags.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.local().tags
    }

    /// Sets tags (adding or replacing each key), and tells the other members, which hear of it like any other
    /// change. Returns every tag in force afterwards. Refused, changing nothing, when the tags would pass their
    /// bounds ([`roster_core::MAX_META_BYTES`] bytes of keys and values,
    /// [`roster_core::MAX_META_ENTRIES`] entries) or a key starts with `roster.`. With a data directory
    /// the change survives a restart, unless the configured tags changed meanwhile.
    ///
    /// ```
    /// # use roster_agent::{Agent, AgentConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let agent = Agent::start(AgentConfig::new("m1", "127.0.0.1:0".parse()?)).await?;
    /// let tags = agent.set_tags([("role", "web"), ("zone", "a")]).await?;
    /// assert_eq!(tags.len(), 2);
    /// assert_eq!(agent.local().tag("role"), Some("web"));
    ///
    /// let too_big = agent.set_tags([("blob", "x".repeat(600))]).await.unwrap_err();
    /// assert!(too_big.to_string().ends_with("the limit is 500"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn set_tags<K, V>(
        &self,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Result<BTreeMap<String, String>, AgentError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let set = tags
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.change_tags(TagChange::Update {
            set,
            delete: Vec::new(),
        })
        .await
    }

    /// Deletes the tags with these keys (a key it does not have is no error); returns the tags in force.
    pub async fn delete_tags<K: Into<String>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<BTreeMap<String, String>, AgentError> {
        let delete = keys.into_iter().map(Into::into).collect();
        self.change_tags(TagChange::Update {
            set: Vec::new(),
            delete,
        })
        .await
    }

    /// Replaces every tag, as a new configuration does (`roster agent` calls it on SIGHUP): these become the
    /// configured tags that a restart compares the saved ones with.
    pub async fn replace_tags(&self, tags: Meta) -> Result<BTreeMap<String, String>, AgentError> {
        self.change_tags(TagChange::Replace(tags)).await
    }

    async fn change_tags(&self, change: TagChange) -> Result<BTreeMap<String, String>, AgentError> {
        let tags = tags::change(&self.shared, change)
            .await
            .ok_or(AgentError::Stopped)?
            .map_err(AgentError::InvalidTags)?;
        Ok(tags
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// Sends a user event to every member (this one included); returns its time on the event clock. An agent
    /// sends at most [`EVENTS_PER_SECOND`](crate::EVENTS_PER_SECOND) a second, in bursts of up to
    /// [`EVENT_BURST`](crate::EVENT_BURST); past that it refuses with [`AgentError::TooManyEvents`], saying
    /// when the next may go.
    pub async fn send_event(&self, name: &str, payload: &[u8]) -> Result<u64, AgentError> {
        let sent = user_events::ask(&self.shared, |reply| EventCommand::Send {
            name: name.to_owned(),
            payload: payload.to_vec(),
            reply,
        })
        .await
        .ok_or(AgentError::Stopped)?;
        sent.map_err(|refused| match refused {
            SendRefused::Event(e) => AgentError::Event(e),
            SendRefused::TooFast(retry_after) => AgentError::TooManyEvents { retry_after },
        })
    }

    /// Sends a query to the members `filter` matches; their answers arrive on the stream as they come, and the
    /// stream ends at `timeout` with who answered and who did not.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use roster_agent::{Agent, AgentConfig, Event, QueryFilter, QueryUpdate};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let agent = Agent::start(AgentConfig::new("m1", "127.0.0.1:0".parse()?)).await?;
    /// let mut asked = agent.subscribe();
    /// let mut answers = agent
    ///     .query("version", b"", QueryFilter::default(), Duration::from_millis(500))
    ///     .await?;
    /// assert_eq!(answers.expected, ["m1"]);
    /// // This member matches its own query: the program answers it.
    /// loop {
    ///     if let Ok(Event::Query(query)) = asked.recv().await {
    ///         agent.answer_query(&query.id, b"2.4.1").await?;
    ///         break;
    ///     }
    /// }
    /// let first = answers.next().await;
    /// assert_eq!(
    ///     first,
    ///     Some(QueryUpdate::Answer { from: "m1".into(), payload: b"2.4.1".to_vec() })
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub async fn query(
        &self,
        name: &str,
        payload: &[u8],
        filter: QueryFilter,
        timeout: Duration,
    ) -> Result<QueryStream, AgentError> {
        self.user_event_request(|reply| EventCommand::Query {
            name: name.to_owned(),
            payload: payload.to_vec(),
            filter,
            timeout,
            reply,
        })
        .await
    }

    /// Answers, once, a query this member was asked (an [`Event::Query`](crate::Event::Query)).
    pub async fn answer_query(&self, id: &QueryId, payload: &[u8]) -> Result<(), AgentError> {
        self.user_event_request(|reply| EventCommand::Answer {
            id: id.clone(),
            payload: payload.to_vec(),
            reply: Some(reply),
        })
        .await
    }

    async fn user_event_request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, roster_core::EventError>>) -> EventCommand,
    ) -> Result<T, AgentError> {
        user_events::ask(&self.shared, command)
            .await
            .ok_or(AgentError::Stopped)?
            .map_err(AgentError::Event)
    }

    /// Forces the failed member `name` out: every list marks it left instead of failed, stops trying to
    /// reconnect to it, and forgets it after the left timeout. Refused for a member that is alive, suspect or
    /// unknown (should it be alive after all, it refutes, and is alive again everywhere).
    ///
    /// ```
    /// # use roster_agent::{Agent, AgentConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let agent = Agent::start(AgentConfig::new("m1", "127.0.0.1:0".parse()?)).await?;
    /// let refused = agent.force_leave("m9").await.unwrap_err();
    /// assert_eq!(refused.to_string(), "no member named \"m9\" is in the list");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn force_leave(&self, name: &str) -> Result<ForceLeft, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::ForceLeave(name.to_owned(), tx))
            .await
            .map_err(|_| AgentError::Stopped)?;
        rx.await
            .map_err(|_| AgentError::Stopped)?
            .map_err(AgentError::ForceLeave)
    }

    /// Key rotation across the cluster: the same steps as the HTTP API's `/v1/keys` routes.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(&self.shared)
    }

    /// The agent's metrics: what `GET /metrics` serves, and the protocol's running totals.
    pub fn metrics(&self) -> AgentMetrics<'_> {
        AgentMetrics::new(&self.shared)
    }

    /// Leaves the cluster: announces `left`, waits (bounded) until the news has gone out, and stops.
    pub async fn leave(&mut self) -> Result<(), AgentError> {
        let (tx, rx) = oneshot::channel();
        if self.shared.commands.send(Command::Leave(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.stopped().await
    }

    /// Waits until the agent stops: after a leave (from [`Agent::leave`] or `POST /v1/leave`), or on a fatal
    /// error such as a failed join. Safe to cancel and call again.
    pub async fn stopped(&mut self) -> Result<(), AgentError> {
        let Some(driver) = self.driver.as_mut() else {
            return Ok(());
        };
        let result = driver.await.unwrap_or(Err(AgentError::Stopped));
        self.driver = None;
        if let Some(http) = self.http.take() {
            // Let an in-flight `POST /v1/leave` get its answer out; streams end with the driver.
            let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
        }
        if let Some(metrics) = self.metrics_http.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), metrics).await;
        }
        result
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
        if let Some(http) = &self.http {
            http.abort();
        }
        if let Some(metrics) = &self.metrics_http {
            metrics.abort();
        }
    }
}
