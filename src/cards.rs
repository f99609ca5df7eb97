//! Instances with several network cards, as ipamd's multi-NIC mode serves them: one [`Node`]
//! (one pool, one checkpoint, its own device numbers) per managed card.
//!
//! - Card 0, the default card, is always managed and follows the node's warm-pool settings.
//!   A later card is managed only in multi-NIC mode, and keeps a fixed warm target of one
//!   address ([`card_settings`]), as ipamd keeps `WARM_IP_TARGET` and `MINIMUM_IP_TARGET` at 1
//!   there.
//! - A pod with one interface gets its address from card 0, and from a later card only when
//!   card 0 has none free. A multi-NIC pod gets one address from every managed card, or none.
//! - Max pods counts the default card's interfaces ([`crate::limits::max_pods`]): every
//!   max-pods formula does, and a pod's first interface is always on card 0 or falls back.
//!
//! The cloud side stays per card: plan with [`MultiCardNode::plan`], carry the plan out on
//! [`MultiCardNode::card`] with a provider that creates interfaces on that card, write each
//! card's checkpoint to [`card_checkpoint_path`].

use crate::limits::{InstanceLimits, NodeLimits};
use crate::node::{
    Assignment, Clock, CloudDiff, Held, Node, NodeConfig, NodeError, ObservedInterface, PodKey,
    PodRequest, Released, SystemClock,
};
use crate::planner::{Plan, WarmSettings};
use crate::sync::Mutex;
use crate::Timestamp;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which of an instance's network cards pdipam manages.
///
/// ```
/// use pdipam::cards::CardOptions;
///
/// // ipamd's ENABLE_MULTI_NIC=true, card 2 holding only an EFA-only interface.
/// let options = CardOptions::new().multi_nic(true).unmanaged(2);
/// assert!(options.multi_nic);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardOptions {
    /// Manage every card, not only the default one, and serve multi-NIC pods (ipamd's
    /// `ENABLE_MULTI_NIC`). Off: only card 0 is managed.
    pub multi_nic: bool,
    /// Cards left alone even in multi-NIC mode (ipamd leaves a card holding only an EFA-only
    /// interface unmanaged). Card 0 cannot be.
    pub unmanaged: Vec<u32>,
}

impl CardOptions {
    /// Only the default card.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`multi_nic`](Self::multi_nic).
    pub fn multi_nic(mut self, on: bool) -> Self {
        self.multi_nic = on;
        self
    }

    /// Adds a card to [`unmanaged`](Self::unmanaged).
    pub fn unmanaged(mut self, card: u32) -> Self {
        self.unmanaged.push(card);
        self
    }
}

/// Why a multi-card operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The card does not exist on this instance type.
    #[error("network card {card} does not exist: {instance_type} has {cards} network cards")]
    NoSuchCard {
        /// The card asked for.
        card: u32,
        /// The instance type.
        instance_type: String,
        /// Its network cards.
        cards: u32,
    },
    /// The same card was given twice.
    #[error("network card {card} is given twice")]
    DuplicateCard {
        /// The card.
        card: u32,
    },
    /// Card 0 was named unmanaged: it serves every pod's first address.
    #[error("network card 0 (the default card) is always managed")]
    DefaultCardUnmanaged,
    /// The card exists but pdipam does not manage it.
    #[error("network card {card} is not managed (multi-NIC mode is off, or it was left alone)")]
    Unmanaged {
        /// The card.
        card: u32,
    },
    /// A multi-NIC pod asked for addresses while multi-NIC mode is off (ipamd's words).
    #[error("enable multi-nic feature on CNI for creating multi-nic-attachment pods: {key}")]
    MultiNicDisabled {
        /// The pod's key.
        key: PodKey,
    },
    /// A card's node refused; for a multi-NIC pod nothing was kept on any card.
    #[error("network card {card}: {error}")]
    Node {
        /// The card.
        card: u32,
        /// Its node's refusal.
        #[source]
        error: NodeError,
    },
}

/// An address given on one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardAssignment {
    /// The network card.
    pub card: u32,
    /// The address, its block and the interface's device number on that card.
    pub assignment: Assignment,
}

/// An address given back on one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRelease {
    /// The network card.
    pub card: u32,
    /// What that card's node gave back.
    pub released: Released,
}

/// The warm-pool settings card `card` runs under: `settings` on card 0; on a later card a fixed
/// `WARM_IP_TARGET` and `MINIMUM_IP_TARGET` of 1 (so one address, or one prefix, is kept ready
/// and the warm interface and prefix targets play no part), as ipamd sets them there.
pub fn card_settings(card: u32, settings: &WarmSettings) -> WarmSettings {
    if card == 0 {
        settings.clone()
    } else {
        WarmSettings::new()
            .warm_ip_target(1)
            .minimum_ip_target(1)
            .max_pods(settings.max_pods)
    }
}

/// Where card `card`'s checkpoint lives, given card 0's file `base`: `base` itself for card 0,
/// and for a later card the same name with `-nic-<card>` before the extension, as ipamd names
/// its per-card files (`ipam.json`, `ipam-nic-1.json`).
pub fn card_checkpoint_path(base: &Path, card: u32) -> PathBuf {
    if card == 0 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}-nic-{card}.{}", ext.to_string_lossy()),
        None => format!("{stem}-nic-{card}"),
    };
    base.with_file_name(name)
}

/// Key locks: a pod's operations across cards run one at a time, so that two requests of one
/// key cannot take addresses on two cards; keys spread over this many locks.
const KEY_LOCKS: usize = if cfg!(loom) { 2 } else { 64 };

/// Keyed per node, so that an outsider's keys cannot be made to share a lock; loom models need
/// every run to take the same locks, so they get a fixed seed (as the node's shards do).
#[cfg(not(loom))]
type KeyHasher = foldhash::fast::RandomState;
#[cfg(loom)]
type KeyHasher = foldhash::fast::FixedState;

/// An instance's managed network cards, one [`Node`] each.
///
/// ```
/// use pdipam::cards::{CardOptions, MultiCardNode};
/// use pdipam::{limits::InstanceLimits, InterfaceFlags, InterfaceSpec, NodeConfig, PodKey, PodRequest};
///
/// let node = MultiCardNode::new(
///     InstanceLimits::lookup("c6in.32xlarge")?, // two network cards
///     NodeConfig::default(),
///     &CardOptions::new().multi_nic(true),
/// )?;
/// let card1 = node.card(1)?;
/// card1.attach_interface(InterfaceSpec::new("eni-c1", 0, "10.0.9.10".parse()?))?;
/// card1.attach_prefix("eni-c1", "10.0.9.32/28".parse()?)?;
/// // Card 0 has nothing attached: a pod with one interface falls back to card 1.
/// let a = node.assign(PodRequest::new(PodKey::new("aws-cni", "c1", "eth0")))?;
/// assert_eq!((a.card, a.assignment.address.to_string().as_str()), (1, "10.0.9.32"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MultiCardNode {
    /// Managed cards in index order; card 0 first.
    cards: Vec<(u32, Node)>,
    multi_nic: bool,
    key_locks: Box<[Mutex<()>]>,
    hasher: KeyHasher,
}

impl MultiCardNode {
    /// The managed cards of an instance, on the system clock.
    ///
    /// # Errors
    /// [`CardError::NoSuchCard`] for an unmanaged card the instance lacks;
    /// [`CardError::DefaultCardUnmanaged`].
    pub fn new(
        limits: impl Into<NodeLimits>,
        config: NodeConfig,
        options: &CardOptions,
    ) -> Result<Self, CardError> {
        Self::with_clock(limits, config, options, Arc::new(SystemClock))
    }

    /// [`MultiCardNode::new`] on the given clock.
    ///
    /// # Errors
    /// As [`MultiCardNode::new`].
    pub fn with_clock(
        limits: impl Into<NodeLimits>,
        config: NodeConfig,
        options: &CardOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CardError> {
        let limits = limits.into();
        let managed = managed_cards(&limits, options)?;
        let cards = managed
            .into_iter()
            .map(|c| {
                let node = Node::with_clock(limits.clone(), config.clone(), clock.clone());
                (c, node)
            })
            .collect();
        Ok(Self::from_parts(cards, options.multi_nic))
    }

    /// Cards restored from their checkpoints (each card's own [`Node`], restored as from
    /// [`NodeCheckpoint::restore`](crate::persist::NodeCheckpoint::restore)), card 0 first.
    ///
    /// # Errors
    /// [`CardError::NoSuchCard`] for a card the instance lacks (checked against card 0's
    /// limits), [`CardError::DuplicateCard`], [`CardError::DefaultCardUnmanaged`] without
    /// card 0.
    pub fn from_nodes(cards: Vec<(u32, Node)>, multi_nic: bool) -> Result<Self, CardError> {
        let Some((_, first)) = cards.iter().find(|(c, _)| *c == 0) else {
            return Err(CardError::DefaultCardUnmanaged);
        };
        let limits = first.limits().clone();
        let mut seen = Vec::new();
        for (c, _) in &cards {
            if *c >= limits.network_card_count.max(1) {
                return Err(no_such_card(&limits, *c));
            }
            if seen.contains(c) {
                return Err(CardError::DuplicateCard { card: *c });
            }
            seen.push(*c);
        }
        let mut cards = cards;
        cards.sort_by_key(|(c, _)| *c);
        Ok(Self::from_parts(cards, multi_nic))
    }

    fn from_parts(cards: Vec<(u32, Node)>, multi_nic: bool) -> Self {
        MultiCardNode {
            cards,
            multi_nic,
            key_locks: (0..KEY_LOCKS).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }

    /// The node of card `card`.
    ///
    /// # Errors
    /// [`CardError::NoSuchCard`] or [`CardError::Unmanaged`].
    pub fn card(&self, card: u32) -> Result<&Node, CardError> {
        match self.cards.iter().find(|(c, _)| *c == card) {
            Some((_, n)) => Ok(n),
            None if card < self.default_card().limits().network_card_count.max(1) => {
                Err(CardError::Unmanaged { card })
            }
            None => Err(no_such_card(self.default_card().limits(), card)),
        }
    }

    /// The default card's node (card 0).
    pub fn default_card(&self) -> &Node {
        &self.cards[0].1
    }

    /// The managed cards, in index order, with their nodes.
    pub fn cards(&self) -> impl Iterator<Item = (u32, &Node)> {
        self.cards.iter().map(|(c, n)| (*c, n))
    }

    /// Whether multi-NIC pods are served.
    pub fn multi_nic(&self) -> bool {
        self.multi_nic
    }

    /// The plan for card `card` under the node's warm-pool `settings`, as
    /// [`card_settings`] adapts them to the card.
    ///
    /// # Errors
    /// As [`MultiCardNode::card`].
    pub fn plan(
        &self,
        card: u32,
        settings: &WarmSettings,
        now: Timestamp,
    ) -> Result<Plan, CardError> {
        let node = self.card(card)?;
        let settings = card_settings(card, settings);
        Ok(crate::planner::plan(
            node.limits(),
            &settings,
            &node.snapshot(),
            now,
        ))
    }

    /// An address for a pod with one interface: from card 0, or, when card 0 has none free
    /// ([`NodeError::NoAvailableAddresses`]), from the next managed card that has one, as
    /// ipamd's `AddNetwork` does. A key already holding an address on any card gets that one
    /// back (`existing`), so a retried ADD never takes a second one.
    ///
    /// # Errors
    /// [`CardError::Node`] with card 0's refusal when no card has an address (it names the
    /// addresses cooling there), or the first refusal other than "none free";
    /// [`NodeError::KeyHoldsOther`] naming the card when the key is quarantined on one.
    pub fn assign(&self, request: PodRequest) -> Result<CardAssignment, CardError> {
        if self.cards.len() == 1 {
            let assignment = self.default_card().assign(request).map_err(on_card(0))?;
            return Ok(CardAssignment {
                card: 0,
                assignment,
            });
        }
        let _key = self.key_lock(&request.key);
        for (card, node) in &self.cards {
            match node.held_by(&request.key) {
                Some(Held::Assigned(assignment)) => {
                    return Ok(CardAssignment {
                        card: *card,
                        assignment,
                    })
                }
                Some(Held::Quarantined(held)) => {
                    return Err(quarantined(*card, &request.key, held))
                }
                None => {}
            }
        }
        let mut first_refusal = None;
        for (card, node) in &self.cards {
            match node.assign(request.clone()) {
                Ok(assignment) => {
                    return Ok(CardAssignment {
                        card: *card,
                        assignment,
                    })
                }
                Err(e @ NodeError::NoAvailableAddresses { .. }) => {
                    first_refusal.get_or_insert((*card, e));
                }
                Err(e) => return Err(on_card(*card)(e)),
            }
        }
        let (card, error) = first_refusal.expect("at least card 0 was asked");
        Err(CardError::Node { card, error })
    }

    /// One address from every managed card for a multi-NIC pod, card 0 first, or none: if a
    /// card refuses, the addresses taken on the others for this request are released again
    /// (they cool down like any released address). The metadata's interface count is set to
    /// the number of cards. A key holding addresses already keeps them and gets the missing
    /// cards' added.
    ///
    /// # Errors
    /// [`CardError::MultiNicDisabled`] when multi-NIC mode is off; [`CardError::Node`] naming
    /// the card that refused.
    pub fn assign_multi_nic(
        &self,
        mut request: PodRequest,
    ) -> Result<Vec<CardAssignment>, CardError> {
        if !self.multi_nic {
            return Err(CardError::MultiNicDisabled { key: request.key });
        }
        request.metadata.interfaces_count = self.cards.len() as u32;
        let _key = self.key_lock(&request.key);
        for (card, node) in &self.cards {
            if let Some(Held::Quarantined(held)) = node.held_by(&request.key) {
                return Err(quarantined(*card, &request.key, held));
            }
        }
        let mut got = Vec::with_capacity(self.cards.len());
        for (card, node) in &self.cards {
            match node.assign(request.clone()) {
                Ok(assignment) => got.push((
                    node,
                    CardAssignment {
                        card: *card,
                        assignment,
                    },
                )),
                Err(error) => {
                    for (node, _) in got.iter().filter(|(_, a)| !a.assignment.existing) {
                        // Taken under the key lock just now; if the caller released it on the
                        // card's node directly meanwhile, it is gone already, as wanted.
                        let _ = node.release(&request.key);
                    }
                    return Err(CardError::Node { card: *card, error });
                }
            }
        }
        Ok(got.into_iter().map(|(_, a)| a).collect())
    }

    /// Gives back every address the key holds, on every card (assigned or quarantined). A key
    /// no card holds gets the node's own answer, card by card: an entry ipamd migrated under
    /// the old key (see [`Node::release`]) is released, or else card 0's
    /// [`NodeError::UnknownPod`] is returned.
    ///
    /// # Errors
    /// [`CardError::Node`] with card 0's [`NodeError::UnknownPod`] when no card knows the key
    /// (a CNI's DEL may treat it as success).
    pub fn release(&self, key: &PodKey) -> Result<Vec<CardRelease>, CardError> {
        if self.cards.len() == 1 {
            let released = self.default_card().release(key).map_err(on_card(0))?;
            return Ok(vec![CardRelease { card: 0, released }]);
        }
        let _key = self.key_lock(key);
        let mut out = Vec::new();
        for (card, node) in &self.cards {
            if node.held_by(key).is_some() {
                let released = node.release(key).map_err(on_card(*card))?;
                out.push(CardRelease {
                    card: *card,
                    released,
                });
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        let mut unknown = None;
        for (card, node) in &self.cards {
            match node.release(key) {
                Ok(released) => {
                    return Ok(vec![CardRelease {
                        card: *card,
                        released,
                    }])
                }
                Err(e @ NodeError::UnknownPod { .. }) => {
                    unknown.get_or_insert((*card, e));
                }
                Err(error) => return Err(CardError::Node { card: *card, error }),
            }
        }
        let (card, error) = unknown.expect("every card was asked");
        Err(CardError::Node { card, error })
    }

    /// The addresses a key holds, card by card (quarantined ones not included).
    pub fn held(&self, key: &PodKey) -> Vec<CardAssignment> {
        self.cards
            .iter()
            .filter_map(|(card, node)| match node.held_by(key)? {
                Held::Assigned(assignment) => Some(CardAssignment {
                    card: *card,
                    assignment,
                }),
                Held::Quarantined(_) => None,
            })
            .collect()
    }

    /// Brings each managed card in line with what the cloud reports ([`Node::reconcile`]),
    /// the reported interfaces split by their
    /// [`network_card`](ObservedInterface::network_card). Interfaces on cards pdipam does not
    /// manage are left out, as ipamd leaves them.
    pub fn reconcile(&self, observed: &[ObservedInterface]) -> Vec<(u32, CloudDiff)> {
        self.cards
            .iter()
            .map(|(card, node)| {
                let mine: Vec<ObservedInterface> = observed
                    .iter()
                    .filter(|o| o.network_card == *card)
                    .cloned()
                    .collect();
                (*card, node.reconcile(&mine))
            })
            .collect()
    }

    /// Checks every card's node ([`Node::verify`]) and that no address is held on two cards.
    ///
    /// # Errors
    /// The first violation, naming the card.
    pub fn verify(&self) -> Result<(), String> {
        let mut seen = std::collections::HashMap::new();
        for (card, node) in &self.cards {
            node.verify()
                .map_err(|e| format!("network card {card}: {e}"))?;
            for p in node.pods().into_iter().chain(node.quarantined()) {
                if let Some(other) = seen.insert(p.address, *card) {
                    return Err(format!(
                        "{} is held on network cards {other} and {card}",
                        p.address
                    ));
                }
            }
        }
        Ok(())
    }

    fn key_lock(&self, key: &PodKey) -> crate::sync::MutexGuard<'_, ()> {
        self.key_locks[self.hasher.hash_one(key) as usize % KEY_LOCKS].lock()
    }
}

/// The cards `options` asks pdipam to manage on an instance with `limits`, card 0 first.
fn managed_cards(limits: &InstanceLimits, options: &CardOptions) -> Result<Vec<u32>, CardError> {
    let count = limits.network_card_count.max(1);
    for &c in &options.unmanaged {
        if c == 0 {
            return Err(CardError::DefaultCardUnmanaged);
        }
        if c >= count {
            return Err(no_such_card(limits, c));
        }
    }
    let last = if options.multi_nic { count } else { 1 };
    Ok((0..last)
        .filter(|c| !options.unmanaged.contains(c))
        .collect())
}

fn no_such_card(limits: &InstanceLimits, card: u32) -> CardError {
    CardError::NoSuchCard {
        card,
        instance_type: limits.instance_type.clone(),
        cards: limits.network_card_count.max(1),
    }
}

/// The refusal of a key holding `held` in quarantine on `card` (its block vanished): it may not
/// take an address on another card meanwhile, as on its own card it may not.
fn quarantined(card: u32, key: &PodKey, held: std::net::IpAddr) -> CardError {
    let error = NodeError::KeyHoldsOther {
        key: key.clone(),
        held,
    };
    CardError::Node { card, error }
}

fn on_card(card: u32) -> impl Fn(NodeError) -> CardError {
    move |error| CardError::Node { card, error }
}
