//! One 64-unit word: occupancy and allocation boundaries, and the bit tricks over them.
//!
//! A word is stored as one `u128`: the low half holds the *used* bits (1 = unit taken), the high
//! half the *continuation* bits (1 = this used unit belongs to the same allocation as the unit
//! before it). An allocation of `2^n` units at `s` therefore sets used bits `s..s+2^n` and
//! continuation bits `s+1..s+2^n`; a single unit sets no continuation bit. Both halves change in
//! one compare-and-swap. With two separate 64-bit words a release could observe a claim between
//! its two steps (used bits set, boundaries not yet), take the first unit of a fresh /28 for a
//! lone address and free it while the claimer goes on to hand out the whole /28: the same address
//! given twice. One 128-bit CAS closes that window without a lock.

/// Units per word.
pub(crate) const WORD_UNITS: u32 = 64;
/// log2 of [`WORD_UNITS`].
pub(crate) const WORD_LOG2: u32 = 6;
/// All 64 units of a word.
pub(crate) const FULL: u64 = u64::MAX;

/// For each run size `2^n` (n = 0..=6) the bits at positions aligned to `2^n`.
const ALIGNED: [u64; 7] = [
    u64::MAX,
    0x5555_5555_5555_5555,
    0x1111_1111_1111_1111,
    0x0101_0101_0101_0101,
    0x0001_0001_0001_0001,
    0x0000_0001_0000_0001,
    0x0000_0000_0000_0001,
];

/// Splits a packed word into (used, continuation).
#[inline]
pub(crate) fn unpack(w: u128) -> (u64, u64) {
    (w as u64, (w >> 64) as u64)
}

/// Packs (used, continuation) into one word.
#[inline]
pub(crate) fn pack(used: u64, cont: u64) -> u128 {
    (used as u128) | ((cont as u128) << 64)
}

/// Mask of a run of `2^n` units starting at `pos` (n <= 6, pos aligned).
#[inline]
pub(crate) fn run_mask(pos: u32, n: u32) -> u64 {
    debug_assert!(n <= WORD_LOG2 && pos % (1 << n) == 0);
    if n == WORD_LOG2 {
        FULL
    } else {
        ((1u64 << (1u32 << n)) - 1) << pos
    }
}

/// Bits set at every aligned position `p` (multiple of `2^n`) whose run `p..p+2^n` is free.
#[inline]
pub(crate) fn free_runs(used: u64, n: u32) -> u64 {
    let mut f = !used;
    for k in 0..n {
        f &= f >> (1u32 << k);
    }
    f & ALIGNED[n as usize]
}

/// `levels[k]`: a bit at every position `p` (aligned or not) where `p..p+2^k` is free.
#[inline]
fn free_levels(used: u64) -> [u64; 7] {
    let mut f = [0u64; 7];
    f[0] = !used;
    for k in 1..7 {
        f[k] = f[k - 1] & (f[k - 1] >> (1u32 << (k - 1)));
    }
    f
}

/// Bits at `0, 2^n, 2*2^n, ...` below `2^m`. Multiplying the aligned start bits of `2^m` blocks by
/// it marks every `2^n`-aligned position inside those blocks (no carries: it fits in one block).
#[inline]
fn spread(n: u32, m: u32) -> u64 {
    if m == WORD_LOG2 {
        ALIGNED[n as usize]
    } else {
        ALIGNED[n as usize] & ((1u64 << (1u32 << m)) - 1)
    }
}

/// The lowest bit of each aligned 16-unit lane.
const LANE_LOW: u64 = ALIGNED[4];
/// The highest bit of each aligned 16-unit lane.
const LANE_HIGH: u64 = LANE_LOW << 15;

/// Whether some aligned 16-unit lane of `x` is all zero: subtracting one from each lane sets a
/// lane's top bit, where it was clear, only in a zero lane or above one (a zero lane's borrow can
/// make the lane above it look zero too). So the bits do not say which lanes are zero, but
/// whether any is, exactly. Four instructions, where shifting the lanes together takes a dozen.
#[inline(always)]
fn some_lane_zero(x: u64) -> bool {
    x.wrapping_sub(LANE_LOW) & !x & LANE_HIGH != 0
}

/// Whether some aligned 16-unit block is partly used and partly free ("broken"): two
/// neighbouring units of one lane differ (the top unit of a lane is not compared with the next
/// lane's bottom one).
#[inline]
pub(crate) fn has_broken16(used: u64) -> bool {
    (used ^ (used >> 1)) & !LANE_HIGH != 0
}

/// Best-fit position for a run of `2^n` in `used`: among the free aligned runs, the one inside the
/// smallest entirely free aligned block (so larger free blocks stay whole); ties go to the lowest.
#[inline(always)]
pub(crate) fn best_fit(used: u64, n: u32) -> Option<u32> {
    let f = free_levels(used);
    let mut cand = f[n as usize] & ALIGNED[n as usize];
    if cand == 0 {
        return None;
    }
    for m in n + 1..=WORD_LOG2 {
        let inside_bigger = (f[m as usize] & ALIGNED[m as usize]).wrapping_mul(spread(n, m));
        let tight = cand & !inside_bigger;
        if tight != 0 {
            return Some(tight.trailing_zeros());
        }
        cand &= inside_bigger;
    }
    Some(cand.trailing_zeros())
}

/// Position of a single unit for Pack: in the most-used broken 16-block (ties: the lowest block),
/// its lowest free unit. `None` if no 16-block is broken.
pub(crate) fn most_used_broken16(used: u64) -> Option<u32> {
    let mut best: Option<(u32, u32)> = None; // (used count, block)
    for b in 0..4u32 {
        let lane = (used >> (b * 16)) as u16;
        if lane != 0 && lane != u16::MAX {
            let c = lane.count_ones();
            if best.is_none_or(|(bc, _)| c > bc) {
                best = Some((c, b));
            }
        }
    }
    best.map(|(_, b)| {
        let lane = (used >> (b * 16)) as u16;
        b * 16 + (!lane).trailing_zeros()
    })
}

/// First free aligned run of `2^n` at a position `>= from` (within the word), if any.
#[inline]
pub(crate) fn first_free_run_from(used: u64, n: u32, from: u32) -> Option<u32> {
    if from >= WORD_UNITS {
        return None;
    }
    let c = free_runs(used, n) & (FULL << from);
    (c != 0).then(|| c.trailing_zeros())
}

/// The summary properties a word can have; each has its own summary tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Prop {
    /// Every unit free.
    Empty = 0,
    /// Some units used and a whole aligned 16-unit block free.
    Partial16 = 1,
    /// Some aligned 16-unit block is partly used.
    Broken16 = 2,
}

/// Number of [`Prop`] values. "Partly used" needs no tree of its own: such a word either has a
/// broken 16-block or an entirely free one, so it is `Partial16 | Broken16`.
pub(crate) const PROPS: usize = 3;
/// Every property, in tree order.
pub(crate) const ALL_PROPS: [Prop; PROPS] = [Prop::Empty, Prop::Partial16, Prop::Broken16];
/// The properties whose union is "has a free unit and a used one".
pub(crate) const PARTIAL: [Prop; 2] = [Prop::Partial16, Prop::Broken16];

impl Prop {
    /// Whether a word with these used bits has the property: the definition [`Prop::set_of`]
    /// is tested against.
    #[cfg(test)]
    pub(crate) fn holds(self, used: u64) -> bool {
        match self {
            Prop::Empty => used == 0,
            Prop::Partial16 => used != 0 && free_runs(used, 4) != 0,
            Prop::Broken16 => (0..4).any(|b| {
                let lane = (used >> (b * 16)) as u16;
                lane != 0 && lane != u16::MAX
            }),
        }
    }

    /// Bit set of the properties that hold (the same as asking `Prop::holds`, a test helper, for each).
    #[inline(always)]
    pub(crate) fn set_of(used: u64) -> u8 {
        if used == 0 {
            return 1 << Prop::Empty as usize;
        }
        if used == FULL {
            return 0;
        }
        ((some_lane_zero(used) as u8) << Prop::Partial16 as usize)
            | ((has_broken16(used) as u8) << Prop::Broken16 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_tests_are_exact_for_every_mix_of_lanes() {
        // Lanes that are free, used, or one unit away from either, in every combination: the
        // borrow of a free lane must not make a neighbour count, nor hide one.
        let kinds = [0u16, u16::MAX, 1, 0x8000, 0x7fff, 0xfffe, 0x0ff0];
        for a in kinds {
            for b in kinds {
                for c in kinds {
                    for d in kinds {
                        let lanes = [a, b, c, d];
                        let used = lanes
                            .iter()
                            .enumerate()
                            .fold(0u64, |w, (i, &l)| w | u64::from(l) << (16 * i));
                        assert_eq!(some_lane_zero(used), lanes.contains(&0), "{used:#x}");
                        let broken = lanes.iter().any(|&l| l != 0 && l != u16::MAX);
                        assert_eq!(has_broken16(used), broken, "{used:#x}");
                        let slow = ALL_PROPS
                            .iter()
                            .fold(0, |s, p| s | ((p.holds(used) as u8) << *p as usize));
                        assert_eq!(Prop::set_of(used), slow, "{used:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn free_runs_finds_aligned_runs_only() {
        // units 1..=16 used: no free aligned 16-run in block 0, blocks 2 and 3 (32..64) free,
        // block 1 (16..32) has unit 16 used.
        let used = 0x1_fffe;
        assert_eq!(free_runs(used, 4), (1 << 32) | (1 << 48));
        assert_eq!(free_runs(used, 0), !used);
        assert_eq!(free_runs(0, 6), 1);
        assert_eq!(free_runs(1 << 63, 6), 0);
        assert_eq!(free_runs(1 << 63, 5), 1);
    }

    #[test]
    fn best_fit_prefers_the_tightest_free_block() {
        // 0..16 used, 16..32 free, 32..64 free: a 16-run should go to 16 (its buddy is used).
        assert_eq!(best_fit(0xffff, 4), Some(16));
        // A single unit next to a used one beats one inside a free pair.
        assert_eq!(best_fit(0b0101_0001, 0), Some(1));
        assert_eq!(best_fit(0, 3), Some(0));
        assert_eq!(best_fit(FULL, 0), None);
    }

    #[test]
    fn most_used_broken_block_wins() {
        let used = 0x0003_0000_0001_0000u64; // block 1: 1 used, block 3: 2 used
        assert_eq!(most_used_broken16(used), Some(48 + 2));
        assert_eq!(most_used_broken16(0), None);
        assert_eq!(most_used_broken16(0xffff), None);
    }

    #[test]
    fn fast_forms_match_their_definitions() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for used in [
                x,
                x & (x >> 3),
                x | (x << 5),
                x & 0xffff_0000_ff00_00f0,
                !x & 0x0f0f,
                0,
                FULL,
            ] {
                let slow = ALL_PROPS
                    .iter()
                    .fold(0, |a, p| a | ((p.holds(used) as u8) << *p as usize));
                assert_eq!(Prop::set_of(used), slow, "{used:#x}");
                let broken = (0..4).any(|b| {
                    let lane = (used >> (b * 16)) as u16;
                    lane != 0 && lane != u16::MAX
                });
                assert_eq!(has_broken16(used), broken, "{used:#x}");
                for n in 0..=6 {
                    // Best fit by definition: minimise the largest free aligned block around the run.
                    let runs = |m: u32| free_runs(used, m);
                    let slow = (0..64u32)
                        .step_by(1 << n)
                        .filter(|&p| runs(n) & (1 << p) != 0)
                        .min_by_key(|&p| {
                            let biggest = (n..=6)
                                .filter(|&m| runs(m) & (1u64 << (p & !((1 << m) - 1))) != 0)
                                .max();
                            (biggest, p)
                        });
                    assert_eq!(best_fit(used, n), slow, "{used:#x} n={n}");
                }
            }
        }
    }

    #[test]
    fn partial_is_the_union_of_partial16_and_broken16() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for used in [x, x & 0xffff_0000_0000_ffff, x | 0x0000_ffff_ffff_0000] {
                let partial = used != 0 && used != FULL;
                assert_eq!(partial, PARTIAL.iter().any(|p| p.holds(used)), "{used:#x}");
            }
        }
    }

    #[test]
    fn props_match_their_definitions() {
        assert_eq!(Prop::set_of(0), 1 << Prop::Empty as usize);
        assert_eq!(Prop::set_of(FULL), 0);
        let one = Prop::set_of(1);
        assert!(one & (1 << Prop::Partial16 as usize) != 0);
        assert!(one & (1 << Prop::Broken16 as usize) != 0);
        assert!(!Prop::Broken16.holds(0xffff));
        assert!(Prop::Partial16.holds(0xffff));
    }

    #[test]
    fn pack_round_trips() {
        assert_eq!(unpack(pack(7, 9)), (7, 9));
        assert_eq!(run_mask(16, 4), 0xffff << 16);
        assert_eq!(run_mask(0, 6), FULL);
        assert_eq!(first_free_run_from(0b1, 0, 0), Some(1));
        assert_eq!(first_free_run_from(0, 4, 17), Some(32));
        assert_eq!(first_free_run_from(0, 0, 64), None);
    }
}
