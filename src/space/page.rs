//! One page: up to [`PAGE_WORDS`] words and their summaries, in two flat arrays.
//!
//! A page's summary tree per property has exactly two levels: level 0 with one bit per word (at
//! most 16 `u64`s) and level 1 with one bit per level-0 word (one `u64`). Keeping all of them in
//! one array with fixed offsets makes every summary access one index computation and one load,
//! instead of a walk through nested boxes; the hot paths are bound by that latency.
//!
//! The update protocol is the one described in [`super::summary`]: a clear re-checks the word it
//! summarised and restores the bit above if a writer raced it.

use super::word::{pack, unpack, Prop, ALL_PROPS, PROPS};
use crate::sync::{AtomicU128, AtomicU64, Ordering::SeqCst};

/// Words per page (65536 units).
pub(crate) const PAGE_WORDS: usize = 1024;
/// log2 of [`PAGE_WORDS`].
pub(crate) const PAGE_SHIFT: u32 = 10;
/// Level-0 summary words per property.
const L0: usize = PAGE_WORDS / 64;
/// Summary words per property: level 0, then the single level-1 word.
const TREE: usize = L0 + 1;

#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) words: Box<[AtomicU128]>,
    /// Inline, not boxed: a fixed length lets every index go unchecked and saves a pointer.
    summary: [AtomicU64; PROPS * TREE],
}

impl Page {
    /// A page of `len` free words; the last word has `last_word_pad` bits permanently used.
    pub(crate) fn new(len: usize, last_word_pad: u64) -> Self {
        debug_assert!((1..=PAGE_WORDS).contains(&len));
        let words: Box<[AtomicU128]> = (0..len)
            .map(|i| AtomicU128::new(pack(if i + 1 == len { last_word_pad } else { 0 }, 0)))
            .collect();
        let page = Self {
            words,
            summary: std::array::from_fn(|_| AtomicU64::new(0)),
        };
        for (i, w) in page.words.iter().enumerate() {
            let used = unpack(w.load(SeqCst)).0;
            for p in ALL_PROPS {
                if p.holds(used) {
                    page.set(p, i);
                }
            }
        }
        page
    }

    #[inline]
    fn l0(&self, p: Prop, j: usize) -> &AtomicU64 {
        &self.summary[p as usize * TREE + j]
    }

    #[inline]
    fn l1(&self, p: Prop) -> &AtomicU64 {
        &self.summary[p as usize * TREE + L0]
    }

    /// Summary bit of word `i`.
    #[inline]
    pub(crate) fn get(&self, p: Prop, i: usize) -> bool {
        self.l0(p, i >> 6).load(SeqCst) & (1 << (i & 63)) != 0
    }

    /// The summary bits of word `i`, as a [`Prop::set_of`]-style set.
    #[inline(always)]
    pub(crate) fn props_of(&self, i: usize) -> u8 {
        ALL_PROPS
            .iter()
            .fold(0, |acc, &p| acc | ((self.get(p, i) as u8) << p as usize))
    }

    /// Sets the bit of word `i`; true if the level-1 word changed between zero and non-zero
    /// (the page as a whole gained or lost the property), so the directory needs a sync.
    #[inline]
    pub(crate) fn set(&self, p: Prop, i: usize) -> bool {
        let j = i >> 6;
        self.l0(p, j).fetch_or(1 << (i & 63), SeqCst) == 0 && self.settle(p, j)
    }

    /// Clears the bit of word `i`; returns as [`Page::set`].
    #[inline]
    pub(crate) fn clear(&self, p: Prop, i: usize) -> bool {
        let bit = 1u64 << (i & 63);
        let j = i >> 6;
        self.l0(p, j).fetch_and(!bit, SeqCst) & !bit == 0 && self.settle(p, j)
    }

    /// Makes level-1 bit `j` say "level-0 word `j` is non-zero", re-reading the word after each
    /// write until they agree (see [`super::summary`] for why that makes it exact once writers
    /// finish).
    fn settle(&self, p: Prop, j: usize) -> bool {
        let up = 1u64 << j;
        let mut flipped = false;
        loop {
            let want = self.l0(p, j).load(SeqCst) != 0;
            let before = if want {
                self.l1(p).fetch_or(up, SeqCst)
            } else {
                self.l1(p).fetch_and(!up, SeqCst)
            };
            let after = if want { before | up } else { before & !up };
            flipped |= (before == 0) != (after == 0);
            if (self.l0(p, j).load(SeqCst) != 0) == want {
                return flipped;
            }
        }
    }

    /// Whether no word has `p`.
    #[inline]
    pub(crate) fn is_empty(&self, p: Prop) -> bool {
        self.l1(p).load(SeqCst) == 0
    }

    /// First word `>= from` whose bit for `p` is set (a hint: the word is the truth).
    #[inline(always)]
    pub(crate) fn find_from(&self, p: Prop, from: usize) -> Option<usize> {
        let j = from >> 6;
        if j >= L0 {
            return None;
        }
        if from == 0 {
            // From the top: the level-1 word says where to look.
            let up = self.l1(p).load(SeqCst);
            if up == 0 {
                return None;
            }
            let k = up.trailing_zeros() as usize;
            let bits = self.l0(p, k).load(SeqCst);
            if bits != 0 {
                return Some((k << 6) | bits.trailing_zeros() as usize);
            }
        }
        let bits = self.l0(p, j).load(SeqCst) & (u64::MAX << (from & 63));
        if bits != 0 {
            return Some((j << 6) | bits.trailing_zeros() as usize);
        }
        let mut up = self.l1(p).load(SeqCst) & (u64::MAX << (j + 1));
        while up != 0 {
            let k = up.trailing_zeros() as usize;
            let bits = self.l0(p, k).load(SeqCst);
            if bits != 0 {
                return Some((k << 6) | bits.trailing_zeros() as usize);
            }
            up &= up - 1; // stale level-1 bit: skip it
        }
        None
    }

    /// Checks the summaries against the words (quiescent callers only).
    pub(crate) fn verify_summaries(&self, base_word: usize) -> Result<(), String> {
        for (i, w) in self.words.iter().enumerate() {
            let set = Prop::set_of(unpack(w.load(SeqCst)).0);
            for p in ALL_PROPS {
                if self.get(p, i) != (set & (1 << p as usize) != 0) {
                    return Err(format!("word {}: summary {p:?} is stale", base_word + i));
                }
            }
        }
        for p in ALL_PROPS {
            for j in 0..L0 {
                let child = self.l0(p, j).load(SeqCst) != 0;
                if child != (self.l1(p).load(SeqCst) & (1 << j) != 0) {
                    return Err(format!(
                        "page summary {p:?}: level-1 bit {j} disagrees with its word"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.words.len() * 16
    }
}
