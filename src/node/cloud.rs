//! Bringing the node in line with what the cloud reports attached, as ipamd's periodic
//! reconcile does: interfaces and blocks that appeared are added, those that vanished are
//! removed (their pods quarantined, never dropped), and the instance metadata's known lag is
//! allowed for in both directions.
//!
//! The metadata service lags behind the API that changes attachments. So a block pdipam itself
//! gave back may still be reported for a while, and adding it again would hand out an address
//! the cloud has already taken away; and a block pdipam just attached may not be reported yet,
//! and removing it would quarantine the pod just placed on it. Both are held off for
//! [`RECONCILE_COOLDOWN`] after pdipam's own change (ipamd keeps the first as its
//! "reconcile cooldown cache"; the second it gets by not reconciling right after growth).

use super::attach::take_records;
use super::block::{Block, BlockKind};
use super::layout::Interface;
use super::{pod_info, Admin, Guards, InterfaceSpec, Node, NodeError, PodInfo, PodKey, Timestamp};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long after pdipam gave a block or interface back a reconcile ignores the cloud still
/// reporting it, and how long after pdipam attached one a reconcile keeps it although the cloud
/// does not report it yet (ipamd's `ipReconcileCooldown`).
pub const RECONCILE_COOLDOWN: Duration = Duration::from_secs(60);

/// One interface as the cloud reports it attached: from EC2's `DescribeNetworkInterfaces`, or
/// from the instance metadata service (`network/interfaces/macs/…`).
///
/// ```
/// use pdipam::{InterfaceSpec, ObservedInterface};
///
/// let eni = ObservedInterface::new(InterfaceSpec::new("eni-1", 1, "10.0.0.20".parse()?))
///     .prefix("10.0.1.16/28".parse()?)
///     .secondary_address("10.0.0.21".parse()?);
/// assert_eq!(eni.prefixes.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedInterface {
    /// Id, device number, primary address and flags. For an interface the node has already,
    /// only the id is read: an attachment's device number and primary address do not change.
    pub spec: InterfaceSpec,
    /// Its delegated prefixes (IPv4 /28, IPv6 /80).
    pub prefixes: Vec<IpNet>,
    /// Its secondary addresses. The interface's primary address may be listed too (the metadata
    /// service lists it first): it is skipped, as it is no pod's.
    pub secondary_addresses: Vec<IpAddr>,
    /// The network card it is attached to (0, the default card, unless set):
    /// [`MultiCardNode::reconcile`](crate::cards::MultiCardNode::reconcile) hands each card's
    /// node its own; [`Node::reconcile`] takes the interfaces of one card and does not read it.
    pub network_card: u32,
}

impl ObservedInterface {
    /// An interface reported with no prefix and no secondary address.
    pub fn new(spec: InterfaceSpec) -> Self {
        ObservedInterface {
            spec,
            prefixes: Vec::new(),
            secondary_addresses: Vec::new(),
            network_card: 0,
        }
    }

    /// Sets [`network_card`](Self::network_card).
    pub fn network_card(mut self, card: u32) -> Self {
        self.network_card = card;
        self
    }

    /// Adds a reported prefix.
    pub fn prefix(mut self, cidr: IpNet) -> Self {
        self.prefixes.push(cidr);
        self
    }

    /// Adds a reported secondary address.
    pub fn secondary_address(mut self, address: IpAddr) -> Self {
        self.secondary_addresses.push(address);
        self
    }

    /// Every reported block with its kind; secondary addresses as /32 or /128, the primary
    /// address left out.
    fn blocks(&self) -> impl Iterator<Item = (IpNet, BlockKind)> + '_ {
        let primary = self.spec.primary_address;
        let prefixes = self.prefixes.iter().map(|&c| (c, BlockKind::Prefix));
        let secondaries = self
            .secondary_addresses
            .iter()
            .filter(move |&&a| a != primary)
            .map(|&a| (IpNet::from(a), BlockKind::Secondary));
        prefixes.chain(secondaries)
    }

    fn reports(&self, cidr: IpNet) -> bool {
        self.blocks().any(|(c, _)| c == cidr)
    }
}

/// What one [`Node::reconcile`] changed, and what it held off or could not take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloudDiff {
    /// Interfaces the cloud reports that the node did not have: added (with their blocks,
    /// listed in `added_blocks`).
    pub added_interfaces: Vec<String>,
    /// Interfaces the node had that the cloud no longer reports: removed with their blocks.
    pub removed_interfaces: Vec<String>,
    /// Blocks added: interface id and prefix (or secondary address as /32 or /128).
    pub added_blocks: Vec<(String, IpNet)>,
    /// Blocks removed, on interfaces still attached (a removed interface's blocks are not
    /// listed again).
    pub removed_blocks: Vec<(String, IpNet)>,
    /// Pods whose address vanished with its block: put into [quarantine](Node::quarantined),
    /// so their addresses go to no one else until the caller releases them or the block comes
    /// back.
    pub quarantined: Vec<PodInfo>,
    /// Quarantined pods whose address an added block holds: they have it again (a block that
    /// moved to another interface keeps its pods this way).
    pub reinstated: Vec<PodKey>,
    /// Reported, but given back by pdipam less than [`RECONCILE_COOLDOWN`] ago: not added
    /// (stale metadata). An interface given back is listed by its id.
    pub ignored_given_back: Vec<(String, Option<IpNet>)>,
    /// Not reported, but attached by pdipam less than [`RECONCILE_COOLDOWN`] ago: kept (the
    /// metadata may not show it yet). An interface is listed with `None`.
    pub awaiting_report: Vec<(String, Option<IpNet>)>,
    /// Reported, but not taken: interface id, the block (or `None` for the interface itself)
    /// and why (a slot or interface limit, an overlap with another attachment, a malformed
    /// prefix, a duplicate in the report). Nothing else changed for these.
    pub refused: Vec<(String, Option<IpNet>, NodeError)>,
}

impl CloudDiff {
    /// `true` when the node already matched the report: nothing added, removed, quarantined,
    /// held off or refused.
    pub fn is_empty(&self) -> bool {
        *self == CloudDiff::default()
    }

    /// Whether the node's attachments changed.
    fn changes_layout(&self) -> bool {
        !(self.added_interfaces.is_empty()
            && self.removed_interfaces.is_empty()
            && self.added_blocks.is_empty()
            && self.removed_blocks.is_empty())
    }
}

/// pdipam's own recent attachment changes, which the metadata may not show yet. Written under
/// the change's locks (admin, then every shard), so a reconcile sees a change and its note
/// together; entries older than [`RECONCILE_COOLDOWN`] are dropped as new ones come, so it stays
/// as small as the changes of the last minute.
#[derive(Debug, Default)]
pub(crate) struct RecentChanges {
    attached: HashMap<IpNet, Timestamp>,
    given_back: HashMap<IpNet, Timestamp>,
    interfaces_given_back: HashMap<Arc<str>, Timestamp>,
}

/// Whether `at` lies less than [`RECONCILE_COOLDOWN`] before `now`.
fn within(at: Timestamp, now: Timestamp) -> bool {
    now.saturating_since(at) < RECONCILE_COOLDOWN
}

impl RecentChanges {
    pub(crate) fn note_attached(&mut self, cidr: IpNet, at: Timestamp) {
        self.prune(at);
        self.given_back.remove(&cidr);
        self.attached.insert(cidr, at);
    }

    pub(crate) fn note_given_back(&mut self, cidr: IpNet, at: Timestamp) {
        self.prune(at);
        self.attached.remove(&cidr);
        self.given_back.insert(cidr, at);
    }

    pub(crate) fn note_interface_given_back(&mut self, iface: &Interface, at: Timestamp) {
        for b in &iface.blocks {
            self.note_given_back(b.cidr, at);
        }
        self.interfaces_given_back.insert(iface.id.clone(), at);
    }

    fn prune(&mut self, now: Timestamp) {
        self.attached.retain(|_, &mut t| within(t, now));
        self.given_back.retain(|_, &mut t| within(t, now));
        self.interfaces_given_back
            .retain(|_, &mut t| within(t, now));
    }

    fn attached_recently(&self, cidr: IpNet, now: Timestamp) -> bool {
        self.attached.get(&cidr).is_some_and(|&t| within(t, now))
    }

    fn given_back_recently(&self, cidr: IpNet, now: Timestamp) -> bool {
        self.given_back.get(&cidr).is_some_and(|&t| within(t, now))
    }

    fn interface_given_back_recently(&self, id: &str, now: Timestamp) -> bool {
        self.interfaces_given_back
            .get(id)
            .is_some_and(|&t| within(t, now))
    }
}

impl Node {
    /// Brings the node in line with what the cloud reports attached (`observed`: every
    /// interface of this node the embedder read from EC2 or the instance metadata), in one
    /// change that assignments see whole or not at all, and returns what changed.
    ///
    /// - An interface or block reported and not attached is added (an interface with the
    ///   reported flags). What cannot be added (no free slot, an overlap, a malformed prefix,
    ///   a second report of one interface) is listed in [`CloudDiff::refused`].
    /// - One attached and not reported is removed. A pod on a removed block is not dropped: it
    ///   goes into [quarantine](Node::quarantined) and is listed, so its address goes to no
    ///   one else until the caller releases it; if the block comes back (on any interface), the
    ///   pod has its address again.
    /// - What pdipam itself [gave back](Node::remove_block) less than [`RECONCILE_COOLDOWN`]
    ///   ago is not added again, and what it attached less than that ago is not removed: the
    ///   metadata lags behind the attachment API.
    ///
    /// Cooling addresses of a removed block are forgotten with it; the planner's own state is
    /// not touched.
    pub fn reconcile(&self, observed: &[ObservedInterface]) -> CloudDiff {
        let now = self.clock.now();
        let mut admin = self.admin.lock();
        let mut guards: Guards<'_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let mut recent = self.recent.lock();
        recent.prune(now);
        let mut diff = CloudDiff::default();
        // The first report of an interface counts; a second is refused.
        let mut reports: HashMap<&str, &ObservedInterface> = HashMap::new();
        let mut in_order = Vec::new();
        for o in observed {
            if reports.contains_key(&*o.spec.id) {
                let err = NodeError::DuplicateInterface {
                    id: o.spec.id.clone(),
                };
                diff.refused.push((o.spec.id.clone(), None, err));
            } else {
                reports.insert(&o.spec.id, o);
                in_order.push(o);
            }
        }
        // Removals first, so that a block reported on another interface than before can be
        // added there.
        let mut interfaces = admin.layout.interfaces.clone();
        let mut removed = Vec::new();
        interfaces.retain_mut(|iface| {
            let id = iface.id.to_string();
            let Some(report) = reports.get(&*iface.id) else {
                if within(iface.attached_at, now) {
                    diff.awaiting_report.push((id, None));
                    return true;
                }
                removed.extend(iface.blocks.iter().cloned());
                diff.removed_interfaces.push(id);
                return false;
            };
            iface.blocks.retain(|b| {
                if report.reports(b.cidr) {
                    return true;
                }
                if recent.attached_recently(b.cidr, now) {
                    diff.awaiting_report.push((id.clone(), Some(b.cidr)));
                    return true;
                }
                removed.push(b.clone());
                diff.removed_blocks.push((id.clone(), b.cidr));
                false
            });
            true
        });
        for report in in_order {
            let id = &report.spec.id;
            self.add_reported(&mut interfaces, id, report, &recent, now, &mut diff);
        }
        if !diff.changes_layout() {
            return diff;
        }
        let before: HashSet<PodKey> = admin.quarantine.iter().map(|q| q.key.clone()).collect();
        let newly = quarantine_records(&mut admin, &mut guards, |b| {
            removed.iter().any(|r| Arc::ptr_eq(r, b))
        });
        self.swap_layout(&mut admin, &mut guards, interfaces);
        let still: HashSet<&PodKey> = admin.quarantine.iter().map(|q| &q.key).collect();
        diff.reinstated = before
            .iter()
            .chain(newly.iter().map(|q| &q.key))
            .filter(|k| !still.contains(k))
            .cloned()
            .collect();
        diff.reinstated.sort();
        diff.quarantined = newly
            .into_iter()
            .filter(|q| still.contains(&q.key))
            .collect();
        diff
    }

    /// Adds the interface `id` as `report` has it (if the node has it not) and the blocks
    /// reported on it that it lacks, to `interfaces`, a working copy of the layout's.
    fn add_reported(
        &self,
        interfaces: &mut Vec<Interface>,
        id: &str,
        report: &ObservedInterface,
        recent: &RecentChanges,
        now: Timestamp,
        diff: &mut CloudDiff,
    ) {
        if !interfaces.iter().any(|i| &*i.id == id) {
            if recent.interface_given_back_recently(id, now) {
                diff.ignored_given_back.push((id.to_owned(), None));
                return;
            }
            match self.add_interface(interfaces, report.spec.clone(), now) {
                Ok(()) => diff.added_interfaces.push(id.to_owned()),
                Err(e) => {
                    diff.refused.push((id.to_owned(), None, e));
                    return;
                }
            }
        }
        for (cidr, kind) in report.blocks() {
            let iface = interfaces
                .iter()
                .find(|i| &*i.id == id)
                .expect("added above");
            if iface.blocks.iter().any(|b| b.cidr == cidr) {
                continue;
            }
            if recent.given_back_recently(cidr, now) {
                diff.ignored_given_back.push((id.to_owned(), Some(cidr)));
                continue;
            }
            match self.add_block(interfaces, id, cidr, kind) {
                Ok(()) => diff.added_blocks.push((id.to_owned(), cidr)),
                Err(e) => diff.refused.push((id.to_owned(), Some(cidr), e)),
            }
        }
    }
}

/// Moves the pod records whose block matches `vanished` from every shard into the node's
/// quarantine, as [`Node::quarantine`] would put them; returns them.
fn quarantine_records(
    admin: &mut Admin,
    guards: &mut Guards<'_>,
    vanished: impl Fn(&Arc<Block>) -> bool,
) -> Vec<PodInfo> {
    let mut moved = take_records(guards, vanished, |shard, layout, r| {
        let mut info = pod_info(layout, r);
        info.block = IpNet::from(info.address);
        info.interface_id = Arc::from("");
        (shard, info)
    });
    // Into the node's list in key order, so that the order does not depend on the shards.
    moved.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    let moved: Vec<PodInfo> = moved
        .into_iter()
        .map(|(shard, info)| {
            // A record sits in its key's shard, whose list of quarantined keys this is.
            guards[shard]
                .quarantined
                .push((info.key.clone(), info.address));
            info
        })
        .collect();
    admin.quarantine.extend(moved.iter().cloned());
    moved
}
