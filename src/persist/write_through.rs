//! A node whose every assignment and release is on disk before the call returns, as ipamd does:
//! a failed write rolls the change back and the call fails.

use super::{NodeCheckpoint, PersistError};
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

/// A [`Node`] checkpointed to one file on every change.
///
/// Changes through this wrapper are serialised (each waits for the previous one's fsync);
/// reads go to [`WriteThroughNode::node`] directly. Changes made on the inner node directly
/// reach the disk with the next write.
#[derive(Debug)]
pub struct WriteThroughNode {
    node: Node,
    path: PathBuf,
    settings: Option<WarmSettings>,
    writes: Mutex<()>,
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
        let w = WriteThroughNode {
            node,
            path: path.into(),
            settings,
            writes: Mutex::new(()),
        };
        w.sync()?;
        Ok(w)
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a checkpoint now.
    ///
    /// # Errors
    /// [`PersistError::Io`].
    pub fn sync(&self) -> Result<(), PersistError> {
        let _g = self.writes.lock();
        self.write()
    }

    fn write(&self) -> Result<(), PersistError> {
        NodeCheckpoint::write(&self.node.checkpoint(self.settings.as_ref()), &self.path)
    }

    /// [`Node::assign`], on disk before it returns. A repeated key writes nothing.
    ///
    /// # Errors
    /// The node's refusal, or the write's failure (the assignment is then undone).
    pub fn assign(&self, request: PodRequest) -> Result<Assignment, WriteThroughError> {
        let _g = self.writes.lock();
        let key = request.key.clone();
        let a = self.node.assign(request)?;
        if a.existing {
            return Ok(a);
        }
        if let Err(e) = self.write() {
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
        let _g = self.writes.lock();
        let r = self.node.release(key)?;
        if let Err(e) = self.write() {
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
