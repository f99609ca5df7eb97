//! What EC2 cannot tell you: free aligned blocks per length, the largest free block, a
//! fragmentation score, and why a prefix request failed.

use super::{Holder, ReservationKind, Subnet, SubnetError};
use crate::space::{free_runs, Run, Unit, Words};
use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// Free aligned blocks of one prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeBlocks {
    /// Prefix length.
    pub len: u8,
    /// Number of entirely free aligned blocks of that length (nested ones counted too: a free
    /// /27 counts as one /27 and two /28s).
    pub count: u64,
}

/// A snapshot of a subnet's occupancy. IPv4 counts are addresses; IPv6 counts are /80s.
#[derive(Clone, Debug, PartialEq)]
pub struct SubnetStats {
    /// The subnet.
    pub cidr: IpNet,
    /// Units in the subnet (addresses, or /80s).
    pub total: u64,
    /// Units reserved by the profile.
    pub reserved: u64,
    /// Units allocated (reserved ones not included).
    pub allocated: u64,
    /// Units not allocated.
    pub free: u64,
    /// Free units counted as AWS counts `AvailableIpAddressCount`: a prefix reservation lowers it
    /// by its whole size at once, an explicit one only as its addresses are assigned.
    pub available: u64,
    /// Free aligned blocks for every length from the subnet's to one unit.
    pub free_blocks: Vec<FreeBlocks>,
    /// The lowest of the largest free aligned blocks.
    pub largest_free_block: Option<IpNet>,
    /// `1 - (units inside free aligned 16-unit blocks) / free units`: 0 when every free address
    /// lies in a whole free /28 (IPv6: a whole free run of 16 /80s), 1 when free addresses remain
    /// but not one /28 is free. 0 for a full subnet. Subnets smaller than 16 units use their size.
    pub fragmentation: f64,
}

impl SubnetStats {
    /// Free aligned blocks of prefix length `len` (0 if out of range).
    pub fn free_blocks_of(&self, len: u8) -> u64 {
        self.free_blocks
            .iter()
            .find(|b| b.len == len)
            .map_or(0, |b| b.count)
    }
}

/// An allocation that spoils candidate blocks of a failed prefix request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spoiler {
    /// The allocation.
    pub holder: Holder,
    /// Candidate blocks it touches.
    pub blocks: u64,
    /// Candidate blocks in which it is the only allocation: releasing (or moving) it would free
    /// that many blocks of the asked length at once.
    pub sole: u64,
    /// One such block, if any.
    pub example: Option<IpNet>,
}

/// Why a prefix of a given length cannot be (or can be) allocated automatically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixFailure {
    /// The subnet.
    pub subnet: IpNet,
    /// The prefix length asked about.
    pub len: u8,
    /// Aligned blocks of that length where automatic assignment may look.
    pub candidate_blocks: u64,
    /// Of those, entirely free ones (0 when the request fails).
    pub free_blocks: u64,
    /// Free units where automatic assignment may look.
    pub free_units: u64,
    /// Candidate blocks that are allocated whole (a prefix of that length, or part of a longer
    /// one): used, not fragmented.
    pub blocks_allocated_whole: u64,
    /// Candidate blocks holding a reserved address of the profile.
    pub blocks_with_reserved_addresses: u64,
    /// Aligned blocks automatic assignment may not use (explicit reservations; prefix space when
    /// fallback is off or does not apply).
    pub blocks_outside_domain: u64,
    /// The allocations whose release would free the most candidate blocks (most `sole` first,
    /// then most blocks touched; at most ten).
    pub spoilers: Vec<Spoiler>,
    /// Number of distinct allocations spoiling at least one candidate block.
    pub spoiling_allocations: u64,
    /// Candidate blocks spoiled by exactly one allocation: the cheapest to win back.
    pub blocks_with_one_spoiler: u64,
}

/// `n` and the words in the right number: `count(1, "block is", "blocks are")`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for PrefixFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.subnet.addr().is_ipv4() {
            ("address", "addresses")
        } else {
            ("/80", "/80s")
        };
        writeln!(
            f,
            "/{} in {}: {}, {} free; {} where automatic assignment looks",
            self.len,
            self.subnet,
            count(
                self.candidate_blocks,
                "candidate aligned block",
                "candidate aligned blocks"
            ),
            self.free_blocks,
            count(
                self.free_units,
                &format!("free {}", unit.0),
                &format!("free {}", unit.1)
            ),
        )?;
        if self.blocks_allocated_whole > 0 {
            writeln!(
                f,
                "  {}",
                count(
                    self.blocks_allocated_whole,
                    "block is allocated whole as a prefix",
                    "blocks are allocated whole as prefixes"
                )
            )?;
        }
        if self.blocks_with_reserved_addresses > 0 {
            writeln!(
                f,
                "  {} reserved addresses",
                count(
                    self.blocks_with_reserved_addresses,
                    "block holds",
                    "blocks hold"
                )
            )?;
        }
        if self.blocks_outside_domain > 0 {
            writeln!(
                f,
                "  {} in reservations automatic assignment may not use",
                count(self.blocks_outside_domain, "block lies", "blocks lie")
            )?;
        }
        if self.spoiling_allocations > 0 {
            writeln!(
                f,
                "  {} the other blocks; {} held by a single allocation each",
                count(
                    self.spoiling_allocations,
                    "allocation spoils",
                    "allocations spoil"
                ),
                count(self.blocks_with_one_spoiler, "block is", "blocks are")
            )?;
            for s in &self.spoilers {
                match s.example {
                    Some(b) => writeln!(
                        f,
                        "    {} alone spoils {}, e.g. {b}; touches {}",
                        s.holder,
                        count(s.sole, "block", "blocks"),
                        s.blocks
                    )?,
                    None => writeln!(
                        f,
                        "    {} touches {}",
                        s.holder,
                        count(s.blocks, "block", "blocks")
                    )?,
                }
            }
        }
        Ok(())
    }
}

impl Subnet {
    /// Occupancy and fragmentation. Linear in the subnet's touched words (an untouched 65536-unit
    /// page is counted in O(1)); call it from a quiet moment for an exact picture.
    ///
    /// # Example
    /// ```
    /// let s = pdipam::Subnet::new("10.0.0.0/24".parse().unwrap()).unwrap();
    /// let st = s.stats();
    /// assert_eq!((st.total, st.reserved, st.available), (256, 5, 251));
    /// assert_eq!(st.free_blocks_of(28), 14);
    /// ```
    pub fn stats(&self) -> SubnetStats {
        let log2 = self.geo.log2_units;
        let mut tally = BlockTally::new(log2);
        self.map.for_each_word(|words| match words {
            Words::One(w, used) => tally.word(w, used | self.map.pad_of(w)),
            Words::Empty(w, count) => tally.empty_words(w, count),
        });
        tally.finish(self.map.word_count());
        let BlockTally { counts, first, .. } = tally;
        let total = self.geo.units();
        let used = self.map.used_units();
        let free = total.saturating_sub(used);
        let reserved = self.reserved.len() as u64;
        let available = self.with_reservations(|set| match set {
            None => free,
            Some(set) => {
                let in_prefix: u64 = set
                    .entries()
                    .filter(|(r, _)| r.kind == ReservationKind::Prefix)
                    .map(|(_, run)| run.len() - self.map.used_in(run.range()))
                    .sum();
                free.saturating_sub(in_prefix)
            }
        });
        let free_blocks: Vec<FreeBlocks> = (0..=log2)
            .rev()
            .map(|n| FreeBlocks {
                len: self.geo.unit_len - n as u8,
                count: counts[n as usize],
            })
            .collect();
        let largest_free_block = (0..=log2).rev().find(|&n| counts[n as usize] > 0).map(|n| {
            self.geo.net_of(Run {
                start: Unit(first[n as usize].expect("count > 0 has a first")),
                log2: n as u8,
            })
        });
        let block = 4.min(log2);
        let fragmentation = if free == 0 {
            0.0
        } else {
            1.0 - ((counts[block as usize] << block) as f64 / free as f64)
        };
        SubnetStats {
            cidr: self.geo.cidr,
            total,
            reserved,
            allocated: used.saturating_sub(reserved),
            free,
            available,
            free_blocks,
            largest_free_block,
            fragmentation,
        }
    }

    /// Explains what stands in the way of an automatic prefix of length `len`: the candidate
    /// blocks where automatic assignment may look, how many are free, and which allocations spoil
    /// the most of them. Linear in the subnet; meant for the failure path and for operators.
    ///
    /// # Errors
    /// [`SubnetError::PrefixLength`] for a length the subnet cannot hand out.
    ///
    /// # Example
    /// ```
    /// let s = pdipam::Subnet::new("10.0.0.0/26".parse().unwrap()).unwrap();
    /// s.allocate_ip_at("10.0.0.20".parse().unwrap()).unwrap();
    /// s.allocate_ip_at("10.0.0.40".parse().unwrap()).unwrap();
    /// let err = s.allocate_prefix(28).unwrap_err();
    /// assert!(err.to_string().starts_with("InsufficientCidrBlocks"));
    /// let why = s.explain_prefix_failure(28).unwrap();
    /// assert_eq!((why.candidate_blocks, why.free_blocks), (4, 0));
    /// assert_eq!(why.blocks_with_reserved_addresses, 2);
    /// assert_eq!(why.spoilers.len(), 2); // 10.0.0.20 and 10.0.0.40
    /// ```
    pub fn explain_prefix_failure(&self, len: u8) -> Result<PrefixFailure, SubnetError> {
        let n = self.geo.run_log2(len)?;
        let size = 1u64 << n;
        let units = self.geo.units();
        let domain: Vec<Range<u64>> = self.with_reservations(|set| match set {
            None => std::iter::once(0..units).collect(),
            Some(set) => set.prefix_domain(
                set.prefix_ranges().is_empty() || self.options.fallback_to_unreserved,
            ),
        });
        // Candidate blocks: aligned blocks entirely inside one domain range.
        let mut candidates: Vec<u64> = Vec::new();
        for r in &domain {
            let mut s = r.start.next_multiple_of(size);
            while s + size <= r.end {
                candidates.push(s / size);
                s += size;
            }
        }
        let blocks_outside_domain = (units / size).saturating_sub(candidates.len() as u64);
        let mut free_blocks = 0;
        let mut with_reserved = 0;
        let mut spoil: HashMap<Run, SpoilTally> = HashMap::new();
        let mut one_spoiler = 0;
        let mut allocated_whole = 0;
        let allocations = self.map.allocations();
        let mut next_alloc = 0usize;
        for &b in &candidates {
            let (lo, hi) = (b * size, (b + 1) * size);
            if self.map.is_free(lo..hi) {
                free_blocks += 1;
                continue;
            }
            if self.reserved.iter().any(|u| (lo..hi).contains(u)) {
                with_reserved += 1;
                continue;
            }
            // Allocations are in address order, as are candidates: advance a cursor.
            while next_alloc < allocations.len() && allocations[next_alloc].range().end <= lo {
                next_alloc += 1;
            }
            let mut i = next_alloc;
            let first = allocations.get(next_alloc);
            if first.is_some_and(|a| a.start.0 <= lo && a.range().end >= hi) {
                allocated_whole += 1;
                continue;
            }
            while i < allocations.len() && allocations[i].start.0 < hi {
                spoil.entry(allocations[i]).or_default().touched += 1;
                i += 1;
            }
            if i == next_alloc + 1 {
                one_spoiler += 1;
                let e = spoil.entry(allocations[next_alloc]).or_default();
                e.sole += 1;
                e.example.get_or_insert(b);
            }
        }
        let spoiling_allocations = spoil.len() as u64;
        let mut spoilers: Vec<(Run, SpoilTally)> = spoil.into_iter().collect();
        spoilers.sort_by(|(ra, a), (rb, b)| {
            (b.sole, b.touched)
                .cmp(&(a.sole, a.touched))
                .then(ra.start.cmp(&rb.start))
        });
        spoilers.truncate(10);
        Ok(PrefixFailure {
            subnet: self.geo.cidr,
            len,
            candidate_blocks: candidates.len() as u64,
            free_blocks,
            free_units: self.free_in(&domain),
            blocks_allocated_whole: allocated_whole,
            blocks_with_reserved_addresses: with_reserved,
            blocks_outside_domain,
            spoilers: spoilers
                .into_iter()
                .map(|(run, t)| Spoiler {
                    holder: self.holder_of_run(run),
                    blocks: t.touched,
                    sole: t.sole,
                    example: t.example.map(|b| {
                        self.geo.net_of(Run {
                            start: Unit(b * size),
                            log2: n,
                        })
                    }),
                })
                .collect(),
            spoiling_allocations,
            blocks_with_one_spoiler: one_spoiler,
        })
    }
}

/// What one allocation does to the candidate blocks of a failed request.
#[derive(Clone, Copy, Debug, Default)]
struct SpoilTally {
    /// Candidate blocks it touches.
    touched: u64,
    /// Candidate blocks in which it is the only allocation.
    sole: u64,
    /// Index of one such block.
    example: Option<u64>,
}

/// Counts free aligned blocks of every size in one pass over the words, in address order.
struct BlockTally {
    log2: u32,
    /// `counts[n]`: free aligned runs of 2^n units.
    counts: Vec<u64>,
    /// `first[n]`: lowest start of such a run.
    first: Vec<Option<u64>>,
    /// First word of the current run of empty words.
    streak: Option<usize>,
}

impl BlockTally {
    fn new(log2: u32) -> Self {
        Self {
            log2,
            counts: vec![0; log2 as usize + 1],
            first: vec![None; log2 as usize + 1],
            streak: None,
        }
    }

    fn note(&mut self, n: u32, count: u64, first: u64) {
        if count > 0 {
            self.counts[n as usize] += count;
            self.first[n as usize].get_or_insert(first);
        }
    }

    /// One word with these used bits.
    fn word(&mut self, w: usize, used: u64) {
        for n in 0..=self.log2.min(6) {
            let runs = free_runs(used, n);
            self.note(
                n,
                runs.count_ones() as u64,
                ((w as u64) << 6) + runs.trailing_zeros() as u64,
            );
        }
        if used == 0 {
            self.streak.get_or_insert(w);
        } else if let Some(s) = self.streak.take() {
            self.close_streak(s, w);
        }
    }

    /// `count` empty words from `w` (a page never touched).
    fn empty_words(&mut self, w: usize, count: usize) {
        for n in 0..=self.log2.min(6) {
            self.note(n, (count as u64) << (6 - n), (w as u64) << 6);
        }
        self.streak.get_or_insert(w);
    }

    /// Multi-word blocks lie in runs of empty words `[s, e)`.
    fn close_streak(&mut self, s: usize, e: usize) {
        for k in 1..=self.log2.saturating_sub(6) {
            let g = 1usize << k;
            let (lo, hi) = (s.div_ceil(g), e / g);
            if hi > lo {
                self.note(k + 6, (hi - lo) as u64, ((lo * g) as u64) << 6);
            }
        }
    }

    fn finish(&mut self, words: usize) {
        if let Some(s) = self.streak.take() {
            self.close_streak(s, words);
        }
    }
}
