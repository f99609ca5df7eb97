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
    /// The background renewal of a long-lived member; none for [`Member::resume`]'s.
    keepalive: Option<tokio::task::JoinHandle<()>>,
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
        let (lease, ttl_secs) = register(etcd, keys, name, ttl).await?;
        let keepalive = tokio::spawn(keep_alive(
            etcd.clone(),
            lease,
            Duration::from_millis(ttl_secs as u64 * 1000 / 3),
        ));
        Ok(Member {
            name: name.to_string(),
            lease,
            keepalive: Some(keepalive),
        })
    }

    /// For a short-lived process that acts for a node now and then (a CNI call): renews, once,
    /// the lease the node's registration carries if it is still alive, and otherwise registers
    /// the node under a new lease of `ttl`. Nothing runs in the background: the lease lives `ttl`
    /// past this call, so the node must call again within that time to keep its claims. Every
    /// process of a node shares the one registered lease, so they never fence each other (two
    /// that register at the same instant: the one whose registration was overwritten gets
    /// [`FleetError::Fenced`] at its next commit and resumes again). Returns the member and
    /// whether it registered anew (the node's claims under an older lease then need
    /// [`crate::FleetSubnet::adopt`]).
    ///
    /// # Errors
    /// [`FleetError::Unavailable`] / [`FleetError::Timeout`].
    pub async fn resume(
        etcd: &Etcd,
        keys: &Keyspace,
        name: &str,
        ttl: Duration,
    ) -> Result<(Self, bool), FleetError> {
        let mut client = etcd.client();
        let registered = etcd.call(client.get(keys.node(name), None)).await?;
        let current = registered.kvs().first().map(|kv| kv.lease());
        if let Some(lease) = current.filter(|l| *l != 0) {
            if renew_once(etcd, lease).await? {
                let member = Member {
                    name: name.to_string(),
                    lease,
                    keepalive: None,
                };
                return Ok((member, false));
            }
        }
        let (lease, _) = register(etcd, keys, name, ttl).await?;
        let member = Member {
            name: name.to_string(),
            lease,
            keepalive: None,
        };
        Ok((member, true))
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
    pub async fn leave(mut self, etcd: &Etcd) -> Result<(), FleetError> {
        if let Some(k) = self.keepalive.take() {
            k.abort();
        }
        etcd.call(etcd.client().lease_revoke(self.lease))
            .await
            .map(|_| ())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(k) = self.keepalive.take() {
            k.abort();
        }
    }
}

/// Grants a lease of `ttl` (at least 2 s) and writes the node's registration on it, replacing
/// an earlier one. Returns the lease and its TTL in seconds.
async fn register(
    etcd: &Etcd,
    keys: &Keyspace,
    name: &str,
    ttl: Duration,
) -> Result<(i64, i64), FleetError> {
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
    Ok((lease, ttl_secs))
}

/// Renews `lease` once; false when it has expired or was revoked.
async fn renew_once(etcd: &Etcd, lease: i64) -> Result<bool, FleetError> {
    let (mut keeper, mut stream) = etcd.call(etcd.client().lease_keep_alive(lease)).await?;
    etcd.call(keeper.keep_alive()).await?;
    let answer = etcd.call(stream.message()).await?;
    Ok(answer.is_some_and(|r| r.ttl() > 0))
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
