//! A node's membership: a registration key attached to an etcd lease that the member keeps
//! alive. Every claim's transaction compares that the registration still carries this lease, so
//! a node whose lease expired (a long pause, a partition) can no longer commit: that is the fence.

use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use etcd_client::PutOptions;
use std::time::Duration;

/// A registered node. Dropping it stops the keep-alive (the lease then expires after its TTL);
/// [`Member::leave`] revokes it at once.
pub struct Member {
    name: String,
    lease: i64,
    keepalive: tokio::task::JoinHandle<()>,
}

impl Member {
    /// Registers `name` under a new lease of `ttl` and keeps it alive from a background task.
    /// A registration left by an earlier run of the same node is replaced (its claims are then
    /// adopted with [`crate::FleetSubnet::adopt`]).
    ///
    /// # Errors
    /// [`FleetError::Unavailable`] / [`FleetError::Timeout`].
    pub async fn join(
        etcd: &Etcd,
        keys: &Keyspace,
        name: &str,
        ttl: Duration,
    ) -> Result<Self, FleetError> {
        let ttl_secs = ttl.as_secs().max(2) as i64;
        let mut client = etcd.client();
        let lease = etcd.call(client.lease_grant(ttl_secs, None)).await?.id();
        let value = serde_json::json!({ "lease": lease, "ttl_seconds": ttl_secs }).to_string();
        etcd.call(client.put(
            keys.node(name),
            value,
            Some(PutOptions::new().with_lease(lease)),
        ))
        .await?;
        let keepalive = tokio::spawn(keep_alive(
            etcd.clone(),
            lease,
            Duration::from_millis(ttl_secs as u64 * 1000 / 3),
        ));
        Ok(Member {
            name: name.to_string(),
            lease,
            keepalive,
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lease its claims are recorded and fenced under.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Stops keeping the lease alive and revokes it: the registration disappears at once and
    /// the node's allocations become orphans for a reclaimer.
    ///
    /// # Errors
    /// [`FleetError::Unavailable`] / [`FleetError::Timeout`] (the lease then expires by itself).
    pub async fn leave(self, etcd: &Etcd) -> Result<(), FleetError> {
        self.keepalive.abort();
        etcd.call(etcd.client().lease_revoke(self.lease))
            .await
            .map(|_| ())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

/// Renews the lease every `every` until aborted; a failed renewal is retried at the next tick
/// (the lease's TTL is three ticks, so one lost renewal costs nothing).
async fn keep_alive(etcd: Etcd, lease: i64, every: Duration) {
    let mut client = etcd.client();
    loop {
        if let Ok((mut keeper, mut stream)) = client.lease_keep_alive(lease).await {
            loop {
                tokio::time::sleep(every).await;
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match stream.message().await {
                    Ok(Some(r)) if r.ttl() > 0 => {}
                    // The lease is gone: nothing more to keep.
                    Ok(Some(_)) => return,
                    _ => break,
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
