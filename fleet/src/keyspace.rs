//! Where the fleet's state lives in etcd: one versioned keyspace under a configurable root.
//!
//! ```text
//! <root>/pdipam/v1/subnets/<subnet>/config           the subnet: CIDR, options, reservations, chunk size
//! <root>/pdipam/v1/subnets/<subnet>/chunks/<index>   one chunk of the allocation state, with its holders
//! <root>/pdipam/v1/nodes/<node>                      a node's registration, attached to its lease
//! ```
//!
//! `<subnet>` is the CIDR with `/` written as `_` (`10.0.0.0_16`); `<index>` is the chunk's
//! number in six digits, so a range read lists chunks in address order.

use ipnet::IpNet;

/// The key layout of one fleet: every key pdipam reads or writes starts with `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    base: String,
}

impl Keyspace {
    /// The keyspace under `root` (`""` for none, or a path such as `/clusters/prod`; a trailing
    /// `/` is ignored).
    pub fn new(root: &str) -> Self {
        Keyspace {
            base: format!("{}/pdipam/v1", root.trim_end_matches('/')),
        }
    }

    /// Everything pdipam owns under this root, for a prefix read (or a role's permission).
    pub fn all(&self) -> String {
        format!("{}/", self.base)
    }

    /// The prefix of one subnet's keys.
    pub fn subnet(&self, cidr: IpNet) -> String {
        format!(
            "{}/subnets/{}/",
            self.base,
            cidr.to_string().replace('/', "_")
        )
    }

    /// The subnet's configuration.
    pub fn config(&self, cidr: IpNet) -> String {
        format!("{}config", self.subnet(cidr))
    }

    /// The prefix of the subnet's chunks.
    pub fn chunks(&self, cidr: IpNet) -> String {
        format!("{}chunks/", self.subnet(cidr))
    }

    /// One chunk.
    pub fn chunk(&self, cidr: IpNet, index: u64) -> String {
        format!("{}{index:06}", self.chunks(cidr))
    }

    /// The chunk number a chunk key names, if it is one of `cidr`'s.
    pub fn chunk_index(&self, cidr: IpNet, key: &[u8]) -> Option<u64> {
        let key = std::str::from_utf8(key).ok()?;
        key.strip_prefix(&self.chunks(cidr))?.parse().ok()
    }

    /// The prefix of node registrations.
    pub fn nodes(&self) -> String {
        format!("{}/nodes/", self.base)
    }

    /// One node's registration.
    pub fn node(&self, name: &str) -> String {
        format!("{}{name}", self.nodes())
    }

    /// The node a registration key names.
    pub fn node_name<'a>(&self, key: &'a [u8]) -> Option<&'a str> {
        let key = std::str::from_utf8(key).ok()?;
        key.strip_prefix(self.nodes().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Keyspace;

    #[test]
    fn keys_are_versioned_under_the_root() {
        let cidr = "10.0.0.0/16".parse().unwrap();
        let k = Keyspace::new("/clusters/prod/");
        assert_eq!(
            k.config(cidr),
            "/clusters/prod/pdipam/v1/subnets/10.0.0.0_16/config"
        );
        assert_eq!(
            k.chunk(cidr, 42),
            "/clusters/prod/pdipam/v1/subnets/10.0.0.0_16/chunks/000042"
        );
        assert_eq!(k.chunk_index(cidr, k.chunk(cidr, 42).as_bytes()), Some(42));
        assert_eq!(k.chunk_index(cidr, k.config(cidr).as_bytes()), None);
        assert_eq!(k.node("node-1"), "/clusters/prod/pdipam/v1/nodes/node-1");
        assert_eq!(k.node_name(k.node("node-1").as_bytes()), Some("node-1"));
        assert_eq!(Keyspace::new("").all(), "/pdipam/v1/");
    }
}
