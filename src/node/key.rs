//! What a pod allocation is keyed by, and what it carries.

use std::fmt;

/// The network name ipamd gives entries it migrated from the container runtime's old state
/// (their interface is [`MIGRATED_IF_NAME`]); [`Node::release`](crate::Node::release) finds them
/// by the pod's current key, as ipamd does.
pub const MIGRATED_NETWORK_NAME: &str = "_migrated-from-cri";
/// The interface name of migrated entries.
pub const MIGRATED_IF_NAME: &str = "unknown";

/// The key of a pod allocation, as the CNI sees it: one per (network, container, interface).
///
/// Stored as one allocation (the three parts back to back), so that a pod record costs one
/// allocation and one free for its key. It hashes by its container id alone (what tells pods
/// apart; equality compares all three parts), the same from an owned key and from borrowed
/// parts, so that a lookup by parts ([`Node::release_parts`](crate::Node::release_parts)) needs
/// no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct PodKey {
    text: Box<str>,
    /// End of the network name in `text`.
    network_end: u32,
    /// End of the container id in `text`.
    container_end: u32,
}

impl PodKey {
    /// A key from its three parts.
    ///
    /// # Panics
    /// If the parts together exceed 4 GiB.
    pub fn new(
        network_name: impl AsRef<str>,
        container_id: impl AsRef<str>,
        if_name: impl AsRef<str>,
    ) -> Self {
        let (n, c, i) = (
            network_name.as_ref(),
            container_id.as_ref(),
            if_name.as_ref(),
        );
        let mut text = String::with_capacity(n.len() + c.len() + i.len());
        text.push_str(n);
        text.push_str(c);
        text.push_str(i);
        let end = |len: usize| u32::try_from(len).expect("pod key longer than 4 GiB");
        PodKey {
            network_end: end(n.len()),
            container_end: end(n.len() + c.len()),
            text: text.into_boxed_str(),
        }
    }

    /// The CNI network name.
    pub fn network_name(&self) -> &str {
        &self.text[..self.network_end as usize]
    }

    /// The container (sandbox) id.
    pub fn container_id(&self) -> &str {
        &self.text[self.network_end as usize..self.container_end as usize]
    }

    /// The interface name inside the container, e.g. `eth0`.
    pub fn if_name(&self) -> &str {
        &self.text[self.container_end as usize..]
    }

    /// Whether the container id is empty (from the offsets alone: no slicing, so no
    /// character-boundary checks on the assignment path).
    pub(crate) fn container_id_is_empty(&self) -> bool {
        self.container_end == self.network_end
    }

    /// Whether the interface name is empty (from the offsets alone, like the above).
    pub(crate) fn if_name_is_empty(&self) -> bool {
        self.text.len() == self.container_end as usize
    }

    fn parts(&self) -> (&str, &str, &str) {
        (self.network_name(), self.container_id(), self.if_name())
    }

    /// Whether this is the key made of `parts`.
    pub(crate) fn is(&self, parts: &KeyParts<'_>) -> bool {
        // Lengths first, then bytes: no character-boundary checks, and a mismatch in length
        // (the usual way two keys differ) costs no memcmp.
        let (n, c) = (self.network_end as usize, self.container_end as usize);
        let t = self.text.as_bytes();
        n == parts.0.len()
            && c - n == parts.1.len()
            && t.len() - c == parts.2.len()
            && t[..n] == *parts.0.as_bytes()
            && t[n..c] == *parts.1.as_bytes()
            && t[c..] == *parts.2.as_bytes()
    }
}

impl std::hash::Hash for PodKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        KeyParts(self.network_name(), self.container_id(), self.if_name()).hash(state)
    }
}

/// A pod key's three parts, borrowed: hashes exactly as the [`PodKey`] made of them.
pub(crate) struct KeyParts<'a>(pub &'a str, pub &'a str, pub &'a str);

/// Only the container id is hashed: it tells pods apart (a runtime makes it unique per sandbox),
/// while a node sees one or two network names and interface names, so hashing them would cost a
/// third of a key's hashing time and separate almost nothing. Keys that differ only there (the
/// interfaces of one multi-homed pod) share a hash and are told apart by equality, as any
/// colliding keys are. The hash stays keyed per node, so the container ids an outsider picks
/// cannot be made to collide either.
impl std::hash::Hash for KeyParts<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.1.as_bytes());
    }
}

impl PartialOrd for PodKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered by network name, then container id, then interface name.
impl Ord for PodKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl fmt::Debug for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodKey")
            .field("network_name", &self.network_name())
            .field("container_id", &self.container_id())
            .field("if_name", &self.if_name())
            .finish()
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.network_name(),
            self.container_id(),
            self.if_name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn a_key_hashes_as_its_borrowed_parts() {
        let hasher = foldhash::fast::FixedState::with_seed(7);
        for (n, c, i) in [
            ("net", "abc", "eth0"),
            ("", "x", ""),
            ("ne", "tabc", "eth0"),
        ] {
            let key = PodKey::new(n, c, i);
            let parts = KeyParts(n, c, i);
            assert_eq!(hasher.hash_one(&key), hasher.hash_one(&parts));
            assert!(key.is(&parts));
        }
        // The boundaries between the parts count: "ne"+"tabc" is not "net"+"abc".
        let a = PodKey::new("net", "abc", "eth0");
        assert!(!a.is(&KeyParts("ne", "tabc", "eth0")));
        assert_ne!(
            hasher.hash_one(&a),
            hasher.hash_one(KeyParts("ne", "tabc", "eth0"))
        );
    }

    #[test]
    fn a_key_is_only_the_parts_it_was_made_of() {
        let key = PodKey::new("net", "abc", "eth0");
        assert!(key.is(&KeyParts("net", "abc", "eth0")));
        // Same lengths, one byte different in each part in turn: the lengths match, so only
        // the byte comparisons can tell.
        for parts in [
            KeyParts("nex", "abc", "eth0"),
            KeyParts("net", "abd", "eth0"),
            KeyParts("net", "abc", "eth1"),
        ] {
            assert!(!key.is(&parts), "{} {} {}", parts.0, parts.1, parts.2);
        }
        // A length differing in each part in turn.
        for parts in [
            KeyParts("netx", "abc", "eth0"),
            KeyParts("net", "abcd", "eth0"),
            KeyParts("net", "abc", "eth"),
        ] {
            assert!(!key.is(&parts), "{} {} {}", parts.0, parts.1, parts.2);
        }
    }

    #[test]
    fn debug_names_the_parts() {
        assert_eq!(
            format!("{:?}", PodKey::new("net", "abc", "eth0")),
            r#"PodKey { network_name: "net", container_id: "abc", if_name: "eth0" }"#
        );
    }

    #[test]
    fn emptiness_from_offsets_matches_the_parts() {
        for (n, c, i) in [
            ("net", "abc", "eth0"),
            ("", "", ""),
            ("net", "", "eth0"),
            ("net", "abc", ""),
            ("", "é", "ü"),
        ] {
            let key = PodKey::new(n, c, i);
            assert_eq!(
                key.container_id_is_empty(),
                c.is_empty(),
                "{n:?} {c:?} {i:?}"
            );
            assert_eq!(key.if_name_is_empty(), i.is_empty(), "{n:?} {c:?} {i:?}");
        }
    }

    #[test]
    fn parts_round_trip_and_order_by_parts() {
        let k = PodKey::new("net", "abc", "eth0");
        assert_eq!(k.parts(), ("net", "abc", "eth0"));
        assert_eq!(k.to_string(), "net/abc/eth0");
        // Same concatenation, different parts: different keys.
        assert_ne!(PodKey::new("ab", "c", "x"), PodKey::new("a", "bc", "x"));
        assert!(PodKey::new("a", "z", "x") < PodKey::new("ab", "a", "x"));
        assert_eq!(PodKey::new("", "", "").parts(), ("", "", ""));
    }
}

/// What Kubernetes knows about the pod behind a key; stored, never interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
