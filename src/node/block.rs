//! One attached block (a /28 or /80 prefix, or one secondary address) and the lock-free protocol
//! that hands out its addresses.
//!
//! Each 64-bit word covers 32 addresses: the low half says which are assigned, the high half
//! which are cooling down after a release. Both halves change in one compare-and-swap, so an
//! address moves assigned -> cooling -> free without ever being seen free while assigned, and two
//! threads can never claim the same bit. A cooling bit expires by itself: whoever finds it past
//! its release time plus the cooldown may claim it directly (one CAS clears cooling and sets
//! assigned). The release time is written before the CAS that publishes the cooling bit
//! (release ordering), and read after loading the word (acquire), so a reader never sees a
//! cooling bit with a stale time. A block of at most sixteen addresses (a /28, a secondary
//! address) also keeps its count of assigned addresses in the low half, above its bits, changed
//! by the same atomic operation (see [`COUNT_SHIFT`]).

use crate::sync::{spin_wait, AtomicU64, Ordering};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// What kind of block an interface holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockKind {
    /// A delegated prefix: IPv4 /28 or IPv6 /80.
    Prefix,
    /// One secondary address.
    Secondary,
}

const BITS: u32 = 32;

/// Where a small block keeps its count of assigned addresses: in the word itself, above the
/// sixteen assigned bits it can have, so that the count changes in the same atomic operation as
/// the bits and the packing search reads it instead of counting bits (x86-64 baseline has no
/// `popcnt`: counting costs a dozen instructions per block passed).
const COUNT_SHIFT: u32 = 16;
/// The largest block that keeps a count: its assigned bits must stay below [`COUNT_SHIFT`]
/// (a /28, a secondary address). The count takes bits 16..21 of the word's assigned half.
const COUNTED_CAPACITY: u32 = COUNT_SHIFT;

#[inline]
fn pack(used: u32, cooling: u32) -> u64 {
    u64::from(used) | (u64::from(cooling) << BITS)
}

#[inline]
fn unpack(w: u64) -> (u32, u32) {
    (w as u32, (w >> BITS) as u32)
}

/// An attached block and the state of its addresses.
#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) cidr: IpNet,
    pub(crate) kind: BlockKind,
    pub(crate) interface: Arc<str>,
    pub(crate) device_number: u32,
    capacity: u32,
    /// Word 0 (addresses 0..32), inline: most blocks (a /28, a secondary address) have no other,
    /// and the packing search reads this word for every block it passes.
    first: AtomicU64,
    /// Words 1.. (blocks of more than 32 addresses: large IPv6 prefixes).
    rest: Box<[AtomicU64]>,
    released_at: Box<[AtomicU64]>,
    /// Per word, cooling addresses known not to expire before a time (see [`Fresh`]): a search
    /// for the lowest expired address skips them until then instead of reading their release
    /// times again. Under a steady churn the address released last often sits low in its block,
    /// and every search would otherwise read its time until it expires.
    fresh: Box<[AtomicU64]>,
    /// A lower bound on the earliest cooldown end among the cooling addresses (`u64::MAX`: none
    /// seen yet). Before it, no cooling address can have expired and no release time needs to be
    /// read: with a steady churn most free addresses are cooling, and this keeps an assignment
    /// from reading each one's time. Lowered before a release publishes its cooling bit; raised
    /// (to the true minimum) by a scan that found nothing expired. Cooldown ends only grow with
    /// the clock, so a raise can never pass a newer release's end; if the wall clock steps
    /// backwards, an address may rest longer than its cooldown by the size of the step, never
    /// shorter.
    next_expiry: AtomicU64,
    /// The bits of the last word that stand for addresses (all other words are full-width).
    last_valid: u32,
    /// What word 0's assigned half (bits and count) reads when the block is full, or `u64::MAX`
    /// (which it never reads) when a full block has further words to check: the packing search
    /// passes full blocks on one load and one compare.
    full_first: u64,
    /// One in the count field (`1 << COUNT_SHIFT`) if the block keeps its count in word 0, else
    /// zero: every claim adds it and every release subtracts it, with no branch.
    count_one: u64,
}

impl Block {
    /// A block whose first `capacity` addresses may be handed out.
    pub(crate) fn new(
        cidr: IpNet,
        kind: BlockKind,
        interface: Arc<str>,
        device_number: u32,
        capacity: u32,
    ) -> Self {
        let words = capacity.div_ceil(BITS) as usize;
        let last_valid = match capacity % BITS {
            _ if capacity == 0 => 0,
            0 => u32::MAX,
            rest => (1u32 << rest) - 1,
        };
        let counted = capacity <= COUNTED_CAPACITY;
        Block {
            cidr,
            kind,
            interface,
            device_number,
            capacity,
            first: AtomicU64::new(0),
            rest: (1..words).map(|_| AtomicU64::new(0)).collect(),
            fresh: (0..words.max(1)).map(|_| AtomicU64::new(0)).collect(),
            released_at: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            next_expiry: AtomicU64::new(u64::MAX),
            last_valid,
            full_first: if counted {
                u64::from(last_valid) | u64::from(capacity) << COUNT_SHIFT
            } else if words == 1 {
                u64::from(last_valid)
            } else {
                u64::MAX
            },
            count_one: if counted { 1 << COUNT_SHIFT } else { 0 },
        }
    }

    /// Word `w`.
    #[inline]
    fn word(&self, w: usize) -> &AtomicU64 {
        match w.checked_sub(1) {
            None => &self.first,
            Some(r) => &self.rest[r],
        }
    }

    /// The words in order.
    #[inline]
    fn words(&self) -> impl Iterator<Item = &AtomicU64> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    #[inline]
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The bits of word `w` that stand for addresses of this block.
    #[inline]
    fn valid(&self, w: usize) -> u32 {
        if w == self.rest.len() {
            self.last_valid
        } else {
            u32::MAX
        }
    }

    /// Of the cooling bits `cooling` of word `w`, those whose cooldown is over at `now`.
    #[inline]
    fn expired(&self, w: usize, mut cooling: u32, now: u64, cooldown: u64) -> u32 {
        let mut out = 0;
        while cooling != 0 {
            let bit = cooling.trailing_zeros();
            cooling &= cooling - 1;
            let at = self.released_at[w * BITS as usize + bit as usize].load(Ordering::Relaxed);
            if now >= at.saturating_add(cooldown) {
                out |= 1 << bit;
            }
        }
        out
    }

    /// The lowest address of word `w` (value `cur`) that is free at `now`, as a bit: the lowest
    /// never-cooling free bit, unless a cooling bit below it has expired. Only those lower cooling
    /// bits have their release times read.
    #[inline(always)]
    fn lowest_free(&self, w: usize, cur: u64, now: u64, cooldown: u64) -> u32 {
        let (used, cooling) = unpack(cur);
        let plain = !used & !cooling & self.valid(w);
        let below = if plain == 0 {
            cooling
        } else {
            cooling & (plain & plain.wrapping_neg()).wrapping_sub(1)
        };
        if below == 0 || !self.may_have_expired(now) {
            return plain & plain.wrapping_neg();
        }
        self.lowest_expired_or(w, below, plain, now, cooldown)
    }

    /// The rest of [`Block::lowest_free`], out of line so that the common answers above inline
    /// into the packing search: the lowest expired bit of `below` (cooling bits under the lowest
    /// plain free bit `plain`), else that plain bit.
    #[inline(never)]
    fn lowest_expired_or(&self, w: usize, below: u32, plain: u32, now: u64, cooldown: u64) -> u32 {
        // The lowest expired cooling bit below the lowest plain one wins; lowest first, so the
        // scan usually stops early (the lowest addresses tend to be the oldest releases). Bits
        // known to be fresh are skipped.
        let known = Fresh(self.fresh[w].load(Ordering::Acquire));
        let skip = known.valid_at(now);
        let mut rest = below & !skip;
        let mut earliest = if below & skip != 0 {
            known.until()
        } else {
            u64::MAX
        };
        let mut seen = Fresh::default();
        let found = loop {
            if rest == 0 {
                break 0;
            }
            let bit = rest & rest.wrapping_neg();
            rest &= rest - 1;
            let at = self.released_at[w * BITS as usize + bit.trailing_zeros() as usize]
                .load(Ordering::Relaxed);
            let end = at.saturating_add(cooldown);
            if now >= end {
                break bit;
            }
            earliest = earliest.min(end);
            seen = seen.with(bit, end);
        };
        if seen.names_any() {
            let merged = if skip != 0 { seen.merge(known) } else { seen };
            self.fresh[w].store(merged.0, Ordering::Release);
        }
        if found != 0 {
            return found;
        }
        if plain == 0 && self.rest.is_empty() {
            // Every cooling address of the block was looked at and none has expired: nothing
            // can expire before `earliest`, so later searches need not read the times again.
            self.next_expiry.fetch_max(earliest, Ordering::AcqRel);
        }
        plain & plain.wrapping_neg()
    }

    /// Makes `next_expiry` at most `end`. With a steady clock every new end is the latest one,
    /// so the read-modify-write is skipped almost always.
    #[inline]
    fn lower_next_expiry(&self, end: u64) {
        if end < self.next_expiry.load(Ordering::Acquire) {
            self.next_expiry.fetch_min(end, Ordering::AcqRel);
        }
    }

    #[inline]
    fn may_have_expired(&self, now: u64) -> bool {
        now >= self.next_expiry.load(Ordering::Acquire)
    }

    /// The lowest address free at `now`, with the word value it was found in, for
    /// [`Block::claim_peeked`]; `None` if none is free.
    #[inline]
    pub(crate) fn peek(&self, now: u64, cooldown: u64) -> Option<Peeked> {
        if self.rest.is_empty() {
            // One word, the common case: no iterator.
            let cur = self.first.load(Ordering::Acquire);
            let bit = self.lowest_free(0, cur, now, cooldown);
            return (bit != 0).then_some(Peeked { w: 0, cur, bit });
        }
        for (w, word) in self.words().enumerate() {
            let cur = word.load(Ordering::Acquire);
            let bit = self.lowest_free(w, cur, now, cooldown);
            if bit != 0 {
                return Some(Peeked { w, cur, bit });
            }
        }
        None
    }

    /// Claims what [`Block::peek`] found, if the word has not changed since (one CAS attempt);
    /// returns its offset.
    #[inline]
    pub(crate) fn claim_peeked(&self, p: Peeked) -> Option<u32> {
        let (used, cooling) = unpack(p.cur);
        let new = pack(used | p.bit, cooling & !p.bit) + self.count_one;
        self.word(p.w)
            .compare_exchange(p.cur, new, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| p.w as u32 * BITS + p.bit.trailing_zeros())
    }

    /// Claims the lowest address that is neither assigned nor cooling at `now` (an expired
    /// cooling address counts as free). Lock-free: one successful CAS.
    pub(crate) fn claim(&self, now: u64, cooldown: u64) -> Option<u32> {
        for (w, word) in self.words().enumerate() {
            let mut cur = word.load(Ordering::Acquire);
            loop {
                let (used, cooling) = unpack(cur);
                let bit = self.lowest_free(w, cur, now, cooldown);
                if bit == 0 {
                    break;
                }
                let new = pack(used | bit, cooling & !bit) + self.count_one;
                match word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(w as u32 * BITS + bit.trailing_zeros()),
                    Err(actual) => {
                        cur = actual;
                        spin_wait();
                    }
                }
            }
        }
        None
    }

    /// Claims address `offset` if it is free at `now` (used by restore).
    pub(crate) fn claim_at(&self, offset: u32, now: u64, cooldown: u64) -> Result<(), Busy> {
        let (w, bit) = split(offset);
        let word = self.word(w);
        let mut cur = word.load(Ordering::Acquire);
        loop {
            let (used, cooling) = unpack(cur);
            if used & bit != 0 {
                return Err(Busy::Assigned);
            }
            if cooling & bit != 0 && self.expired(w, bit, now, cooldown) == 0 {
                return Err(Busy::Cooling);
            }
            let new = pack(used | bit, cooling & !bit) + self.count_one;
            match word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Gives back an assigned address. With a cooldown it rests (cooling) from `now`; without
    /// one it is free at once.
    pub(crate) fn release(&self, offset: u32, now: u64, cooldown: u64) {
        let (w, bit) = split(offset);
        let word = self.word(w);
        if cooldown == 0 {
            // Ours, so set, and counted: the subtraction borrows nowhere.
            let prev = word.fetch_sub(u64::from(bit) + self.count_one, Ordering::AcqRel);
            debug_assert!(unpack(prev).0 & bit != 0, "release of a free address");
            return;
        }
        // Only the holder of an assigned address writes its release time, and nobody reads it
        // until the exchange below publishes the cooling bit.
        self.released_at[offset as usize].store(now, Ordering::Relaxed);
        self.lower_next_expiry(now.saturating_add(cooldown));
        // The address is assigned (ours) and so not cooling: one addition clears its assigned
        // bit, sets its cooling bit and takes one off the count, with no read and no retry (no
        // field borrows or carries: the bit is set, the count at least one, the cooling bit
        // clear).
        let delta = pack(0, bit).wrapping_sub(u64::from(bit) + self.count_one);
        let prev = word.fetch_add(delta, Ordering::AcqRel);
        debug_assert!(
            unpack(prev).0 & bit != 0 && unpack(prev).1 & bit == 0,
            "release of an address that was not assigned"
        );
    }

    /// Marks a free address as cooling since `released_at` (used by restore).
    pub(crate) fn set_cooling(
        &self,
        offset: u32,
        released_at: u64,
        cooldown: u64,
    ) -> Result<(), Busy> {
        let (w, bit) = split(offset);
        if self.is_assigned(offset) {
            return Err(Busy::Assigned);
        }
        self.released_at[offset as usize].store(released_at, Ordering::Relaxed);
        self.lower_next_expiry(released_at.saturating_add(cooldown));
        // This time may be earlier than what a search remembered for the address.
        self.fresh[w].store(0, Ordering::Release);
        let word = self.word(w);
        let mut cur = word.load(Ordering::Acquire);
        loop {
            let (used, cooling) = unpack(cur);
            if used & bit != 0 {
                return Err(Busy::Assigned);
            }
            let new = pack(used, cooling | bit);
            match word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Whether every address is assigned; checks [`Block::assigned_unless_full`] against a
    /// count on the way.
    #[cfg(test)]
    fn is_full(&self) -> bool {
        let assigned = self.assigned();
        let quick = self.assigned_unless_full();
        assert_eq!(quick.unwrap_or(assigned), assigned);
        assert_eq!(quick.is_none(), assigned >= self.capacity);
        quick.is_none()
    }

    /// Assigned addresses, or `None` if every address is: whether it is full and
    /// [`Block::assigned`] from one load of word 0, for the packing search. A small block reads
    /// its count there; a larger one passes when full on one compare, and an empty word (a warm
    /// prefix waiting for pods, the usual last block) needs no count.
    #[inline(always)]
    pub(crate) fn assigned_unless_full(&self) -> Option<u32> {
        let first = unpack(self.first.load(Ordering::Acquire)).0;
        if u64::from(first) == self.full_first {
            return None;
        }
        if self.count_one != 0 {
            return Some(first >> COUNT_SHIFT);
        }
        if !self.rest.is_empty() {
            let assigned = self.assigned();
            return (assigned < self.capacity).then_some(assigned);
        }
        Some(if first == 0 { 0 } else { first.count_ones() })
    }

    /// Assigned addresses.
    #[inline]
    pub(crate) fn assigned(&self) -> u32 {
        if self.rest.is_empty() {
            let first = unpack(self.first.load(Ordering::Acquire)).0;
            return if self.count_one != 0 {
                first >> COUNT_SHIFT
            } else {
                first.count_ones()
            };
        }
        self.words()
            .map(|w| unpack(w.load(Ordering::Acquire)).0.count_ones())
            .sum()
    }

    /// Whether address `offset` is assigned.
    pub(crate) fn is_assigned(&self, offset: u32) -> bool {
        let (w, bit) = split(offset);
        unpack(self.word(w).load(Ordering::Acquire)).0 & bit != 0
    }

    /// The addresses still cooling at `now`, with the time each becomes free.
    pub(crate) fn cooling(&self, now: u64, cooldown: u64) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        for (w, word) in self.words().enumerate() {
            let (_, cooling) = unpack(word.load(Ordering::Acquire));
            let mut live = cooling & !self.expired(w, cooling, now, cooldown);
            while live != 0 {
                let bit = live.trailing_zeros();
                live &= live - 1;
                let offset = w as u32 * BITS + bit;
                let at = self.released_at[offset as usize].load(Ordering::Relaxed);
                out.push((offset, at.saturating_add(cooldown)));
            }
        }
        out
    }

    /// Checks the bit-level invariants: nothing beyond the capacity, never assigned and cooling,
    /// and every address a word's [`Fresh`] cache names, if still cooling, cooling at least until
    /// the cache's time (a clock stepped backwards could break the last one; the tests' clocks
    /// do not).
    pub(crate) fn verify_bits(&self, cooldown: u64) -> Result<(), String> {
        for (w, word) in self.words().enumerate() {
            let (used, cooling) = unpack(word.load(Ordering::Acquire));
            let known = Fresh(self.fresh[w].load(Ordering::Acquire));
            let mut named = cooling & (known.0 & Fresh::NAMES) as u32;
            while named != 0 {
                let bit = named.trailing_zeros();
                named &= named - 1;
                let offset = w as u32 * BITS + bit;
                let end = self.released_at[offset as usize]
                    .load(Ordering::Relaxed)
                    .saturating_add(cooldown);
                if end < known.until() {
                    return Err(format!(
                        "{}: address {} cools until {end}, but the fresh cache says not before {}",
                        self.cidr,
                        self.address(offset),
                        known.until()
                    ));
                }
            }
            let valid = self.valid(w);
            let count = if self.count_one != 0 {
                used >> COUNT_SHIFT
            } else {
                0
            };
            let used = used & !(count << COUNT_SHIFT);
            if (used | cooling) & !valid != 0 {
                return Err(format!(
                    "{}: bits set beyond its capacity in word {w}",
                    self.cidr
                ));
            }
            if self.count_one != 0 && count != used.count_ones() {
                return Err(format!(
                    "{}: its count says {count} addresses are assigned, its bits {}",
                    self.cidr,
                    used.count_ones()
                ));
            }
            if used & cooling != 0 {
                return Err(format!(
                    "{}: an address is both assigned and cooling",
                    self.cidr
                ));
            }
        }
        Ok(())
    }

    /// The address at `offset`.
    pub(crate) fn address(&self, offset: u32) -> IpAddr {
        match self.cidr {
            IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + offset)),
            IpNet::V6(n) => {
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + u128::from(offset)))
            }
        }
    }

    /// The offset of `addr`, if it is one of the addresses this block hands out.
    pub(crate) fn offset_of(&self, addr: IpAddr) -> Option<u32> {
        let d = match (self.cidr, addr) {
            (IpNet::V4(n), IpAddr::V4(a)) if n.contains(&a) => {
                u128::from(u32::from(a) - u32::from(n.network()))
            }
            (IpNet::V6(n), IpAddr::V6(a)) if n.contains(&a) => {
                u128::from(a) - u128::from(n.network())
            }
            _ => return None,
        };
        u32::try_from(d).ok().filter(|&o| o < self.capacity)
    }
}

/// One word's cache of fresh cooling addresses, packed in a `u64` so that it is read and written
/// whole: bits 0..16 name addresses (the word's sixteen lowest, a whole /28), bits 16.. hold a
/// time at or before which none of them expires, rounded down to 2^16 ns.
///
/// It stays true once written: a named address can only change by expiring (after the time),
/// being claimed and later released again, with an end after that. So a stale value read by one
/// search, or written by a slower one, only ever makes a search treat an address as still
/// cooling, never as expired early. Only [`Block::set_cooling`], which may write an earlier
/// release time, can break that, and it clears the cache.
#[derive(Clone, Copy, Debug, Default)]
struct Fresh(u64);

impl Fresh {
    const NAMES: u64 = 0xffff;

    /// The time before which the named addresses are still cooling.
    #[inline]
    fn until(self) -> u64 {
        self.0 & !Self::NAMES
    }

    /// The named addresses, if the cache still holds at `now`.
    #[inline]
    fn valid_at(self, now: u64) -> u32 {
        if now < self.until() {
            (self.0 & Self::NAMES) as u32
        } else {
            0
        }
    }

    fn names_any(self) -> bool {
        self.0 & Self::NAMES != 0
    }

    /// Adds address `bit` (one bit of the word), still cooling until `end`; addresses beyond
    /// the sixteen it can name are left out.
    #[inline]
    fn with(self, bit: u32, end: u64) -> Self {
        if u64::from(bit) & Self::NAMES == 0 {
            return self;
        }
        let until = if self.names_any() {
            self.until().min(end)
        } else {
            end
        };
        Fresh((until & !Self::NAMES) | (self.0 & Self::NAMES) | u64::from(bit))
    }

    /// Both caches' addresses, until the earlier of their times.
    #[inline]
    fn merge(self, other: Fresh) -> Self {
        Fresh(self.until().min(other.until()) | ((self.0 | other.0) & Self::NAMES))
    }
}

/// A free address found by [`Block::peek`]: its word, the word's value then, and its bit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peeked {
    w: usize,
    cur: u64,
    bit: u32,
}

/// Why an address could not be claimed or marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Busy {
    Assigned,
    Cooling,
}

#[inline]
fn split(offset: u32) -> (usize, u32) {
    ((offset / BITS) as usize, 1u32 << (offset % BITS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, cap: u32) -> Block {
        Block::new(
            cidr.parse().unwrap(),
            BlockKind::Prefix,
            Arc::from("eni-1"),
            0,
            cap,
        )
    }

    #[test]
    fn claims_lowest_and_honours_cooldown() {
        let b = block("10.0.0.16/28", 16);
        assert_eq!(b.claim(0, 10), Some(0));
        assert_eq!(b.claim(0, 10), Some(1));
        b.release(0, 100, 10);
        assert_eq!(b.claim(105, 10), Some(2), "address 0 is cooling until 110");
        assert_eq!(b.cooling(105, 10), vec![(0, 110)]);
        assert_eq!(b.claim(110, 10), Some(0), "cooldown over");
        assert_eq!(b.assigned(), 3);
        assert_eq!(b.address(2).to_string(), "10.0.0.18");
        assert_eq!(b.offset_of("10.0.0.31".parse().unwrap()), Some(15));
        assert_eq!(b.offset_of("10.0.0.32".parse().unwrap()), None);
        b.verify_bits(0).unwrap();
    }

    #[test]
    fn churn_claims_the_lowest_expired_address_like_a_full_scan() {
        // Random claims and releases with a moving clock, on a /28 and on a 40-address block
        // (two words, the second beyond what the fresh cache names), against the rule read off
        // the release times directly: the lowest address neither assigned nor still cooling.
        const S: u64 = 1_000_000_000; // the clock counts nanoseconds: steps of one second
        let cooldown = 30 * S;
        for cap in [16u32, 40] {
            let b = block("2001:db8::/80", cap);
            let mut ends: Vec<Option<u64>> = vec![None; cap as usize]; // None: assigned or free
            let mut held: Vec<u32> = Vec::new();
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(cap);
            for now in (0..5_000u64).map(|t| t * S) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 3 != 0 || held.is_empty() {
                    let want = (0..cap)
                        .find(|&o| !held.contains(&o) && ends[o as usize].is_none_or(|e| now >= e));
                    assert_eq!(b.claim(now, cooldown), want, "cap {cap}, at {now}");
                    if let Some(o) = want {
                        held.push(o);
                        ends[o as usize] = None;
                    }
                } else {
                    let o = held.swap_remove((x >> 8) as usize % held.len());
                    b.release(o, now, cooldown);
                    ends[o as usize] = Some(now + cooldown);
                }
                if now % (1_000 * S) == 999 * S {
                    // A restore marks an address cooling from an earlier time than any search
                    // remembered: it must expire on that time, not the remembered one.
                    if let Some(o) = (0..cap).find(|&o| !held.contains(&o)) {
                        b.set_cooling(o, now - cooldown + S, cooldown).unwrap();
                        ends[o as usize] = Some(now + S);
                    }
                }
                b.verify_bits(cooldown).unwrap();
            }
        }
    }

    #[test]
    fn an_earlier_release_time_from_a_restore_is_not_masked_by_the_cache() {
        const S: u64 = 1_000_000_000; // times in seconds, as the clock gives them (ns)
        let b = block("10.0.0.16/28", 16);
        for o in 0..3 {
            assert_eq!(b.claim(0, 30 * S), Some(o));
        }
        b.release(1, 10 * S, 30 * S); // cooling until 40 s
        b.release(0, 20 * S, 30 * S); // cooling until 50 s
                                      // This search reads address 0 (still cooling) before finding 1: it remembers 0 as
                                      // fresh until 50 s.
        assert_eq!(b.claim(45 * S, 30 * S), Some(1));
        assert_eq!(
            b.claim(46 * S, 30 * S),
            Some(3),
            "address 0 is still cooling"
        );
        // A restore says address 0 was released at 0: free since 30 s.
        b.set_cooling(0, 0, 30 * S).unwrap();
        b.verify_bits(30 * S).unwrap();
        assert_eq!(b.claim(46 * S, 30 * S), Some(0));
    }

    #[test]
    fn exhausts_exactly_at_capacity() {
        let b = block("10.0.0.0/28", 16);
        for i in 0..16 {
            assert!(!b.is_full());
            assert_eq!(b.claim(0, 0), Some(i));
        }
        assert!(b.is_full());
        assert_eq!(b.claim(0, 0), None);
        b.release(7, 0, 0);
        assert_eq!(b.claim(0, 0), Some(7));
        let big = block("2001:db8::/80", 40);
        for i in 0..40 {
            // Word 0 fills at 32 while word 1 still has room: not full until the last claim.
            assert!(!big.is_full(), "full before claiming {i}");
            assert_eq!(big.claim(0, 0), Some(i));
        }
        assert_eq!(big.claim(0, 0), None);
        assert_eq!(big.address(39).to_string(), "2001:db8::27");
        big.verify_bits(0).unwrap();
        assert!(big.is_full());
        assert_eq!(big.assigned(), 40);
        big.release(35, 0, 0);
        assert!(!big.is_full());
        assert_eq!(big.claim(0, 0), Some(35));
        big.release(3, 0, 0);
        assert!(!big.is_full());
        assert_eq!(big.claim(0, 0), Some(3));
        assert!(big.is_full());
        // A block configured with no addresses (an IPv6 prefix capacity of 0) is full from the
        // start and hands out nothing.
        let none = block("2001:db8:1::/80", 0);
        assert!(none.is_full());
        assert_eq!(none.claim(0, 0), None);
        none.verify_bits(0).unwrap();
    }

    #[test]
    fn claim_at_and_set_cooling_refuse_busy_addresses() {
        let b = block("10.0.0.0/28", 16);
        b.claim_at(5, 0, 30).unwrap();
        assert_eq!(b.claim_at(5, 0, 30), Err(Busy::Assigned));
        b.set_cooling(6, 100, 30).unwrap();
        assert_eq!(b.claim_at(6, 110, 30), Err(Busy::Cooling));
        assert_eq!(b.set_cooling(5, 0, 30), Err(Busy::Assigned));
        b.claim_at(6, 130, 30).unwrap();
        assert!(b.is_assigned(6));
        assert_eq!(b.assigned(), 2);
        b.verify_bits(30).unwrap();
    }

    #[test]
    fn a_small_block_keeps_its_count_in_step_with_its_bits() {
        // Counted (16 and 1 addresses) and not (20: one word, no room for a count), through
        // every operation that changes a word; verify_bits compares count and bits each step.
        for cap in [16u32, 1, 20] {
            let b = block("2001:db8::/80", cap);
            assert_eq!(b.count_one != 0, cap <= COUNTED_CAPACITY);
            let mut held = Vec::new();
            for now in 0..cap as u64 {
                held.push(b.claim(now, 5).unwrap());
                assert_eq!(b.assigned(), held.len() as u32);
                b.verify_bits(5).unwrap();
            }
            assert!(b.is_full());
            for (i, &o) in held.iter().enumerate() {
                // Alternately free at once and into cooldown: the two release paths.
                b.release(o, 100, if i % 2 == 0 { 0 } else { 5 });
                assert!(!b.is_full());
                b.verify_bits(5).unwrap();
            }
            assert_eq!(b.assigned(), 0);
            if cap > 1 {
                b.claim_at(1, 200, 5).unwrap();
                b.set_cooling(0, 198, 5).unwrap();
                assert_eq!(b.assigned(), 1);
                b.verify_bits(5).unwrap();
            }
        }
    }

    #[test]
    fn a_never_used_lower_address_comes_before_an_expired_higher_one() {
        // Address 0 cooling (until 15), 5 expired (at 10), 1..4 never used: the lowest free is 1.
        let b = block("10.0.0.16/28", 16);
        b.claim_at(0, 0, 10).unwrap();
        b.claim_at(5, 0, 10).unwrap();
        b.release(5, 0, 10);
        b.release(0, 5, 10);
        assert_eq!(b.claim(12, 10), Some(1));
        b.verify_bits(10).unwrap();
    }

    #[test]
    fn a_cooldown_read_below_does_not_hide_an_expired_address_above() {
        // At 12 the searches read only address 0 (cooling until 15), the one below the lowest
        // never-used address. Address 15, above them all, expired at 10, and must be found
        // once the never-used addresses are gone, not held back until 15.
        let b = block("10.0.0.16/28", 16);
        b.claim_at(0, 0, 10).unwrap();
        b.claim_at(15, 0, 10).unwrap();
        b.release(15, 0, 10);
        b.release(0, 5, 10);
        for o in 1..15 {
            assert_eq!(b.claim(12, 10), Some(o));
        }
        assert_eq!(b.claim(12, 10), Some(15));
        assert_eq!(b.claim(12, 10), None, "address 0 cools until 15");
        assert_eq!(b.claim(15, 10), Some(0));
    }

    #[test]
    fn an_address_in_a_later_word_cools_on_its_own_release_time() {
        let b = block("2001:db8::/80", 40);
        b.claim_at(35, 0, 10).unwrap();
        b.release(35, 100, 10);
        assert_eq!(b.cooling(105, 10), vec![(35, 110)]);
        assert_eq!(b.claim_at(35, 105, 10), Err(Busy::Cooling));
        assert_eq!(b.cooling(110, 10), vec![]);
        b.claim_at(35, 110, 10).unwrap();
        b.verify_bits(10).unwrap();
    }

    /// `verify_bits` names each way a block's words can be broken. The words are written raw,
    /// behind the protocol's back, to build states no claim or release can reach.
    #[test]
    fn verify_bits_names_each_kind_of_broken_block() {
        let fails_with = |b: &Block, text: &str| {
            let err = b.verify_bits(10).unwrap_err();
            assert!(err.contains(text), "{err:?} should say {text:?}");
        };
        let b = block("10.0.0.16/28", 10);
        b.first.store(pack(0, 1 << 12), Ordering::Release);
        fails_with(&b, "10.0.0.16/28: bits set beyond its capacity in word 0");
        b.first
            .store(pack(1 << 12, 0) + b.count_one, Ordering::Release);
        fails_with(&b, "bits set beyond its capacity in word 0");
        b.first.store(pack(0b1, 0), Ordering::Release);
        fails_with(&b, "its count says 0 addresses are assigned, its bits 1");
        b.first
            .store(pack(0b1, 0b1) + b.count_one, Ordering::Release);
        fails_with(&b, "an address is both assigned and cooling");
        b.first
            .store(pack(1 << 12, 1 << 12) + b.count_one, Ordering::Release);
        fails_with(&b, "bits set beyond its capacity in word 0");
        b.first
            .store(pack(0b10, 0b1) + b.count_one, Ordering::Release);
        b.verify_bits(10).unwrap();

        // Only the last word has addresses beyond the capacity.
        let big = block("2001:db8::/80", 40);
        big.rest[0].store(pack(1 << 8, 0), Ordering::Release);
        fails_with(&big, "bits set beyond its capacity in word 1");
        big.rest[0].store(pack(1 << 7, 0), Ordering::Release);
        big.first.store(pack(u32::MAX, 0), Ordering::Release);
        big.verify_bits(10).unwrap();

        // The fresh cache promises address 2 cools until 50; it was released at 20, so it cools
        // until 30.
        let b = block("10.0.0.16/28", 16);
        b.claim_at(2, 0, 10).unwrap();
        b.release(2, 20, 10);
        b.fresh[0].store(Fresh::default().with(1 << 2, 30).0, Ordering::Release);
        b.verify_bits(10).unwrap();
        b.fresh[0].store(Fresh::default().with(1 << 2, 1 << 20).0, Ordering::Release);
        fails_with(
            &b,
            "address 10.0.0.18 cools until 30, but the fresh cache says not before 1048576",
        );
    }

    #[test]
    fn offsets_are_found_only_inside_the_block_and_its_capacity() {
        let v4 = block("10.0.0.16/28", 10);
        let at = |b: &Block, a: &str| b.offset_of(a.parse().unwrap());
        assert_eq!(at(&v4, "10.0.0.16"), Some(0));
        assert_eq!(at(&v4, "10.0.0.25"), Some(9));
        assert_eq!(at(&v4, "10.0.0.26"), None, "beyond the capacity");
        assert_eq!(at(&v4, "10.0.0.15"), None);
        assert_eq!(at(&v4, "10.0.0.32"), None);
        assert_eq!(at(&v4, "2001:db8::1"), None);
        let v6 = block("2001:db8::1:0:0:0/80", 40);
        assert_eq!(at(&v6, "2001:db8::1:0:0:0"), Some(0));
        assert_eq!(at(&v6, "2001:db8::1:0:0:27"), Some(39));
        assert_eq!(at(&v6, "2001:db8::1:0:0:28"), None, "beyond the capacity");
        assert_eq!(at(&v6, "2001:db8::5"), None, "below the prefix");
        assert_eq!(at(&v6, "2001:db8::2:0:0:0"), None, "above the prefix");
        assert_eq!(at(&v6, "10.0.0.16"), None);
    }

    /// The fresh cache: a search that reads cooling addresses and finds them unexpired names
    /// them, until the earliest of their ends, so that the next searches skip reading their
    /// times; a later search adds what it reads to what is still valid.
    #[test]
    fn a_search_remembers_the_cooling_addresses_it_read() {
        const S: u64 = 1_000_000_000;
        let cooldown = 100 * S;
        let b = block("10.0.0.16/28", 16);
        for o in 0..4 {
            assert_eq!(b.claim(0, cooldown), Some(o));
        }
        b.release(1, 10 * S, cooldown); // cooling until 110 s
        b.release(0, 20 * S, cooldown); // until 120 s
        b.release(2, 30 * S, cooldown); // until 130 s
        let cache = || Fresh(b.fresh[0].load(Ordering::Acquire));
        // Before 110 s nothing can have expired and no search reads a time.
        assert_eq!(b.claim(50 * S, cooldown), Some(4));
        assert_eq!(cache().valid_at(50 * S), 0, "nothing read yet");
        // At 110 s a search reads address 0 (cooling until 120 s) on its way to 1 (expired).
        assert_eq!(b.claim(110 * S, cooldown), Some(1));
        assert_eq!(cache().valid_at(119 * S), 0b001);
        assert_eq!(cache().valid_at(120 * S), 0);
        // The next skips 0, reads 2 (until 130 s), and adds it to what it knew.
        assert_eq!(b.claim(111 * S, cooldown), Some(5));
        assert_eq!(cache().valid_at(119 * S), 0b101);
        // At 120 s the cache no longer holds: address 0 is found expired.
        assert_eq!(b.claim(120 * S, cooldown), Some(0));
    }
}
