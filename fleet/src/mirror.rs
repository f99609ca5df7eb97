//! The local mirror of a fleet subnet: every chunk as last read, with its etcd revision, and an
//! in-process [`Subnet`] holding the same allocations, so that placement, statistics and
//! explanations are pdipam's own.

use crate::chunk::{Chunk, Kind, Run};
use crate::config::FleetConfig;
use ipnet::IpNet;
use pdipam::Subnet;
use std::collections::{BTreeMap, HashMap};

/// A chunk as read: its value and the `mod_revision` a commit compares (0: the key is absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// The allocations.
    pub chunk: Chunk,
    /// etcd's `mod_revision` of the key when read.
    pub revision: i64,
}

/// The mirror.
pub struct Mirror {
    pub config: FleetConfig,
    /// The configuration key's `mod_revision` as read (claims compare it: a claim placed under
    /// reservations that have changed since loses its race and is placed again).
    pub config_revision: i64,
    pub subnet: Subnet,
    chunks: BTreeMap<u64, Stored>,
    /// Prefixes larger than a chunk, with how many chunks list them as last read: the
    /// in-process subnet holds one from the first chunk that lists it to the last that drops it.
    spans: HashMap<IpNet, u64>,
    /// The store revision up to which every chunk change has been read (0: nothing read yet).
    /// Chunk keys are written, never deleted, so a read of the chunks changed since this
    /// revision brings the whole mirror up to date.
    pub synced: i64,
}

impl Mirror {
    pub fn new(config: FleetConfig, config_revision: i64, subnet: Subnet) -> Self {
        Mirror {
            config,
            config_revision,
            subnet,
            chunks: BTreeMap::new(),
            spans: HashMap::new(),
            synced: 0,
        }
    }

    /// Brings the configuration to `config` (newer reads only): the in-process subnet drops the
    /// reservations that went and takes those that came. Only reservations change after `init`.
    pub fn set_config(&mut self, config: FleetConfig, revision: i64) {
        if revision <= self.config_revision {
            return;
        }
        for r in &self.config.reservations {
            if !config.reservations.contains(r) {
                let _ = self.subnet.remove_reservation(r.cidr);
            }
        }
        for r in &config.reservations {
            if !self.config.reservations.contains(r) {
                // Checked when it was written (inside the subnet, no overlap).
                let _ = self.subnet.add_reservation(r.cidr, r.kind);
            }
        }
        self.config.reservations = config.reservations;
        self.config_revision = revision;
    }

    /// The chunk as last read (empty and absent when never read).
    pub fn stored(&self, index: u64) -> Stored {
        self.chunks.get(&index).cloned().unwrap_or_default()
    }

    /// The chunk as last read, if it was.
    pub fn get(&self, index: u64) -> Option<&Stored> {
        self.chunks.get(&index)
    }

    /// Every chunk read so far.
    pub fn chunks(&self) -> impl Iterator<Item = (&u64, &Stored)> {
        self.chunks.iter()
    }

    /// Brings chunk `index` to `stored` (newer reads only): the in-process subnet drops what
    /// left the chunk and takes what arrived.
    pub fn apply(&mut self, index: u64, stored: Stored) {
        let old = self.chunks.get(&index).cloned().unwrap_or_default();
        if stored.revision < old.revision {
            return;
        }
        for r in &old.chunk.runs {
            if !stored
                .chunk
                .runs
                .iter()
                .any(|n| n.cidr == r.cidr && n.kind == r.kind)
                && self.last_listing(r.cidr)
            {
                let _ = self.subnet.release(r.cidr);
            }
        }
        for r in &stored.chunk.runs {
            if !old
                .chunk
                .runs
                .iter()
                .any(|o| o.cidr == r.cidr && o.kind == r.kind)
                && self.first_listing(r.cidr)
            {
                // Checked when read (inside the chunk, no overlap); a failure here means the
                // allocation sits on a reserved address, which verify() reports.
                let _ = take(&self.subnet, r);
            }
        }
        self.chunks.insert(index, stored);
    }

    /// Counts one more chunk listing `cidr`: true when it is the first (always, for an
    /// allocation inside one chunk).
    fn first_listing(&mut self, cidr: IpNet) -> bool {
        if cidr.prefix_len() >= self.config.chunk_len {
            return true;
        }
        let n = self.spans.entry(cidr).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Counts one chunk less listing `cidr`: true when none lists it any more.
    fn last_listing(&mut self, cidr: IpNet) -> bool {
        if cidr.prefix_len() >= self.config.chunk_len {
            return true;
        }
        match self.spans.get_mut(&cidr) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                self.spans.remove(&cidr);
                true
            }
        }
    }

    /// The holder of `cidr` as recorded.
    pub fn run(&self, cidr: IpNet) -> Option<Run> {
        let index = self.config.chunk_of(cidr);
        self.chunks
            .get(&index)?
            .chunk
            .runs
            .iter()
            .find(|r| r.cidr == cidr)
            .cloned()
    }
}

/// Claims `run` in an in-process subnet as the kind it is.
pub fn take(subnet: &Subnet, run: &Run) -> Result<(), pdipam::SubnetError> {
    match run.kind {
        Kind::Prefix => subnet.allocate_prefix_at(run.cidr),
        Kind::Address => subnet.allocate_ip_at(run.cidr.addr()),
    }
}
