//! A network's state across calls: one pdipam node checkpoint per address family in
//! `<dataDir>/<network>/`, read and written under the network's lock.
//!
//! Each call restores the checkpoint, lays the configured blocks over it, acts, and writes the
//! checkpoint back durably before its result is printed: as two generations written in place
//! in turn ([`Generations`]), so that a change costs one data sync and no directory sync. The configuration is authoritative for blocks: a block it no longer
//! lists is detached, and any pod still holding an address there is kept in the node's
//! quarantine (its address is given to no one else; DEL and GC release it) rather than dropped.

use crate::config::{FamilyConfig, IpamConfig, NetworkConfig};
use crate::error::{code, CniError};
use crate::fleet::config::FleetSettings;
use crate::lock::StateLock;
use pdipam::{
    limits::{Hypervisor, InstanceLimits},
    persist::{ConfigRecord, Generations, InterfaceRecord, NodeCheckpoint, PersistError},
    AddressMode, InterfaceFlags, IpFamily, Node, SystemClock, Timestamp,
};
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The one interface the plugin's node has: the configuration's blocks (or, in fleet mode,
/// the node's claimed prefixes) hang off it.
pub const INTERFACE_ID: &str = "pdipam-cni";

/// One family's node and where it lives.
#[derive(Debug)]
pub struct FamilyState {
    /// The family.
    pub family: IpFamily,
    /// Its configuration; `None` when a checkpoint exists but the configuration has no block
    /// of this family any more (its pods are all in quarantine then).
    pub config: Option<FamilyConfig>,
    /// The node, restored.
    pub node: Node,
    path: PathBuf,
    generations: Generations,
    changed: bool,
}

impl FamilyState {
    /// Marks the family to be written by [`NetworkState::commit`].
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }
}

/// A network's state, locked for this call.
#[derive(Debug)]
pub struct NetworkState {
    /// The families with a configuration or a checkpoint, IPv4 first.
    pub families: Vec<FamilyState>,
    _lock: StateLock,
}

/// The directory holding a network's state.
pub fn state_dir(net: &NetworkConfig) -> PathBuf {
    net.ipam.data_dir.join(&net.name)
}

fn io_error(what: String, e: impl ToString) -> CniError {
    CniError::new(code::IO_FAILURE, what).with_details(e.to_string())
}

/// "IPv4" or "IPv6", for messages.
pub fn family_name(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "IPv4",
        IpFamily::V6 => "IPv6",
    }
}

fn checkpoint_path(dir: &Path, family: IpFamily) -> PathBuf {
    dir.join(match family {
        IpFamily::V4 => "ipv4.checkpoint",
        IpFamily::V6 => "ipv6.checkpoint",
    })
}

impl NetworkState {
    /// Whether the network has state at all (DEL and CHECK of a network never used need not
    /// create it).
    pub fn exists(net: &NetworkConfig) -> bool {
        state_dir(net).is_dir()
    }

    /// Creates the state directory if needed, takes the lock, and restores every family.
    ///
    /// # Errors
    /// Code 5 for I/O, 11 if the lock stays held past the timeout, 101 for a checkpoint that
    /// cannot be read back (it is never replaced silently).
    pub fn open(net: &NetworkConfig) -> Result<Self, CniError> {
        let dir = state_dir(net);
        if !dir.is_dir() {
            create_durably(&dir)?;
        }
        let lock = StateLock::acquire(&dir.join("lock"), net.ipam.lock_timeout)?;
        remove_abandoned_temporaries(&dir);
        crate::registry::register(net, &dir)?;
        let mut families = Vec::new();
        for family in [IpFamily::V4, IpFamily::V6] {
            let path = checkpoint_path(&dir, family);
            let config = net.ipam.families.iter().find(|f| f.family == family);
            let (generations, stored) = match Generations::open(&path) {
                Ok(read) => read,
                // There but unreadable (permissions, a failing disk): I/O, not a bad checkpoint.
                Err(e @ PersistError::Io { .. }) => {
                    return Err(io_error(format!("cannot read {}", path.display()), e))
                }
                Err(e) => return Err(bad_state(&path, e)),
            };
            if let Some((file, why)) = generations.damaged() {
                // The plugin has no log but its stderr, which runtimes keep with the call.
                eprintln!(
                    "pdipam-cni: {} does not open ({why}); taken for a write cut short, the \
                     newest generation {} is used, and the damaged file will be kept as {}",
                    file.display(),
                    generations
                        .newest_file()
                        .map_or_else(String::new, |f| f.display().to_string()),
                    Generations::damaged_copy(file).display()
                );
            }
            if stored.is_none() && config.is_none() {
                continue;
            }
            // Fleet mode: the blocks are the ones the node claimed, as the checkpoint has them.
            let claimed = net.ipam.fleet.as_ref().zip(config).map(|(fleet, c)| {
                let mut c = c.clone();
                c.blocks = stored
                    .as_ref()
                    .and_then(|s| s.interfaces.first())
                    .map(|i| i.prefixes.clone())
                    .unwrap_or_default();
                (c, fleet_slots(fleet, family))
            });
            let (config, slots) = match &claimed {
                Some((c, slots)) => (Some(c), *slots),
                None => (config, config.map_or(0, |c| c.blocks.len())),
            };
            let checkpoint = overlay(stored, family, config, slots, &net.ipam);
            let restored = checkpoint
                .restore(&path.display().to_string(), Arc::new(SystemClock))
                .map_err(|e| bad_state(&path, e))?;
            families.push(FamilyState {
                family,
                config: config.cloned(),
                node: restored.node,
                path,
                generations,
                changed: false,
            });
        }
        Ok(NetworkState {
            families,
            _lock: lock,
        })
    }

    /// Writes every changed family durably. Called before any result is printed.
    ///
    /// # Errors
    /// Code 5 naming the file; the families written before it stay written (a failed write
    /// leaves the family's newest generation as it was).
    pub fn commit(&mut self) -> Result<(), CniError> {
        for f in self.families.iter_mut().filter(|f| f.changed) {
            f.generations
                .write(&mut f.node.checkpoint(None))
                .map_err(|e| io_error(format!("cannot write {}", f.path.display()), e))?;
            f.changed = false;
        }
        Ok(())
    }
}

fn bad_state(path: &Path, e: PersistError) -> CniError {
    CniError::new(
        code::BAD_STATE,
        format!(
            "the checkpoint {} cannot be restored; it was left as it is",
            path.display()
        ),
    )
    .with_details(e.to_string())
}

/// Creates the network's state directory and makes its name durable: each checkpoint write
/// fsyncs the directory holding the file, but a new directory's own entry lives in its parent,
/// which a crash could otherwise lose together with every checkpoint inside.
fn create_durably(dir: &Path) -> Result<(), CniError> {
    fs::create_dir_all(dir).map_err(|e| io_error(format!("cannot create {}", dir.display()), e))?;
    if let Some(parent) = dir.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(format!("cannot fsync {}", parent.display()), e))?;
    }
    Ok(())
}

/// Temporary files left by a call killed half-way through a write. Every writer holds the
/// lock, which this call holds now, so any such file is abandoned.
fn remove_abandoned_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && (name.contains(".checkpoint.tmp.") || name.contains(".blocks.tmp."))
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The limits of the plugin's one interface: as many slots as the configuration has blocks
/// (plus the primary address's), since the cloud already decided what is attached.
fn limits_for(blocks: usize) -> InstanceLimits {
    let slots = u32::try_from(blocks).unwrap_or(u32::MAX - 1) + 1;
    InstanceLimits {
        instance_type: "pdipam-cni".into(),
        max_enis: 1,
        ipv4_per_eni: slots,
        ipv6_per_eni: Some(slots),
        hypervisor: Hypervisor::Nitro,
        bare_metal: false,
        default_vcpus: None,
        network_card_count: 1,
        max_enis_all_cards: 1,
        trunking_compatible: None,
        branch_interfaces: None,
    }
}

/// The prefixes a fleet-mode node may hold: enough for `maxPods` pods and the warm prefixes
/// beyond them (an IPv6 /80 serves every pod).
fn fleet_slots(fleet: &FleetSettings, family: IpFamily) -> usize {
    let max_pods = fleet
        .warm
        .max_pods
        .unwrap_or(crate::fleet::config::DEFAULT_MAX_PODS);
    let for_pods = match family {
        IpFamily::V4 => max_pods.div_ceil(16),
        IpFamily::V6 => 1,
    };
    (for_pods + fleet.warm.warm_prefix_target) as usize
}

/// The stored checkpoint (or an empty one) with the configuration laid over it: its blocks,
/// mode and cooldown. Pods, quarantine and cooldowns are kept; the restore quarantines pods
/// whose block is gone and reinstates quarantined pods whose block is back.
fn overlay(
    stored: Option<NodeCheckpoint>,
    family: IpFamily,
    config: Option<&FamilyConfig>,
    slots: usize,
    ipam: &IpamConfig,
) -> NodeCheckpoint {
    let now = pdipam::Clock::now(&SystemClock);
    let mut c = stored.unwrap_or_else(|| NodeCheckpoint {
        written_at: now,
        limits: limits_for(0),
        config: ConfigRecord {
            mode: ipam.mode,
            family,
            cooldown_ms: 0,
            custom_networking: false,
            max_eni: None,
            ipv6_prefix_capacity: pdipam::NodeConfig::default().ipv6_prefix_capacity,
        },
        settings: None,
        interfaces: Vec::new(),
        pods: Vec::new(),
        quarantined: Vec::new(),
        cooling: Vec::new(),
        last_shrink: None,
        last_insufficient_space: None,
    });
    let blocks = config.map_or(&[][..], |f| &f.blocks[..]);
    let attached_at = c.interfaces.first().map_or(now, |i| i.attached_at);
    c.limits = limits_for(slots.max(blocks.len()));
    c.config.mode = ipam.mode;
    c.config.family = family;
    c.config.cooldown_ms = u64::try_from(ipam.cooldown.as_millis()).unwrap_or(u64::MAX);
    let mut sorted = blocks.to_vec();
    sorted.sort();
    let (prefixes, secondary_addresses) = match ipam.mode {
        AddressMode::Prefix => (sorted, Vec::new()),
        AddressMode::Secondary => (Vec::new(), sorted.iter().map(|b| b.addr()).collect()),
    };
    c.interfaces = vec![InterfaceRecord {
        id: INTERFACE_ID.into(),
        device_number: 0,
        primary_address: match family {
            // Never a pod address: the configuration refuses blocks holding it.
            IpFamily::V4 => IpAddr::from([0u8; 4]),
            IpFamily::V6 => IpAddr::from([0u8; 16]),
        },
        flags: InterfaceFlags {
            primary: true,
            ..Default::default()
        },
        attached_at: if attached_at == Timestamp::EPOCH {
            now
        } else {
            attached_at
        },
        prefixes,
        secondary_addresses,
    }];
    c
}
