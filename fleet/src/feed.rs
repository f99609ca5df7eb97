//! Keeps mirrors current without reading: one etcd watch per subnet per connection, shared by
//! every member opened on that connection. Each watch response is parsed once and broadcast;
//! a member applies what arrived before it next chooses a candidate. A member that fell behind
//! the broadcast, or a watch that etcd compacted past or that broke, is a gap: the member then
//! reads the chunks changed since its last read (one range read with `min_mod_revision`).

use crate::chunk::Chunk;
use crate::config::FleetConfig;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use crate::mirror::Stored;
use etcd_client::{EventType, GetOptions, WatchOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// Batches a member may fall behind by before it must read instead.
const BACKLOG: usize = 4096;

/// One watch response's chunk changes, parsed once for every member.
pub(crate) enum Batch {
    /// Chunks as they now are, and the configuration if it changed (its reservations); every
    /// change up to revision `through` has been broadcast.
    Chunks {
        changes: Vec<(u64, Stored)>,
        config: Option<(FleetConfig, i64)>,
        through: i64,
    },
    /// Changes may have been missed: read what changed.
    Gap,
}

/// A running watch of one subnet's chunks; it stops when the last member drops it.
pub(crate) struct Feed {
    sender: broadcast::Sender<Arc<Batch>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A member's end of a feed: the feed (kept running while the member lives) and what it
/// broadcast that the member has not applied yet.
pub(crate) type Subscription = (Arc<Feed>, std::sync::Mutex<broadcast::Receiver<Arc<Batch>>>);

/// The feeds of one connection, by subnet prefix.
pub(crate) type Feeds = Arc<Mutex<HashMap<String, Weak<Feed>>>>;

/// The feed of `config`'s subnet on `etcd` (started if none runs) and a receiver of what it
/// broadcasts from now on. Call it before the member's first read: every change after that
/// read is then either in the read or received.
///
/// # Errors
/// etcd's, when a new feed cannot learn the current revision.
pub(crate) async fn subscribe(
    etcd: &Etcd,
    keys: &Keyspace,
    config: &FleetConfig,
) -> Result<(Arc<Feed>, broadcast::Receiver<Arc<Batch>>), crate::FleetError> {
    let prefix = keys.subnet(config.cidr);
    let running = |feeds: &HashMap<String, Weak<Feed>>| {
        let feed = feeds.get(&prefix).and_then(Weak::upgrade)?;
        let receiver = feed.sender.subscribe();
        Some((feed, receiver))
    };
    if let Some(found) = running(&etcd.feeds().lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(found);
    }
    // The watch starts just after the revision read here, before any member that subscribes
    // now makes its first read.
    let now = etcd
        .call(etcd.client().get(
            keys.config(config.cidr),
            Some(GetOptions::new().with_count_only()),
        ))
        .await?
        .header()
        .map_or(0, |h| h.revision());
    let mut feeds = etcd.feeds().lock().unwrap_or_else(|p| p.into_inner());
    // Another member of this connection may have started it meanwhile.
    if let Some(found) = running(&feeds) {
        return Ok(found);
    }
    let (sender, receiver) = broadcast::channel(BACKLOG);
    let task = tokio::spawn(watch(
        etcd.clone(),
        keys.clone(),
        config.clone(),
        now + 1,
        sender.clone(),
    ));
    let feed = Arc::new(Feed {
        sender,
        task: task.abort_handle(),
    });
    feeds.insert(prefix, Arc::downgrade(&feed));
    Ok((feed, receiver))
}

/// Watches the subnet's keys (its chunks and its configuration) from revision `next` on, for as
/// long as the feed lives.
async fn watch(
    etcd: Etcd,
    keys: Keyspace,
    config: FleetConfig,
    mut next: i64,
    sender: broadcast::Sender<Arc<Batch>>,
) {
    // The subnet's whole prefix: its chunks and its configuration.
    let prefix = keys.subnet(config.cidr);
    let config_key = keys.config(config.cidr);
    loop {
        let options = WatchOptions::new().with_prefix().with_start_revision(next);
        // Not under the call timeout: a watch lives as long as it is wanted.
        let Ok(mut stream) = etcd.client().watch(prefix.clone(), Some(options)).await else {
            let _ = sender.send(Arc::new(Batch::Gap));
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                // The stream ended or broke: watch again from where it stopped (nothing is
                // lost unless etcd compacted past it, which the new watch reports).
                _ => break,
            };
            if resp.compact_revision() > 0 {
                next = resp.compact_revision();
                let _ = sender.send(Arc::new(Batch::Gap));
                break;
            }
            if resp.canceled() {
                let _ = sender.send(Arc::new(Batch::Gap));
                break;
            }
            let mut changes = Vec::new();
            let mut new_config = None;
            let mut corrupt = false;
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                next = next.max(kv.mod_revision() + 1);
                if kv.key() == config_key.as_bytes() {
                    match crate::subnet::parse_config(&config_key, kv.value()) {
                        Ok(c) if event.event_type() == EventType::Put => {
                            new_config = Some((c, kv.mod_revision()))
                        }
                        _ => corrupt = true,
                    }
                    continue;
                }
                let Some(index) = keys.chunk_index(config.cidr, kv.key()) else {
                    corrupt = true;
                    continue;
                };
                let chunk = match event.event_type() {
                    EventType::Put => Chunk::from_bytes(kv.value(), config.chunk_cidr(index)),
                    EventType::Delete => Ok(Chunk::default()),
                };
                match chunk {
                    Ok(chunk) => changes.push((
                        index,
                        Stored {
                            chunk,
                            revision: kv.mod_revision(),
                        },
                    )),
                    // Members read it themselves and report it, naming the key.
                    Err(_) => corrupt = true,
                }
            }
            let batch = if corrupt {
                Batch::Gap
            } else {
                Batch::Chunks {
                    changes,
                    config: new_config,
                    through: next - 1,
                }
            };
            let _ = sender.send(Arc::new(batch));
        }
    }
}
