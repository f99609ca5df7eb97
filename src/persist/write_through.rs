//! A node whose every assignment and release is on disk before the call returns, as ipamd does:
//! a failed write rolls the change back and the call fails. Where it writes is a
//! [`CheckpointStore`]: a file, two [`Generations`], or the embedder's own (a database, or a
//! test's store that fails when told to).

use super::{Generations, NodeCheckpoint, PersistError};
use crate::node::{Assignment, Node, NodeError, PodKey, PodRequest, Released};
use crate::planner::WarmSettings;
use crate::sync::Mutex;
use std::path::{Path, PathBuf};

/// Why a write-through call failed. Either way the node is as before the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteThroughError {
    /// The node refused.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The checkpoint could not be written; the change was rolled back.
    #[error("{0} (the change was rolled back)")]
    Persist(#[from] PersistError),
}

/// Where a [`WriteThroughNode`] keeps its checkpoint. A write returns once the checkpoint is
/// durable (or fails, leaving the last durable one as it was).
pub trait CheckpointStore: Send + std::fmt::Debug {
    /// Stores `checkpoint` durably. A store may adjust it (its `written_at`, as
    /// [`Generations::write`] does).
    ///
    /// # Errors
    /// Why it could not; the previous checkpoint stays the durable one.
    fn write(&mut self, checkpoint: &mut NodeCheckpoint) -> Result<(), PersistError>;
}

/// One file, replaced whole ([`NodeCheckpoint::write`]: temporary file, fsync, rename, fsync of
/// the directory).
impl CheckpointStore for PathBuf {
    fn write(&mut self, checkpoint: &mut NodeCheckpoint) -> Result<(), PersistError> {
        checkpoint.write(self)
    }
}

/// Two generations written in place in turn: one data sync a write.
impl CheckpointStore for Generations {
    fn write(&mut self, checkpoint: &mut NodeCheckpoint) -> Result<(), PersistError> {
        Generations::write(self, checkpoint)
    }
}

/// A [`Node`] checkpointed to a [`CheckpointStore`] (one file, with [`WriteThroughNode::new`])
/// on every change.
///
/// Changes through this wrapper are serialised (each waits for the previous one's fsync);
/// reads go to [`WriteThroughNode::node`] directly. Changes made on the inner node directly
/// reach the disk with the next write.
#[derive(Debug)]
pub struct WriteThroughNode {
    node: Node,
    path: Option<PathBuf>,
    settings: Option<WarmSettings>,
    /// Held for each change and its write: changes reach the store in order.
    store: Mutex<Box<dyn CheckpointStore>>,
}

impl WriteThroughNode {
    /// Wraps `node` and writes its first checkpoint to `path`.
    ///
    /// # Errors
    /// [`PersistError::Io`].
    pub fn new(
        node: Node,
        path: impl Into<PathBuf>,
        settings: Option<WarmSettings>,
    ) -> Result<Self, PersistError> {
        let path = path.into();
        Self::build(node, Some(path.clone()), Box::new(path), settings)
    }

    /// Wraps `node` over `store` and writes its first checkpoint there.
    ///
    /// # Errors
    /// The store's.
    pub fn with_store(
        node: Node,
        store: Box<dyn CheckpointStore>,
        settings: Option<WarmSettings>,
    ) -> Result<Self, PersistError> {
        Self::build(node, None, store, settings)
    }

    fn build(
        node: Node,
        path: Option<PathBuf>,
        store: Box<dyn CheckpointStore>,
        settings: Option<WarmSettings>,
    ) -> Result<Self, PersistError> {
        let w = WriteThroughNode {
            node,
            path,
            settings,
            store: Mutex::new(store),
        };
        w.sync()?;
        Ok(w)
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The checkpoint file, when built with [`WriteThroughNode::new`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes a checkpoint now.
    ///
    /// # Errors
    /// The store's ([`PersistError::Io`] for a file).
    pub fn sync(&self) -> Result<(), PersistError> {
        let mut store = self.store.lock();
        self.write(&mut **store)
    }

    fn write(&self, store: &mut dyn CheckpointStore) -> Result<(), PersistError> {
        store.write(&mut self.node.checkpoint(self.settings.as_ref()))
    }

    /// [`Node::assign`], on disk before it returns. A repeated key writes nothing.
    ///
    /// # Errors
    /// The node's refusal, or the write's failure (the assignment is then undone).
    pub fn assign(&self, request: PodRequest) -> Result<Assignment, WriteThroughError> {
        let mut store = self.store.lock();
        let key = request.key.clone();
        let a = self.node.assign(request)?;
        if a.existing {
            return Ok(a);
        }
        if let Err(e) = self.write(&mut **store) {
            self.node.forget(&key);
            return Err(e.into());
        }
        Ok(a)
    }

    /// [`Node::release`], on disk before it returns.
    ///
    /// # Errors
    /// The node's refusal, or the write's failure (the pod then holds its address again).
    pub fn release(&self, key: &PodKey) -> Result<Released, WriteThroughError> {
        let mut store = self.store.lock();
        let r = self.node.release(key)?;
        if let Err(e) = self.write(&mut **store) {
            // The address was held by this key a moment ago and nobody can have taken it: it
            // has been cooling (or, without a cooldown, another thread could: then say so).
            if let Err(undo) = self.node.reinstate_released(key.clone(), &r) {
                return Err(WriteThroughError::Node(undo));
            }
            return Err(e.into());
        }
        Ok(r)
    }
}
