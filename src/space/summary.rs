//! A 64-ary tree of bits: "item i has property P". The block map uses it as its page directory
//! (one bit per page; within a page the two summary levels live in [`super::page`]).
//!
//! Level 0 has one bit per item; level k+1 one bit per level-k word ("that word is non-zero").
//! Finding the first item with the property from a position visits O(levels) words, so the search
//! is sub-linear in the number of items.
//!
//! The tree is a hint. Whoever flips a word between zero and non-zero re-derives the bit above it
//! from that word, re-reading until the two agree ([`SummaryTree::settle`]); so once writers
//! finish, every bit is exact. While writers are active a bit can be briefly wrong either way: a
//! stale set bit costs a searcher one look at a word, a stale clear bit could hide one, which is
//! why a failed search checks whether anything was in flight (`BlockMap::claim_auto`).

use crate::sync::{AtomicU64, Ordering::SeqCst};

/// Most levels a tree can have: 64^7 items is far beyond any map.
const MAX_LEVELS: usize = 7;

/// One tree over `items` bits. All levels live in one array (top level first); `levels[k]` is a
/// view into it, so reaching any summary word is one index and one load.
#[derive(Debug)]
pub(crate) struct SummaryTree {
    bits: Box<[AtomicU64]>,
    /// (offset, length) of each level in `bits`, level 0 first.
    spans: [(usize, usize); MAX_LEVELS],
    depth: usize,
}

/// Level `k` of a tree as a slice.
struct Levels<'a>(&'a SummaryTree);

impl<'a> std::ops::Index<usize> for Levels<'a> {
    type Output = [AtomicU64];
    #[inline]
    fn index(&self, k: usize) -> &[AtomicU64] {
        let (off, len) = self.0.spans[k];
        &self.0.bits[off..off + len]
    }
}

impl<'a> Levels<'a> {
    #[inline]
    fn len(&self) -> usize {
        self.0.depth
    }
}

impl SummaryTree {
    /// A tree over `items` bits, all clear.
    pub(crate) fn new(items: usize) -> Self {
        let mut lens = Vec::new();
        let mut n = items.max(1);
        loop {
            let words = n.div_ceil(64);
            lens.push(words);
            if words == 1 {
                break;
            }
            n = words;
        }
        assert!(lens.len() <= MAX_LEVELS, "summary tree too deep");
        // Top level first in memory: the emptiness check reads bits[0].
        let mut spans = [(0, 0); MAX_LEVELS];
        let mut off = 0;
        for k in (0..lens.len()).rev() {
            spans[k] = (off, lens[k]);
            off += lens[k];
        }
        Self {
            bits: (0..off).map(|_| AtomicU64::new(0)).collect(),
            spans,
            depth: lens.len(),
        }
    }

    #[inline]
    fn levels(&self) -> Levels<'_> {
        Levels(self)
    }

    /// A tree over `items` bits, all set.
    pub(crate) fn new_full(items: usize) -> Self {
        let t = Self::new(items);
        for i in 0..items {
            t.set(i);
        }
        t
    }

    /// Sets bit `i`.
    pub(crate) fn set(&self, i: usize) {
        let levels = self.levels();
        let prev = levels[0][i >> 6].fetch_or(1 << (i & 63), SeqCst);
        if prev == 0 {
            self.settle(1, i >> 6);
        }
    }

    /// Clears bit `i`.
    pub(crate) fn clear(&self, i: usize) {
        let levels = self.levels();
        let bit = 1u64 << (i & 63);
        let now = levels[0][i >> 6].fetch_and(!bit, SeqCst) & !bit;
        if now == 0 {
            self.settle(1, i >> 6);
        }
    }

    /// Makes bit `idx` of level `k` say "word `idx` of level `k - 1` is non-zero", re-reading that
    /// word after each write until the two agree, and carries the change upward. Any thread that
    /// flips a word between zero and non-zero runs this afterwards, so when writers finish every
    /// upper bit is exact (neither a stale one nor a missing one survives).
    fn settle(&self, k: usize, idx: usize) {
        let levels = self.levels();
        if k == levels.len() {
            return; // the child was the top word: nothing above it
        }
        let bit = 1u64 << (idx & 63);
        let word = &levels[k][idx >> 6];
        loop {
            let want = levels[k - 1][idx].load(SeqCst) != 0;
            let before = if want {
                word.fetch_or(bit, SeqCst)
            } else {
                word.fetch_and(!bit, SeqCst)
            };
            let after = if want { before | bit } else { before & !bit };
            if (before == 0) != (after == 0) {
                self.settle(k + 1, idx >> 6);
            }
            if (levels[k - 1][idx].load(SeqCst) != 0) == want {
                return;
            }
        }
    }

    /// Whether no bit is set.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.bits[0].load(SeqCst) == 0
    }

    /// Bit `i` of level 0.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.levels()[0][i >> 6].load(SeqCst) & (1 << (i & 63)) != 0
    }

    /// The first set bit at index `>= start`, if any.
    #[inline]
    pub(crate) fn find_from(&self, start: usize) -> Option<usize> {
        let levels = self.levels();
        let top = levels.len() - 1;
        if start == 0 {
            return self.find_first();
        }
        if self.is_empty() {
            return None;
        }
        let mut level = 0;
        let mut pos = start;
        loop {
            let words = &levels[level];
            let w = pos >> 6;
            let bits = if w < words.len() {
                words[w].load(SeqCst) & (u64::MAX << (pos & 63))
            } else {
                0
            };
            if bits != 0 {
                let found = (w << 6) | bits.trailing_zeros() as usize;
                if level == 0 {
                    return Some(found);
                }
                level -= 1;
                pos = found << 6;
            } else {
                if level == top {
                    return None;
                }
                level += 1;
                pos = w + 1;
            }
        }
    }

    /// The first set bit: straight down from the root, one load per level. A stale upper bit
    /// (its child already empty) falls back to the general search past it.
    #[inline]
    fn find_first(&self) -> Option<usize> {
        let levels = self.levels();
        let mut pos = 0usize;
        for level in (0..levels.len()).rev() {
            let bits = levels[level][pos].load(SeqCst);
            if bits == 0 {
                if level + 1 == levels.len() {
                    return None;
                }
                // Stale hint above: resume the bottom-up search after this word.
                return self.find_from((pos + 1) << (6 * (level + 1)));
            }
            pos = (pos << 6) | bits.trailing_zeros() as usize;
            if level == 0 {
                return Some(pos);
            }
        }
        None
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.len() * 8
    }

    /// Checks that each upper bit is exactly "child word non-zero" (exact when quiescent).
    pub(crate) fn verify_structure(&self) -> Result<(), String> {
        let levels = self.levels();
        for k in 1..levels.len() {
            for (i, w) in levels[k - 1].iter().enumerate() {
                let child = w.load(SeqCst) != 0;
                let up = levels[k][i >> 6].load(SeqCst) & (1 << (i & 63)) != 0;
                if child != up {
                    return Err(format!(
                        "summary level {k} bit {i} is {up}, child word non-zero is {child}"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn finds_across_levels() {
        let t = SummaryTree::new(300_000);
        // Four levels of 4688, 74, 2 and 1 words.
        assert_eq!(t.heap_bytes(), (4688 + 74 + 2 + 1) * 8);
        assert!(t.is_empty());
        assert_eq!(t.find_from(0), None);
        t.set(299_999);
        assert_eq!(t.find_from(0), Some(299_999));
        t.set(5);
        assert_eq!(t.find_from(0), Some(5));
        assert_eq!(t.find_from(6), Some(299_999));
        assert_eq!(t.find_from(300_000), None);
        t.clear(5);
        assert!(!t.is_empty());
        t.clear(299_999);
        assert!(t.is_empty());
        t.verify_structure().unwrap();
    }

    #[test]
    fn a_search_from_the_end_of_a_level_finds_nothing() {
        // 256 items (a /8's pages): level 0 is exactly four words, so starting at item 256 asks
        // for a word past the end of the level.
        let t = SummaryTree::new(256);
        t.set(3);
        t.set(200);
        assert_eq!(t.find_from(201), None);
        assert_eq!(t.find_from(256), None);
        assert_eq!(t.find_from(4), Some(200));
    }

    #[test]
    fn a_stale_upper_bit_is_searched_past() {
        // Writers can leave an upper bit set over a word that is already zero (until they
        // settle it). The straight-down search must then resume after that word, not give up
        // and not start over.
        let t = SummaryTree::new(300_000);
        t.set(100);
        t.set(299_999);
        t.levels()[1][0].fetch_or(1, SeqCst); // says level-0 word 0 (items 0..64) is non-zero
        assert_eq!(t.find_from(0), Some(100));
        t.clear(100);
        t.levels()[1][0].fetch_or(0b11, SeqCst);
        assert_eq!(t.find_from(0), Some(299_999));
        assert!(t.verify_structure().is_err(), "the planted bits are stale");
    }

    #[test]
    fn full_tree_is_consistent() {
        let t = SummaryTree::new_full(4097);
        t.verify_structure().unwrap();
        assert_eq!(t.find_from(4096), Some(4096));
        assert_eq!(t.find_from(4097), None);
    }
}
