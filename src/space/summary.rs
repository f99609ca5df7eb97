//! A 64-ary tree of bits over a bitmap's words: "this word has property P".
//!
//! Level 0 has one bit per item; level k+1 one bit per level-k word ("that word is non-zero").
//! Finding the first item with the property from a position visits O(levels) words, so the search
//! is sub-linear in the number of words.
//!
//! The tree is a hint kept exact when the map is quiescent. A set bit may be stale (the searcher
//! checks the word, which is the truth, and moves on); a clear bit is never stale once writers
//! finish: every clear is followed by a re-check of what it summarises, and a writer that makes a
//! property true sets the bit after its own CAS. So a free block is never hidden from a search that
//! starts after the writers are done.

use crate::sync::{AtomicU64, Ordering::SeqCst};

/// One tree over `items` bits.
#[derive(Debug)]
pub(crate) struct SummaryTree {
    levels: Vec<Box<[AtomicU64]>>,
}

fn zeroed(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl SummaryTree {
    /// A tree over `items` bits, all clear.
    pub(crate) fn new(items: usize) -> Self {
        let mut levels = Vec::new();
        let mut n = items.max(1);
        loop {
            let words = n.div_ceil(64);
            levels.push(zeroed(words));
            if words == 1 {
                break;
            }
            n = words;
        }
        Self { levels }
    }

    /// A tree over `items` bits, all set.
    pub(crate) fn new_full(items: usize) -> Self {
        let t = Self::new(items);
        for i in 0..items {
            t.set(i);
        }
        t
    }

    /// Sets bit `i`, and the bits above it that were clear.
    pub(crate) fn set(&self, i: usize) {
        self.set_at(0, i)
    }

    /// Clears bit `i`, and the bits above it whose word became empty.
    pub(crate) fn clear(&self, i: usize) {
        self.clear_at(0, i)
    }

    fn clear_at(&self, level: usize, idx: usize) {
        let words = &self.levels[level];
        let bit = 1u64 << (idx & 63);
        let now = words[idx >> 6].fetch_and(!bit, SeqCst) & !bit;
        if now != 0 || level + 1 == self.levels.len() {
            return;
        }
        self.clear_at(level + 1, idx >> 6);
        // A writer may have set a bit in this word after our fetch_and and set the parent before
        // we cleared it. Re-check the word and restore the parent for it.
        if words[idx >> 6].load(SeqCst) != 0 {
            self.set_at(level + 1, idx >> 6);
        }
    }

    fn set_at(&self, from: usize, i: usize) {
        let mut idx = i;
        for level in &self.levels[from..] {
            let prev = level[idx >> 6].fetch_or(1 << (idx & 63), SeqCst);
            if prev != 0 {
                return;
            }
            idx >>= 6;
        }
    }

    /// Whether no bit is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.levels[self.levels.len() - 1][0].load(SeqCst) == 0
    }

    /// Bit `i` of level 0.
    pub(crate) fn get(&self, i: usize) -> bool {
        self.levels[0][i >> 6].load(SeqCst) & (1 << (i & 63)) != 0
    }

    /// The first set bit at index `>= start`, if any.
    pub(crate) fn find_from(&self, start: usize) -> Option<usize> {
        let top = self.levels.len() - 1;
        let mut level = 0;
        let mut pos = start;
        loop {
            let words = &self.levels[level];
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

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.len() * 8).sum()
    }

    /// Checks that each upper bit is exactly "child word non-zero" (exact when quiescent).
    pub(crate) fn verify_structure(&self) -> Result<(), String> {
        for k in 1..self.levels.len() {
            for (i, w) in self.levels[k - 1].iter().enumerate() {
                let child = w.load(SeqCst) != 0;
                let up = self.levels[k][i >> 6].load(SeqCst) & (1 << (i & 63)) != 0;
                if child != up {
                    return Err(format!("summary level {k} bit {i} is {up}, child word non-zero is {child}"));
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
        assert!(t.is_empty());
        assert_eq!(t.find_from(0), None);
        t.set(299_999);
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
    fn full_tree_is_consistent() {
        let t = SummaryTree::new_full(4097);
        t.verify_structure().unwrap();
        assert_eq!(t.find_from(4096), Some(4096));
        assert_eq!(t.find_from(4097), None);
    }
}
