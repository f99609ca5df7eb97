//! Instance limits as a [`Node`](crate::Node) holds them: a row of the embedded table, borrowed
//! for the life of the program, or limits of the caller's own, shared. Building a node from
//! [`InstanceLimits::lookup`] copies nothing.

use super::InstanceLimits;
use std::ops::Deref;
use std::sync::Arc;

/// Instance limits a node can take: `&'static InstanceLimits` (what
/// [`InstanceLimits::lookup`] returns; no copy), an [`InstanceLimits`] value, or an
/// `Arc<InstanceLimits>` shared by many nodes. Dereferences to [`InstanceLimits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLimits(Held);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Held {
    Table(&'static InstanceLimits),
    Own(Arc<InstanceLimits>),
}

impl Deref for NodeLimits {
    type Target = InstanceLimits;

    fn deref(&self) -> &InstanceLimits {
        match &self.0 {
            Held::Table(l) => l,
            Held::Own(l) => l,
        }
    }
}

impl From<&'static InstanceLimits> for NodeLimits {
    fn from(l: &'static InstanceLimits) -> Self {
        NodeLimits(Held::Table(l))
    }
}

impl From<InstanceLimits> for NodeLimits {
    fn from(l: InstanceLimits) -> Self {
        NodeLimits(Held::Own(Arc::new(l)))
    }
}

impl From<Arc<InstanceLimits>> for NodeLimits {
    fn from(l: Arc<InstanceLimits>) -> Self {
        NodeLimits(Held::Own(l))
    }
}
