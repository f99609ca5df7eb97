//! Which network gives which blocks, across the networks of one data directory: two network
//! configurations that list overlapping blocks would each give the same address to a pod of
//! their own, since each keeps its own state. Each network records its configured blocks in
//! `<dataDir>/<network>/blocks`; a network whose blocks are new or changed registers them under
//! a lock over the whole data directory, after checking every other network's record, so two
//! networks never hold overlapping blocks at once. A call whose configuration matches its
//! record (the steady state) reads only that small file.

use crate::config::NetworkConfig;
use crate::error::{code, CniError};
use crate::lock::StateLock;
use ipnet::IpNet;
use std::fs;
use std::path::Path;

const RECORD: &str = "blocks";
const LOCK: &str = ".blocks.lock";

/// The configured blocks, in order (none in fleet mode: the fleet never gives one block to two
/// members, and each network is a member of its own).
fn configured(net: &NetworkConfig) -> Vec<IpNet> {
    if net.ipam.fleet.is_some() {
        return Vec::new();
    }
    let mut blocks: Vec<IpNet> = net
        .ipam
        .families
        .iter()
        .flat_map(|f| f.blocks.iter().copied())
        .collect();
    blocks.sort();
    blocks
}

fn read_record(dir: &Path) -> Option<Vec<IpNet>> {
    let text = fs::read(dir.join(RECORD)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Makes sure no other network of the data directory holds a block overlapping this one's.
/// Called with the network's own lock held.
///
/// # Errors
/// Code 7 naming both networks and the overlapping blocks; 5 or 11 for the record or the lock.
pub fn register(net: &NetworkConfig, dir: &Path) -> Result<(), CniError> {
    let mine = configured(net);
    if read_record(dir).as_ref() == Some(&mine) {
        return Ok(());
    }
    let data_dir = &net.ipam.data_dir;
    let _all = StateLock::acquire(&data_dir.join(LOCK), net.ipam.lock_timeout)?;
    let entries = fs::read_dir(data_dir).map_err(|e| {
        CniError::new(
            code::IO_FAILURE,
            format!("cannot list {}", data_dir.display()),
        )
        .with_details(e.to_string())
    })?;
    for entry in entries.flatten() {
        let other = entry.path();
        if other == dir || !other.is_dir() {
            continue;
        }
        let Some(theirs) = read_record(&other) else {
            continue;
        };
        for b in &mine {
            if let Some(t) = theirs.iter().find(|t| t.contains(b) || b.contains(*t)) {
                return Err(CniError::new(
                    code::INVALID_CONFIG,
                    format!(
                        "ipam: network {:?} lists {b}, which overlaps {t} of network {:?} in the \
                         same dataDir: two networks would give one address to two pods",
                        net.name,
                        entry.file_name().to_string_lossy()
                    ),
                )
                .with_details(format!(
                    "give each network its own blocks; if network {:?} is gone, remove its \
                     state directory {} (after checking with `pdipam inspect` that it holds no \
                     pod)",
                    entry.file_name().to_string_lossy(),
                    other.display()
                )));
            }
        }
    }
    let bytes = serde_json::to_vec(&mine).expect("a list of CIDRs always serialises");
    pdipam::persist::write_durably(&dir.join(RECORD), &bytes).map_err(|e| {
        CniError::new(
            code::IO_FAILURE,
            format!("cannot write {}", dir.join(RECORD).display()),
        )
        .with_details(e.to_string())
    })
}
