//! What a pod allocation is keyed by, and what it carries.

use std::fmt;

/// The key of a pod allocation, as the CNI sees it: one per (network, container, interface).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    /// The CNI network name.
    pub network_name: String,
    /// The container (sandbox) id.
    pub container_id: String,
    /// The interface name inside the container, e.g. `eth0`.
    pub if_name: String,
}

impl PodKey {
    /// A key from its three parts.
    pub fn new(
        network_name: impl Into<String>,
        container_id: impl Into<String>,
        if_name: impl Into<String>,
    ) -> Self {
        PodKey {
            network_name: network_name.into(),
            container_id: container_id.into(),
            if_name: if_name.into(),
        }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.network_name, self.container_id, self.if_name
        )
    }
}

/// What Kubernetes knows about the pod behind a key; stored, never interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PodMetadata {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// How many interfaces the pod has.
    pub interfaces_count: u32,
}

/// A request for a pod address: the key and the pod's metadata, moved in so that the hot path
/// allocates nothing for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRequest {
    /// The key.
    pub key: PodKey,
    /// The metadata.
    pub metadata: PodMetadata,
}

impl PodRequest {
    /// A request with empty metadata (one interface).
    pub fn new(key: PodKey) -> Self {
        PodRequest {
            key,
            metadata: PodMetadata {
                interfaces_count: 1,
                ..Default::default()
            },
        }
    }
}
