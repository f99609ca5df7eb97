//! A chunk: a fixed, aligned run of a subnet's units stored as one etcd value, listing every
//! allocation inside it with its holder. A block never crosses a chunk, so a claim touches one
//! key, and claims in different chunks never conflict.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Whether an allocation is a prefix or a single address (they release differently, as in
/// [`pdipam::Subnet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A delegated prefix.
    Prefix,
    /// A single address.
    Address,
}

/// One allocation and who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The allocation (a single address is a /32, or a /128 for IPv6).
    pub cidr: IpNet,
    /// Prefix or address.
    pub kind: Kind,
    /// The node that holds it.
    pub node: String,
    /// The etcd lease the node held when it claimed it (its registration's lease).
    pub lease: i64,
}

/// The allocations of one chunk, ordered by address. An absent key is an empty chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    /// Every allocation in the chunk, by address.
    pub runs: Vec<Run>,
}

impl Chunk {
    /// The value as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a chunk always serialises")
    }

    /// A stored value; `range` is the chunk's own CIDR, which every allocation must lie in.
    ///
    /// # Errors
    /// What is wrong, in words: not JSON of a chunk, an allocation outside the chunk, two that
    /// overlap, or not in address order.
    pub fn from_bytes(bytes: &[u8], range: IpNet) -> Result<Self, String> {
        let chunk: Chunk = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        chunk.check(range)?;
        Ok(chunk)
    }

    /// Checks that every allocation lies in `range`, in address order, none overlapping. A
    /// prefix larger than a chunk is listed, whole, in every chunk it covers, alone.
    pub fn check(&self, range: IpNet) -> Result<(), String> {
        for r in &self.runs {
            let covers = r.cidr.contains(&range) && r.cidr.prefix_len() < range.prefix_len();
            if !range.contains(&r.cidr) && !covers {
                return Err(format!("{} lies outside the chunk {range}", r.cidr));
            }
            if covers && self.runs.len() > 1 {
                return Err(format!(
                    "{} covers the whole chunk {range} but is not alone in it",
                    r.cidr
                ));
            }
            if r.cidr != r.cidr.trunc() {
                return Err(format!("{} is not aligned", r.cidr));
            }
        }
        for pair in self.runs.windows(2) {
            if pair[0].cidr.broadcast() >= pair[1].cidr.network() {
                return Err(format!(
                    "{} and {} overlap or are out of order",
                    pair[0].cidr, pair[1].cidr
                ));
            }
        }
        Ok(())
    }

    /// The chunk with `run` added in address order (the caller has checked it is free).
    pub fn with(&self, run: Run) -> Chunk {
        let mut runs = self.runs.clone();
        let at = runs.partition_point(|r| r.cidr.network() < run.cidr.network());
        runs.insert(at, run);
        Chunk { runs }
    }

    /// The chunk without the allocation `cidr`, and the run removed (None: no such allocation).
    pub fn without(&self, cidr: IpNet) -> Option<(Chunk, Run)> {
        let at = self.runs.iter().position(|r| r.cidr == cidr)?;
        let mut runs = self.runs.clone();
        let removed = runs.remove(at);
        Some((Chunk { runs }, removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cidr: &str) -> Run {
        Run {
            cidr: cidr.parse().unwrap(),
            kind: Kind::Prefix,
            node: "n1".into(),
            lease: 7,
        }
    }

    #[test]
    fn runs_stay_ordered_and_round_trip() {
        let range: IpNet = "10.0.4.0/22".parse().unwrap();
        let c = Chunk::default()
            .with(run("10.0.5.0/28"))
            .with(run("10.0.4.16/28"));
        assert_eq!(c.runs[0].cidr.to_string(), "10.0.4.16/28");
        let back = Chunk::from_bytes(&c.to_bytes(), range).unwrap();
        assert_eq!(back, c);
        let (smaller, removed) = c.without("10.0.4.16/28".parse().unwrap()).unwrap();
        assert_eq!(removed, run("10.0.4.16/28"));
        assert_eq!(smaller.runs.len(), 1);
        assert!(c.without("10.0.4.32/28".parse().unwrap()).is_none());
    }

    #[test]
    fn a_corrupt_chunk_is_refused_naming_what_is_wrong() {
        let range: IpNet = "10.0.4.0/22".parse().unwrap();
        let outside = Chunk::default().with(run("10.0.8.0/28"));
        assert!(Chunk::from_bytes(&outside.to_bytes(), range)
            .unwrap_err()
            .contains("10.0.8.0/28 lies outside"));
        let overlap = Chunk {
            runs: vec![run("10.0.4.0/27"), run("10.0.4.16/28")],
        };
        assert!(Chunk::from_bytes(&overlap.to_bytes(), range)
            .unwrap_err()
            .contains("overlap"));
        assert!(Chunk::from_bytes(b"{\"runs\":3}", range).is_err());
        // A prefix larger than the chunk: listed whole, and alone.
        let spanning = Chunk::default().with(run("10.0.0.0/21"));
        assert!(Chunk::from_bytes(&spanning.to_bytes(), range).is_ok());
        let crowded = Chunk {
            runs: vec![run("10.0.0.0/21"), run("10.0.5.0/28")],
        };
        assert!(Chunk::from_bytes(&crowded.to_bytes(), range)
            .unwrap_err()
            .contains("not alone"));
    }
}
