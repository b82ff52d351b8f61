//! Client sessions: exactly-once proposals and linearizable reads with timeouts.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::events::{Input, Reply};
use crate::ballot::ClientId;
use crate::error::ClientError;
use crate::message::Command;
use crate::state_machine::StateMachine;

/// Timeouts of a client session.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// How long to wait for one attempt before retrying with the same sequence number.
    /// 1 s: longer than a worst-case election with the default timeouts (2 × 200 ms plus
    /// two round trips), so an attempt lost in a leader change is retried once the new
    /// leader is in place, and not retried needlessly before.
    pub attempt_timeout: Duration,
    /// How long to keep retrying before giving up. 10 s.
    pub deadline: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            attempt_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The replica answered with an error (for example, it knows no leader).
    #[error(transparent)]
    Rejected(#[from] ClientError),
    /// No answer before the deadline; a proposal may or may not have been applied (a later
    /// proposal from this client settles it).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node has stopped.
    #[error("the replica has stopped")]
    Stopped,
}

/// A client session: one client id, sequence numbers increasing by one per command.
/// Commands from one session are applied in order and exactly once, even when an attempt
/// times out and is retried.
pub struct Client<S: StateMachine> {
    inputs: mpsc::Sender<Input<S>>,
    id: ClientId,
    next_seq: u64,
    next_read: u64,
    config: ClientConfig,
}

impl<S: StateMachine> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl<S> Client<S>
where
    S: StateMachine + Send + 'static,
    S::Command: Send,
    S::Output: Send,
    S::Query: Send,
{
    pub(crate) fn new(inputs: mpsc::Sender<Input<S>>, id: ClientId, config: ClientConfig) -> Self {
        Client {
            inputs,
            id,
            next_seq: 1,
            next_read: 1,
            config,
        }
    }

    /// This session's client id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Proposes `op` and returns its output once it is chosen and applied. Retries with
    /// the same sequence number on timeout and on "no leader yet", so it is applied once.
    pub async fn propose(&mut self, op: S::Command) -> Result<S::Output, RequestError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let command = Command {
            client: self.id,
            seq,
            op,
        };
        let deadline = tokio::time::Instant::now() + self.config.deadline;
        self.until_answered(deadline, |reply| Input::Propose(command.clone(), reply))
            .await
    }

    /// A linearizable read: answered under the leader's lease without a log write when one
    /// holds, otherwise through the log.
    pub async fn read(&mut self, query: S::Query) -> Result<S::Output, RequestError> {
        let deadline = tokio::time::Instant::now() + self.config.deadline;
        let (client, mut id) = (self.id, self.next_read);
        let answer = self
            .until_answered(deadline, |reply| {
                id += 1;
                Input::Read(client, id - 1, query.clone(), reply)
            })
            .await;
        self.next_read = id;
        answer
    }

    /// Sends `input(reply)` and waits for the answer, sending again after an attempt
    /// timeout or a "no leader yet" until the deadline.
    async fn until_answered(
        &self,
        deadline: tokio::time::Instant,
        mut input: impl FnMut(Reply<S>) -> Input<S>,
    ) -> Result<S::Output, RequestError> {
        loop {
            let (tx, rx) = oneshot::channel();
            self.inputs
                .send(input(tx))
                .await
                .map_err(|_| RequestError::Stopped)?;
            match self.await_attempt(rx, deadline).await? {
                Some(Ok(output)) => return Ok(output),
                Some(Err(ClientError::NotLeader { .. })) | None => {
                    self.pause_before_retry(deadline).await?;
                }
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Waits for one attempt: `None` when it timed out (retry), or its answer.
    async fn await_attempt(
        &self,
        rx: oneshot::Receiver<Result<S::Output, ClientError>>,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Result<S::Output, ClientError>>, RequestError> {
        let attempt_end = (tokio::time::Instant::now() + self.config.attempt_timeout).min(deadline);
        match tokio::time::timeout_at(attempt_end, rx).await {
            Ok(Ok(answer)) => Ok(Some(answer)),
            Ok(Err(_)) => Err(RequestError::Stopped),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                Err(RequestError::Timeout(self.config.deadline))
            }
            Err(_) => Ok(None),
        }
    }

    async fn pause_before_retry(&self, deadline: tokio::time::Instant) -> Result<(), RequestError> {
        // A short pause lets an election finish instead of spinning on "no leader".
        let resume = tokio::time::Instant::now() + Duration::from_millis(20);
        if resume >= deadline {
            return Err(RequestError::Timeout(self.config.deadline));
        }
        tokio::time::sleep_until(resume).await;
        Ok(())
    }
}
