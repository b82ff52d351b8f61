//! `bt-tracker user` and `bt-tracker token`: managing users and API tokens through the
//! operator protocol, with the operator certificate.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::CliError;
use crate::admin::AdminClient;

/// Where the cluster is and how to prove being its operator.
#[derive(Clone, Debug, clap::Args)]
pub struct ClusterFlags {
    /// Directory with ca.crt and the operator certificate (admin.crt, admin.key).
    #[arg(long, default_value = "certs")]
    pub certs: PathBuf,
    /// A node's cluster address; repeat to list several (tried in turn).
    #[arg(long = "tracker", required = true)]
    pub trackers: Vec<SocketAddr>,
}

impl ClusterFlags {
    pub(crate) fn client(&self) -> Result<AdminClient, CliError> {
        Ok(AdminClient::new(&self.certs, self.trackers.clone())?)
    }
}

/// `user add`: adds user `name` with a password read by
/// [`read_password`](super::password_input::read_password).
pub async fn add_user(cluster: &ClusterFlags, name: &str, admin: bool) -> Result<(), CliError> {
    let password = super::password_input::read_password()?;
    cluster.client()?.add_user(name, password, admin).await?;
    println!("added user {name}");
    Ok(())
}

/// `user disable`: disables user `name`, or enables them again if `enable`.
pub async fn set_user_disabled(
    cluster: &ClusterFlags,
    name: &str,
    enable: bool,
) -> Result<(), CliError> {
    cluster.client()?.set_user_disabled(name, !enable).await?;
    println!(
        "{} user {name}",
        if enable { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// `user list`: one line per user, its name and its flags (`admin`, `disabled`).
pub async fn list_users(cluster: &ClusterFlags) -> Result<(), CliError> {
    for user in cluster.client()?.users().await? {
        let mut flags = Vec::new();
        if user.admin {
            flags.push("admin");
        }
        if user.disabled {
            flags.push("disabled");
        }
        println!("{}\t{}", user.name, flags.join(","));
    }
    Ok(())
}

/// `token create`: creates an API token for `user` and prints it (only this once).
pub async fn create_token(cluster: &ClusterFlags, user: &str, label: &str) -> Result<(), CliError> {
    let token = cluster.client()?.create_token(user, label).await?;
    println!("{token}");
    Ok(())
}
