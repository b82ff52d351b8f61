//! `bt-tracker member list|add|remove` and `bt-tracker leader transfer`: changing who
//! runs the cluster, through the operator protocol.
//!
//! Replacing a dead node is `member add` of a new node (new id, new name, empty data
//! directory, started with `run --join`), then `member remove` of the dead one. Each
//! change is one entry in the replicated log; see the paxos crate's README.

use std::time::Duration;

use super::CliError;
use super::operator::ClusterFlags;
use crate::admin::AdminError;
use crate::api::{ApiError, ClusterStatus, MemberChange};
use crate::node::MemberConfig;

/// How long `member add` waits for the new node to catch up before giving up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// `member list`: one line per member (id, role, address, lag behind the leader).
pub async fn list(cluster: &ClusterFlags) -> Result<(), CliError> {
    let view = cluster.client()?.cluster_view().await?;
    print!("{}", describe(&view));
    Ok(())
}

/// The membership as `member list` prints it.
pub fn describe(view: &ClusterStatus) -> String {
    let mut out = String::new();
    let leader = view
        .leader
        .map_or("none known".to_string(), |l| l.to_string());
    out.push_str(&format!("leader: {leader} (as node {} sees it)\n", view.id));
    let rows = view
        .voters
        .iter()
        .map(|id| (*id, "voter"))
        .chain(view.learners.iter().map(|id| (*id, "learner")))
        .chain(view.retired.iter().map(|id| (*id, "removed")));
    for (id, role) in rows {
        let address = view.address(id).unwrap_or("-");
        let lag = match view.lag(id) {
            Some(lag) if role != "removed" => format!("{lag} behind"),
            _ => "-".to_string(),
        };
        out.push_str(&format!("{id}\t{role}\t{address}\t{lag}\n"));
    }
    out
}

/// `member add`: adds `member` as a learner, waits until it has caught up, and makes it
/// a voter (unless `learner_only`), beside the others or in place of voter `replacing`.
///
/// Replacing in one change keeps the number of voters, and so the quorum, as it was:
/// adding a fourth voter beside a dead third one would make every write wait for all
/// three live nodes, the new one included, until the dead one is removed.
pub async fn add(
    cluster: &ClusterFlags,
    (id, member): (u64, MemberConfig),
    learner_only: bool,
    replacing: Option<u64>,
) -> Result<(), CliError> {
    let client = cluster.client()?;
    client
        .change_membership(MemberChange::AddLearner {
            id,
            address: member.to_address(),
        })
        .await?;
    println!("node {id} added as a learner");
    if learner_only {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    loop {
        ticks.tick().await;
        let view = client.cluster_view().await?;
        if view.voters.contains(&id) {
            break;
        }
        let mut voters = view.voters.clone();
        voters.retain(|v| Some(*v) != replacing);
        voters.push(id);
        match client
            .change_membership(MemberChange::SetVoters { voters })
            .await
        {
            Ok(()) => break,
            // Still catching up: the leader refuses to make it a voter yet.
            Err(AdminError::Refused(ApiError::BadRequest(why)))
                if why.contains("behind") && tokio::time::Instant::now() < deadline =>
            {
                tracing::debug!("waiting for node {id} to catch up: {why}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    match replacing {
        Some(old) => println!("node {id} is a voter in place of node {old}"),
        None => println!("node {id} is a voter"),
    }
    Ok(())
}

/// `member remove`: removes node `id` for good (its id is never used again).
pub async fn remove(cluster: &ClusterFlags, id: u64) -> Result<(), CliError> {
    let client = cluster.client()?;
    let view = client.cluster_view().await?;
    let change = if view.voters.contains(&id) {
        MemberChange::SetVoters {
            voters: view.voters.iter().copied().filter(|v| *v != id).collect(),
        }
    } else if view.learners.contains(&id) {
        MemberChange::RemoveLearner { id }
    } else if view.retired.contains(&id) {
        println!("node {id} was already removed");
        return Ok(());
    } else {
        return Err(CliError::Flags(format!(
            "node {id} is not a member of the cluster (see `bt-tracker member list`)"
        )));
    };
    client.change_membership(change).await?;
    println!("node {id} removed");
    Ok(())
}

/// `leader transfer`: hands the leadership to `to` (or the most up-to-date voter).
pub async fn transfer_leader(cluster: &ClusterFlags, to: Option<u64>) -> Result<(), CliError> {
    let client = cluster.client()?;
    client.transfer_leader(to).await?;
    let view = client.cluster_view().await?;
    match view.leader {
        Some(l) => println!("node {l} leads"),
        None => println!("the leadership was handed over"),
    }
    Ok(())
}
