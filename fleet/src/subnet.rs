//! [`FleetSubnet`]: one subnet shared by many nodes, each claim committed by one etcd
//! transaction that compares the chunk's `mod_revision` and the node's lease.

use crate::chunk::{Chunk, Kind, Run};
use crate::config::FleetConfig;
use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::feed::{subscribe, Batch, Subscription};
use crate::keyspace::Keyspace;
use crate::member::Member;
use crate::mirror::{take, Mirror, Stored};
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use ipnet::IpNet;
use pdipam::{
    Holder, PrefixFailure, Reservation, ReservationKind, Subnet, SubnetError, SubnetStats,
};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Attempts a claim makes before [`FleetError::Contention`]: each lost attempt means another
/// member committed in the same chunk meanwhile, so the fleet as a whole made progress; the
/// bound only stops a member that loses every race for minutes on end.
const MAX_ATTEMPTS: u32 = 1000;

/// A prefix larger than a chunk is claimed in one transaction over every chunk it covers: at
/// most 2^6 = 64 of them, as etcd allows 128 operations per transaction branch by default
/// (`--max-txn-ops`) and the else-branch reads each chunk and the registration.
const MAX_SPAN_LOG2: u8 = 6;

/// A subnet shared through etcd, as one member (node) sees it.
///
/// It keeps a mirror of every chunk it has read; a claim picks its candidate locally with
/// the reservation rules of pdipam's placement, then commits it with one transaction:
/// `If(mod_revision(chunk) == seen && lease(registration) == mine) Then(Put chunk') Else(Get
/// chunk, Get registration)`. A lost race costs no extra round trip: the else-branch's read
/// updates the mirror and the claim tries again. Calls on one `FleetSubnet` are serialised (a
/// node's claims are few); many members run in parallel. Each walks the chunks in an order of
/// its own (a start chunk and an odd stride from a hash of the node's name), after the chunks
/// where it already holds blocks, so that members rarely meet in one chunk and a node's blocks
/// stay together.
pub struct FleetSubnet {
    etcd: Etcd,
    keys: Keyspace,
    node: String,
    lease: i64,
    start_chunk: u64,
    /// The step of this node's walk over the chunks (odd, so it visits every chunk of a
    /// power-of-two count): members that start in one chunk leave it in different directions.
    stride: u64,
    mirror: Mutex<Mirror>,
    commits: tokio::sync::Mutex<()>,
    /// A commit whose answer was lost (etcd unavailable or too slow): it may still land.
    /// Every later call settles it first.
    pending: Mutex<Option<Pending>>,
    /// Transactions sent, and those lost to another member's change.
    transactions: AtomicU64,
    conflicts: AtomicU64,
    /// Chunk values read by refreshes (what a full subnet costs to learn).
    chunks_read: AtomicU64,
    /// The watch feeding the mirror (none for [`FleetSubnet::open_unwatched`]), and what it
    /// broadcast that this member has not applied yet.
    feed: Option<Subscription>,
    /// The feed may have missed changes since the last read: `synced` stays where the last
    /// read left it until the next one.
    gap: AtomicBool,
}

/// A commit whose outcome is unknown: the chunks it targeted as it saw them (their revisions
/// are what it compared), and what it did.
#[derive(Clone)]
struct Pending {
    seen: Vec<(u64, Stored)>,
    change: Change,
    /// The change undid a claim that landed although its caller was told it failed: it must
    /// end done, whatever happens to its own answer (nobody else will retry it).
    undo: bool,
}

/// What one commit wants to do to one chunk.
#[derive(Clone)]
enum Change {
    Add(Run),
    Remove(IpNet),
    Replace(Chunk),
}

impl FleetSubnet {
    /// Creates the fleet subnet `config.cidr` under `keys`, once: a second `init` with the same
    /// configuration succeeds and changes nothing.
    ///
    /// # Errors
    /// [`FleetError::Config`] when pdipam refuses the configuration,
    /// [`FleetError::ConfiguredDifferently`] when the subnet exists with another one, or etcd's.
    pub async fn init(
        etcd: &Etcd,
        keys: &Keyspace,
        config: &FleetConfig,
    ) -> Result<(), FleetError> {
        config.build().map_err(|message| FleetError::Config {
            cidr: config.cidr,
            message,
        })?;
        let key = keys.config(config.cidr);
        let value = serde_json::to_vec(config).expect("a configuration always serialises");
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), value, None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = etcd.call(etcd.client().txn(txn)).await?;
        if resp.succeeded() {
            return Ok(());
        }
        let existing = first_value(&resp.op_responses())
            .and_then(|v| serde_json::from_slice::<FleetConfig>(&v).ok());
        if existing.as_ref() == Some(config) {
            Ok(())
        } else {
            Err(FleetError::ConfiguredDifferently {
                cidr: config.cidr,
                key,
            })
        }
    }

    /// Opens the fleet subnet `cidr` as `member`: reads its configuration and every chunk.
    ///
    /// # Errors
    /// [`FleetError::NotInitialised`], [`FleetError::Corrupt`] naming the key, or etcd's.
    pub async fn open(
        etcd: &Etcd,
        keys: &Keyspace,
        cidr: IpNet,
        member: &Member,
    ) -> Result<Self, FleetError> {
        Self::open_with(etcd, keys, cidr, member, true).await
    }

    /// Opens the fleet subnet as [`open`](Self::open) does, without a watch: for a short-lived
    /// process (a CNI call) that makes a claim or two and exits. Its mirror is as fresh as its
    /// last read; lost races and refusals read what changed.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_unwatched(
        etcd: &Etcd,
        keys: &Keyspace,
        cidr: IpNet,
        member: &Member,
    ) -> Result<Self, FleetError> {
        Self::open_with(etcd, keys, cidr, member, false).await
    }

    async fn open_with(
        etcd: &Etcd,
        keys: &Keyspace,
        cidr: IpNet,
        member: &Member,
        watched: bool,
    ) -> Result<Self, FleetError> {
        let (config, config_revision) = read_config(etcd, keys, cidr, None).await?;
        let subnet = config
            .build()
            .map_err(|message| FleetError::Config { cidr, message })?;
        let hash = fnv1a(member.name().as_bytes());
        let start_chunk = hash % config.chunk_count();
        let stride = ((hash >> 32) | 1) % config.chunk_count().max(1);
        // Subscribed before the first read: every later change is in the read or received.
        let feed = if watched {
            let (feed, receiver) = subscribe(etcd, keys, &config).await?;
            Some((feed, Mutex::new(receiver)))
        } else {
            None
        };
        let fleet = FleetSubnet {
            etcd: etcd.clone(),
            keys: keys.clone(),
            node: member.name().to_string(),
            lease: member.lease(),
            start_chunk,
            stride: stride.max(1),
            mirror: Mutex::new(Mirror::new(config, config_revision, subnet)),
            commits: tokio::sync::Mutex::new(()),
            pending: Mutex::new(None),
            transactions: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            chunks_read: AtomicU64::new(0),
            feed,
            gap: AtomicBool::new(false),
        };
        fleet.refresh().await?;
        Ok(fleet)
    }

    /// Applies what the watch delivered since the last call; after a gap (this member fell
    /// behind, or the watch lost events), reads what changed instead.
    ///
    /// # Errors
    /// The read's.
    async fn catch_up(&self) -> Result<(), FleetError> {
        if self.drain() {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Applies what the watch delivered since the last call, without waiting; true when there
    /// was a gap since the last read (the mirror may miss changes until the next read).
    fn drain(&self) -> bool {
        let Some((_, receiver)) = &self.feed else {
            return false;
        };
        loop {
            let next = receiver
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_recv();
            match next {
                Ok(batch) => match &*batch {
                    Batch::Chunks {
                        changes,
                        config,
                        through,
                    } => {
                        let mut mirror = self.mirror();
                        if let Some((config, revision)) = config {
                            mirror.set_config(config.clone(), *revision);
                        }
                        for (index, stored) in changes {
                            mirror.apply(*index, stored.clone());
                        }
                        if !self.gap.load(Ordering::Relaxed) {
                            mirror.synced = mirror.synced.max(*through);
                        }
                    }
                    Batch::Gap => self.gap.store(true, Ordering::Relaxed),
                },
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.gap.store(true, Ordering::Relaxed)
                }
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.gap.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        self.gap.load(Ordering::Relaxed)
    }

    /// The subnet.
    pub fn cidr(&self) -> IpNet {
        self.mirror().config.cidr
    }

    /// The node this member claims for.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Brings the mirror up to date with one range read: the first read takes every chunk; each
    /// later one only the chunks changed since the last (`min_mod_revision`), so confirming that
    /// a subnet is full reads nothing that has not changed.
    ///
    /// # Errors
    /// [`FleetError::Corrupt`] naming the key, or etcd's. The mirror is unchanged on error.
    pub async fn refresh(&self) -> Result<(), FleetError> {
        let cidr = self.cidr();
        // The subnet's whole prefix: its configuration (reservations change) and its chunks.
        let prefix = self.keys.subnet(cidr);
        let config_key = self.keys.config(cidr);
        let synced = self.mirror().synced;
        let mut options = GetOptions::new().with_prefix();
        if synced > 0 {
            options = options.with_min_mod_revision(synced + 1);
        }
        let resp = self
            .etcd
            .call(self.etcd.client().get(prefix, Some(options)))
            .await?;
        let mut read = Vec::new();
        let mut config = None;
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            if key == config_key {
                config = Some((parse_config(&key, kv.value())?, kv.mod_revision()));
                continue;
            }
            let index = self
                .keys
                .chunk_index(cidr, kv.key())
                .ok_or_else(|| corrupt(&key, "not a chunk key"))?;
            read.push((
                index,
                self.parse_chunk(&key, index, kv.value(), kv.mod_revision())?,
            ));
        }
        self.chunks_read
            .fetch_add(read.len() as u64, Ordering::Relaxed);
        let mut mirror = self.mirror();
        if let Some((config, revision)) = config {
            mirror.set_config(config, revision);
        }
        for (index, stored) in read {
            mirror.apply(index, stored);
        }
        let revision = resp.header().map_or(0, |h| h.revision());
        mirror.synced = mirror.synced.max(revision);
        self.gap.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Claims an aligned prefix of length `len`: prefix reservations first, then unreserved
    /// space, as [`Subnet::allocate_prefix`] has them; in each, the chunks where this node
    /// already holds blocks first, then the chunks in this node's own order (see
    /// [`FleetSubnet`]), the lowest free block of a chunk.
    ///
    /// # Errors
    /// [`SubnetError::InsufficientCidrBlocks`] (addresses free, no aligned block) or
    /// [`SubnetError::InsufficientFreeAddressesInSubnet`], as [`Subnet::allocate_prefix`];
    /// [`FleetError::LargerThanChunk`], [`FleetError::Fenced`], [`FleetError::Contention`], etcd's.
    pub async fn allocate_prefix(&self, len: u8) -> Result<IpNet, FleetError> {
        let _one = self.commits.lock().await;
        self.settle().await?;
        self.check_length(len)?;
        let (mut lost, mut refreshed) = (0, false);
        for _ in 0..MAX_ATTEMPTS {
            self.catch_up().await?;
            let picked = {
                let mirror = self.mirror();
                match self.pick_prefix(&mirror, len) {
                    Some(cidr) => Ok((
                        mirror.config.chunks_of(cidr).collect::<Vec<_>>(),
                        self.run(cidr, Kind::Prefix),
                    )),
                    // The mirror's own automatic claim names the refusal users know.
                    None => Err(match mirror.subnet.allocate_prefix(len) {
                        Err(e) => e,
                        Ok(a) => {
                            let _ = mirror.subnet.release(a.cidr);
                            SubnetError::InsufficientCidrBlocks {
                                subnet: mirror.config.cidr,
                                len,
                            }
                        }
                    }),
                }
            };
            let (indices, run) = match picked {
                Ok(p) => p,
                // The mirror may still show blocks other members have released since it read
                // them: a refusal is believed only after reading what changed.
                Err(_) if !refreshed => {
                    self.refresh().await?;
                    refreshed = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if self.commit(&indices, Change::Add(run.clone())).await? {
                return Ok(run.cidr);
            }
            self.after_conflict(&mut lost).await?;
        }
        Err(self.contention())
    }

    /// After a lost race, a member without a watch reads what changed every second one in a
    /// row: the else-branch's read only updates the chunk that was lost, and a mirror that
    /// learns of full chunks one lost race at a time pays a round trip per chunk. A watched
    /// member's mirror is kept current by its watch.
    async fn after_conflict(&self, lost: &mut u32) -> Result<(), FleetError> {
        *lost += 1;
        if self.feed.is_none() && *lost % 2 == 0 {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Claims `cidr` exactly (a manual prefix: anywhere free, reservations included).
    ///
    /// # Errors
    /// As [`Subnet::allocate_prefix_at`] (outside, misaligned, already allocated, reserved
    /// address), and the fleet's.
    pub async fn allocate_prefix_at(&self, cidr: IpNet) -> Result<(), FleetError> {
        let _one = self.commits.lock().await;
        self.settle().await?;
        self.check_length(cidr.prefix_len())?;
        self.claim_exact(cidr, Kind::Prefix).await
    }

    /// Claims one IPv4 address, placed as [`Subnet::allocate_ip`] places it (`Pack`: in blocks
    /// already broken, never in a reservation).
    ///
    /// # Errors
    /// As [`Subnet::allocate_ip`], and the fleet's.
    pub async fn allocate_ip(&self) -> Result<IpAddr, FleetError> {
        let _one = self.commits.lock().await;
        self.settle().await?;
        let (mut lost, mut refreshed) = (0, false);
        for _ in 0..MAX_ATTEMPTS {
            self.catch_up().await?;
            let picked = {
                let mirror = self.mirror();
                mirror.subnet.allocate_ip().map(|addr| {
                    // Only chosen here; the commit below records it (and the mirror with it).
                    let _ = mirror.subnet.release_ip(addr);
                    let cidr = IpNet::from(addr);
                    (mirror.config.chunk_of(cidr), self.run(cidr, Kind::Address))
                })
            };
            let (index, run) = match picked {
                Ok(p) => p,
                // As for prefixes: believed only after reading everything again.
                Err(e) if is_space(&e) && !refreshed => {
                    self.refresh().await?;
                    refreshed = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if self.commit(&[index], Change::Add(run.clone())).await? {
                return Ok(run.cidr.addr());
            }
            self.after_conflict(&mut lost).await?;
        }
        Err(self.contention())
    }

    /// Claims the IPv4 address `addr` exactly.
    ///
    /// # Errors
    /// As [`Subnet::allocate_ip_at`], and the fleet's.
    pub async fn allocate_ip_at(&self, addr: IpAddr) -> Result<(), FleetError> {
        let _one = self.commits.lock().await;
        self.settle().await?;
        self.claim_exact(IpNet::from(addr), Kind::Address).await
    }

    /// Releases `cidr`, which must be exactly one allocation held by this node.
    ///
    /// # Errors
    /// [`SubnetError::NotAllocated`], [`FleetError::NotHolder`], and the fleet's.
    pub async fn release(&self, cidr: IpNet) -> Result<(), FleetError> {
        let _one = self.commits.lock().await;
        self.settle().await?;
        let mut refreshed = false;
        for _ in 0..MAX_ATTEMPTS {
            let found = {
                let mirror = self.mirror();
                mirror
                    .run(cidr)
                    .map(|run| (run, mirror.config.chunks_of(cidr).collect::<Vec<_>>()))
            };
            let Some((run, indices)) = found else {
                // Unknown as last read: perhaps claimed (by another member) since.
                if refreshed {
                    return Err(SubnetError::NotAllocated { cidr }.into());
                }
                self.refresh().await?;
                refreshed = true;
                continue;
            };
            if run.node != self.node {
                return Err(FleetError::NotHolder {
                    cidr,
                    holder: run.node,
                    node: self.node.clone(),
                });
            }
            if self.commit(&indices, Change::Remove(cidr)).await? {
                return Ok(());
            }
        }
        Err(self.contention())
    }

    /// Takes over this node's allocations recorded under an earlier lease (a restart): each is
    /// rewritten under the current lease. Returns how many were adopted.
    ///
    /// # Errors
    /// The fleet's; what was adopted before an error stays adopted.
    pub async fn adopt(&self) -> Result<usize, FleetError> {
        let _one = self.commits.lock().await;
        self.settle().await?;
        self.refresh().await?;
        let mut adopted = 0;
        let stale: Vec<u64> = {
            let mirror = self.mirror();
            mirror
                .chunks()
                .filter(|(_, s)| s.chunk.runs.iter().any(|r| self.is_stale(r)))
                .map(|(i, _)| *i)
                .collect()
        };
        for index in stale {
            for attempt in 0..=MAX_ATTEMPTS {
                if attempt == MAX_ATTEMPTS {
                    return Err(self.contention());
                }
                let (chunk, count) = {
                    let mut chunk = self.mirror().stored(index).chunk;
                    let mut count = 0;
                    for r in chunk.runs.iter_mut().filter(|r| self.is_stale(r)) {
                        r.lease = self.lease;
                        count += 1;
                    }
                    (chunk, count)
                };
                if count == 0 || self.commit(&[index], Change::Replace(chunk)).await? {
                    adopted += count;
                    break;
                }
            }
        }
        Ok(adopted)
    }

    /// Commit transactions this member sent, and how many of them lost to another member's
    /// change in the same chunk (each cost one round trip and was retried).
    pub fn transactions(&self) -> (u64, u64) {
        (
            self.transactions.load(Ordering::Relaxed),
            self.conflicts.load(Ordering::Relaxed),
        )
    }

    /// Chunk values this member's refreshes have read (its first read takes every chunk; later
    /// ones only those changed since).
    pub fn chunks_read(&self) -> u64 {
        self.chunks_read.load(Ordering::Relaxed)
    }

    /// This node's allocations, as last read.
    pub fn held(&self) -> Vec<Run> {
        self.drain();
        let mirror = self.mirror();
        mirror
            .chunks()
            .flat_map(|(_, s)| s.chunk.runs.iter())
            .filter(|r| r.node == self.node)
            .cloned()
            .collect()
    }

    /// The allocation `cidr` (exactly), with its holder, as last read.
    pub fn allocation(&self, cidr: IpNet) -> Option<Run> {
        self.drain();
        let mirror = self.mirror();
        if !mirror.config.cidr.contains(&cidr) || cidr.prefix_len() < mirror.config.chunk_len {
            return None;
        }
        mirror.run(cidr)
    }

    /// What holds `addr` as last read: a reserved address, a single address, a prefix, or
    /// nothing.
    ///
    /// # Errors
    /// An address outside the subnet or of the other family.
    pub fn holder(&self, addr: IpAddr) -> Result<Option<Holder>, FleetError> {
        self.drain();
        Ok(self.mirror().subnet.holder(addr)?)
    }

    /// Statistics of the subnet as last read or delivered by the watch (free addresses, free aligned blocks, the largest
    /// free block, fragmentation), as [`Subnet::stats`] gives them.
    pub fn stats(&self) -> SubnetStats {
        self.drain();
        self.mirror().subnet.stats()
    }

    /// The subnet's reservations, as last read or delivered by the watch.
    pub fn reservations(&self) -> Vec<Reservation> {
        self.drain();
        self.mirror().subnet.reservations()
    }

    /// Why an automatic prefix of length `len` fails (or would), as last read: see
    /// [`Subnet::explain_prefix_failure`].
    ///
    /// # Errors
    /// A length the subnet cannot hand out.
    pub fn explain_prefix_failure(&self, len: u8) -> Result<PrefixFailure, FleetError> {
        self.drain();
        Ok(self.mirror().subnet.explain_prefix_failure(len)?)
    }

    fn mirror(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, cidr: IpNet, kind: Kind) -> Run {
        Run {
            cidr,
            kind,
            node: self.node.clone(),
            lease: self.lease,
        }
    }

    fn is_stale(&self, r: &Run) -> bool {
        r.node == self.node && r.lease != self.lease
    }

    fn contention(&self) -> FleetError {
        FleetError::Contention {
            cidr: self.cidr(),
            attempts: MAX_ATTEMPTS,
        }
    }

    fn check_length(&self, len: u8) -> Result<(), FleetError> {
        let mirror = self.mirror();
        if mirror.config.chunk_len.saturating_sub(len) > MAX_SPAN_LOG2 {
            return Err(FleetError::LargerThanChunk {
                cidr: mirror.config.cidr,
                len,
                chunk_len: mirror.config.chunk_len,
            });
        }
        Ok(())
    }

    async fn claim_exact(&self, cidr: IpNet, kind: Kind) -> Result<(), FleetError> {
        let mut refreshed = false;
        for _ in 0..MAX_ATTEMPTS {
            let checked = {
                let mirror = self.mirror();
                // The mirror's own checks name what is wrong (outside, misaligned, taken,
                // reserved); the claim is only tried here and made by the commit.
                let run = self.run(cidr, kind);
                take(&mirror.subnet, &run).map(|()| {
                    let _ = mirror.subnet.release(cidr);
                    mirror.config.chunks_of(cidr).collect::<Vec<_>>()
                })
            };
            let indices = match checked {
                Ok(indices) => indices,
                // Taken as last read: perhaps released since; believed after reading again.
                Err(
                    SubnetError::AlreadyAllocated { .. } | SubnetError::NotOneAllocation { .. },
                ) if !refreshed => {
                    self.refresh().await?;
                    refreshed = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if self
                .commit(&indices, Change::Add(self.run(cidr, kind)))
                .await?
            {
                return Ok(());
            }
        }
        Err(self.contention())
    }

    /// A free aligned block of `len` for an automatic claim: reservation tiers as
    /// [`Subnet::allocate_prefix`] has them; in each, this node's chunks first, then its walk.
    fn pick_prefix(&self, mirror: &Mirror, len: u8) -> Option<IpNet> {
        let config = &mirror.config;
        let reservations = mirror.subnet.reservations();
        let in_prefix_reservation = |b: &IpNet| {
            reservations
                .iter()
                .any(|r| r.kind == ReservationKind::Prefix && r.cidr.contains(b))
        };
        let unreserved = |b: &IpNet| {
            !reservations
                .iter()
                .any(|r| r.cidr.contains(b) || b.contains(&r.cidr))
        };
        let has_prefix_reservations = reservations
            .iter()
            .any(|r| r.kind == ReservationKind::Prefix);
        let mut tiers: Vec<&dyn Fn(&IpNet) -> bool> = Vec::new();
        if has_prefix_reservations {
            tiers.push(&in_prefix_reservation);
        }
        if !has_prefix_reservations || config.fallback_to_unreserved {
            tiers.push(&unreserved);
        }
        let chunks = config.chunk_count();
        let walk = (0..chunks).map(|k| (self.start_chunk + k * self.stride) % chunks);
        let mine = |index: &u64| {
            mirror
                .get(*index)
                .is_some_and(|s| s.chunk.runs.iter().any(|r| r.node == self.node))
        };
        let order: Vec<u64> = walk
            .clone()
            .filter(mine)
            .chain(walk.filter(|i| !mine(i)))
            .collect();
        for allowed in tiers {
            if len < config.chunk_len {
                // Larger than a chunk: the blocks in address order, from the one holding this
                // node's start chunk.
                let mut blocks: Vec<IpNet> = config
                    .cidr
                    .subnets(len)
                    .map(Iterator::collect)
                    .unwrap_or_default();
                let per_block = 1u64 << (config.chunk_len - len);
                if !blocks.is_empty() {
                    let start = (self.start_chunk / per_block) as usize % blocks.len();
                    blocks.rotate_left(start);
                }
                let free = blocks
                    .into_iter()
                    .find(|b| allowed(b) && mirror.subnet.is_free(*b).unwrap_or(false));
                if free.is_some() {
                    return free;
                }
                continue;
            }
            for &index in &order {
                let Ok(blocks) = config.chunk_cidr(index).subnets(len) else {
                    continue;
                };
                for b in blocks {
                    if allowed(&b) && mirror.subnet.is_free(b).unwrap_or(false) {
                        return Some(b);
                    }
                }
            }
        }
        None
    }

    /// One transaction on the chunks `indices` (one, or the chunks a prefix larger than a
    /// chunk covers), doing `change` to each; `Ok(false)` when another member changed one of
    /// them first (the mirror now holds what it did, and the caller tries again).
    async fn commit(&self, indices: &[u64], change: Change) -> Result<bool, FleetError> {
        let cidr = self.cidr();
        let node_key = self.keys.node(&self.node);
        let mut parts = Vec::new();
        let config_revision;
        {
            let mirror = self.mirror();
            config_revision = mirror.config_revision;
            for &index in indices {
                let seen = mirror.stored(index);
                let next = match &change {
                    Change::Add(run) => seen.chunk.with(run.clone()),
                    Change::Remove(c) => match seen.chunk.without(*c) {
                        Some((chunk, _)) => chunk,
                        None => return Err(SubnetError::NotAllocated { cidr: *c }.into()),
                    },
                    Change::Replace(chunk) => chunk.clone(),
                };
                parts.push((index, seen, next));
            }
        }
        let keys: Vec<String> = indices.iter().map(|i| self.keys.chunk(cidr, *i)).collect();
        let mut compares: Vec<Compare> = parts
            .iter()
            .zip(&keys)
            .map(|((_, seen, _), key)| {
                Compare::mod_revision(key.clone(), CompareOp::Equal, seen.revision)
            })
            .collect();
        compares.push(Compare::lease(
            node_key.clone(),
            CompareOp::Equal,
            self.lease,
        ));
        // The reservations this claim was placed under are still the subnet's.
        let config_key = self.keys.config(cidr);
        compares.push(Compare::mod_revision(
            config_key.clone(),
            CompareOp::Equal,
            config_revision,
        ));
        let puts: Vec<TxnOp> = parts
            .iter()
            .zip(&keys)
            .map(|((_, _, next), key)| TxnOp::put(key.clone(), next.to_bytes(), None))
            .collect();
        let mut gets: Vec<TxnOp> = vec![
            TxnOp::get(node_key.clone(), None),
            TxnOp::get(config_key.clone(), None),
        ];
        gets.extend(keys.iter().map(|key| TxnOp::get(key.clone(), None)));
        let txn = Txn::new().when(compares).and_then(puts).or_else(gets);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let resp = match self.etcd.call(self.etcd.client().txn(txn)).await {
            Ok(resp) => resp,
            Err(e) => {
                // The request may still reach etcd and apply: remember it, and settle it
                // before anything else is committed.
                *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pending {
                    seen: parts
                        .iter()
                        .map(|(i, seen, _)| (*i, seen.clone()))
                        .collect(),
                    change,
                    undo: false,
                });
                return Err(e);
            }
        };
        let revision = resp.header().map_or(0, |h| h.revision());
        if resp.succeeded() {
            let mut mirror = self.mirror();
            for (index, _, next) in parts {
                mirror.apply(
                    index,
                    Stored {
                        chunk: next,
                        revision,
                    },
                );
            }
            return Ok(true);
        }
        let ops = resp.op_responses();
        let registered = match ops.first() {
            Some(TxnOpResponse::Get(g)) => g.kvs().first().map(|kv| kv.lease()),
            _ => None,
        };
        if registered != Some(self.lease) {
            return Err(FleetError::Fenced {
                node: self.node.clone(),
                lease: self.lease,
            });
        }
        let config = match ops.get(1) {
            Some(TxnOpResponse::Get(g)) => match g.kvs().first() {
                Some(kv) => Some((parse_config(&config_key, kv.value())?, kv.mod_revision())),
                None => None,
            },
            _ => None,
        };
        let current = self.read_parts(indices, &keys, ops.get(2..).unwrap_or_default())?;
        self.conflicts.fetch_add(1, Ordering::Relaxed);
        let mut mirror = self.mirror();
        if let Some((config, revision)) = config {
            mirror.set_config(config, revision);
        }
        for (index, stored) in current {
            mirror.apply(index, stored);
        }
        Ok(false)
    }

    /// The chunks `indices` as a transaction's `Get`s (one per chunk, in order) returned them.
    fn read_parts(
        &self,
        indices: &[u64],
        keys: &[String],
        ops: &[TxnOpResponse],
    ) -> Result<Vec<(u64, Stored)>, FleetError> {
        let mut out = Vec::new();
        for ((index, key), op) in indices.iter().zip(keys).zip(ops) {
            let stored = match op {
                TxnOpResponse::Get(g) => match g.kvs().first() {
                    Some(kv) => self.parse_chunk(key, *index, kv.value(), kv.mod_revision())?,
                    None => Stored::default(),
                },
                _ => Stored::default(),
            };
            out.push((*index, stored));
        }
        Ok(out)
    }

    /// Settles a commit whose answer was lost. A fence transaction rewrites the chunks as they
    /// were if their revisions are still the ones the lost commit compared: from then on the
    /// lost commit can never apply (whichever of the two etcd orders first, only one matches).
    /// If a revision moved, the chunks are read: a claim that landed although its caller was
    /// told it failed is released again, so a failed call has changed nothing; a release that
    /// landed stays done.
    async fn settle(&self) -> Result<(), FleetError> {
        let Some(p) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Ok(());
        };
        let indices: Vec<u64> = p.seen.iter().map(|(i, _)| *i).collect();
        let keys: Vec<String> = indices
            .iter()
            .map(|i| self.keys.chunk(self.cidr(), *i))
            .collect();
        let fence = Txn::new()
            .when(
                p.seen
                    .iter()
                    .zip(&keys)
                    .map(|((_, seen), key)| {
                        Compare::mod_revision(key.clone(), CompareOp::Equal, seen.revision)
                    })
                    .collect::<Vec<_>>(),
            )
            .and_then(
                p.seen
                    .iter()
                    .zip(&keys)
                    .map(|((_, seen), key)| TxnOp::put(key.clone(), seen.chunk.to_bytes(), None))
                    .collect::<Vec<_>>(),
            )
            .or_else(
                keys.iter()
                    .map(|key| TxnOp::get(key.clone(), None))
                    .collect::<Vec<_>>(),
            );
        let resp = self.etcd.call(self.etcd.client().txn(fence)).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let current: Vec<(u64, Stored)> = if resp.succeeded() {
            p.seen
                .iter()
                .map(|(i, seen)| {
                    (
                        *i,
                        Stored {
                            chunk: seen.chunk.clone(),
                            revision,
                        },
                    )
                })
                .collect()
        } else {
            self.read_parts(&indices, &keys, &resp.op_responses())?
        };
        // What must still go: a claim that landed although its caller was told it failed, or
        // the undoing of one whose own answer was lost and which did not land.
        let landed = match &p.change {
            Change::Add(run) => current
                .iter()
                .any(|(_, s)| s.chunk.runs.contains(run))
                .then_some(run.cidr),
            Change::Remove(cidr) if p.undo => current
                .iter()
                .any(|(_, s)| {
                    s.chunk
                        .runs
                        .iter()
                        .any(|r| r.cidr == *cidr && r.node == self.node)
                })
                .then_some(*cidr),
            Change::Remove(_) | Change::Replace(_) => None,
        };
        {
            let mut mirror = self.mirror();
            for (index, stored) in current {
                mirror.apply(index, stored);
            }
        }
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(cidr) = landed {
            for _ in 0..MAX_ATTEMPTS {
                match self.commit(&indices, Change::Remove(cidr)).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => {
                        // Its answer lost too: the next settle finishes it.
                        if let Some(p) = self
                            .pending
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .as_mut()
                        {
                            p.undo = true;
                        }
                        return Err(e);
                    }
                }
            }
            return Err(self.contention());
        }
        Ok(())
    }

    fn parse_chunk(
        &self,
        key: &str,
        index: u64,
        bytes: &[u8],
        revision: i64,
    ) -> Result<Stored, FleetError> {
        let range = self.mirror().config.chunk_cidr(index);
        let chunk = Chunk::from_bytes(bytes, range).map_err(|m| corrupt(key, &m))?;
        Ok(Stored { chunk, revision })
    }
}

/// Whether a refusal is an exhaustion one (which a fresher read may lift).
fn is_space(e: &SubnetError) -> bool {
    matches!(
        e,
        SubnetError::InsufficientCidrBlocks { .. }
            | SubnetError::InsufficientFreeAddressesInSubnet { .. }
    )
}

/// The subnet's configuration as stored.
pub(crate) async fn read_config(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
    at: Option<i64>,
) -> Result<(FleetConfig, i64), FleetError> {
    let key = keys.config(cidr);
    let options = at.map(|r| GetOptions::new().with_revision(r));
    let resp = etcd.call(etcd.client().get(key.clone(), options)).await?;
    let kv = resp
        .kvs()
        .first()
        .ok_or_else(|| FleetError::NotInitialised {
            cidr,
            key: key.clone(),
        })?;
    Ok((parse_config(&key, kv.value())?, kv.mod_revision()))
}

/// A stored configuration.
pub(crate) fn parse_config(key: &str, bytes: &[u8]) -> Result<FleetConfig, FleetError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(key, &e.to_string()))
}

fn corrupt(key: &str, message: &str) -> FleetError {
    FleetError::Corrupt {
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn first_value(ops: &[TxnOpResponse]) -> Option<Vec<u8>> {
    match ops.first()? {
        TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
        _ => None,
    }
}

/// FNV-1a: a stable hash of a node's name for its start chunk (the same on every build and
/// machine, unlike std's randomly keyed hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A subnet rebuilt from chunks, for checks: every run claimed in a fresh subnet of the
/// configuration; the first one that cannot be (held twice, a reserved address) is returned.
pub(crate) fn rebuild<'a>(
    config: &FleetConfig,
    runs: impl Iterator<Item = &'a Run>,
) -> Result<Subnet, (Run, SubnetError)> {
    let subnet = config
        .build()
        .expect("a stored configuration was checked when it was written");
    for r in runs {
        take(&subnet, r).map_err(|e| (r.clone(), e))?;
    }
    Ok(subnet)
}
