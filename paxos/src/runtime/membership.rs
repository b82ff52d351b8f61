//! Membership changes through a running [`Node`](super::Node): what an operator's
//! `member add`, `member remove` and `leader transfer` call.
//!
//! Each request is one attempt at the replica it is sent to. Only the leader takes
//! changes; others answer [`MembershipError::NotLeader`] with a hint, and the caller
//! asks that node instead. Changes are idempotent, so a retry after a timeout or an
//! interrupted change is safe.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ballot::{NodeId, Slot};
use crate::membership::{Membership, MembershipError};

/// Why a membership request through the runtime failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The replica refused or could not finish the change.
    #[error(transparent)]
    Refused(#[from] MembershipError),
    /// No answer within the timeout: the change may still take effect; ask again (a
    /// change already in force succeeds at once).
    #[error("no answer within {0:?}; the change may still take effect")]
    Timeout(Duration),
    /// The node has stopped.
    #[error("the replica has stopped")]
    Stopped,
}

/// What one replica knows of the cluster: its membership, the leader it follows and,
/// on the leader, how far each member has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The replica that answered.
    pub id: NodeId,
    /// The membership in force after its last applied slot.
    pub membership: Membership,
    /// The leader it believes in.
    pub leader: Option<NodeId>,
    /// Its last decided slot.
    pub decided: Slot,
    /// On the leader: each member's last reported decided slot. Empty elsewhere.
    pub progress: BTreeMap<NodeId, Slot>,
}

impl ClusterView {
    /// How many slots `member` lags the answering leader, if it has reported.
    pub fn lag(&self, member: NodeId) -> Option<u64> {
        self.progress
            .get(&member)
            .map(|p| self.decided.saturating_sub(*p))
    }
}
