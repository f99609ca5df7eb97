//! One page: up to [`PAGE_WORDS`] words and their summaries.
//!
//! A page's summary has two levels. Level 0 keeps, for each word, its set of properties (as
//! [`Prop::set_of`] gives it) in a nibble, sixteen words to a `u64`; level 1 keeps, per property,
//! one bit per level-0 entry ("some word of these sixteen has it"). Keeping a word's properties
//! side by side makes the common update, one word trading one property for another, a single
//! compare-and-swap, and reading them all one load; a search for one property masks its lane.
//!
//! The update protocol is the one described in [`super::summary`]: whoever flips a level-0
//! entry's lane between empty and non-empty re-derives the level-1 bit from it, re-reading until
//! the two agree.

use super::word::{pack, unpack, Prop, ALL_PROPS, PROPS};
use crate::sync::{AtomicU128, AtomicU64, Ordering::SeqCst};

/// Words per page (65536 units).
pub(crate) const PAGE_WORDS: usize = 1024;
/// log2 of [`PAGE_WORDS`].
pub(crate) const PAGE_SHIFT: u32 = 10;
/// Words per level-0 entry: four bits each (one per property, one spare).
const GROUP: usize = 16;
/// Level-0 entries.
const L0: usize = PAGE_WORDS / GROUP;
/// Every property bit of a level-0 entry.
const ALL_LANES: u64 = 0x7777_7777_7777_7777;

/// The bits of a level-0 entry that say "this word has `p`".
#[inline(always)]
const fn lane(p: Prop) -> u64 {
    0x1111_1111_1111_1111 << p as usize
}

#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) words: Box<[AtomicU128]>,
    /// Level 0: word `i`'s property set in bits `4 * (i % 16)..` of entry `i / 16`. Inline, not
    /// boxed: a fixed length lets every index go unchecked and saves a pointer.
    props: [AtomicU64; L0],
    /// Level 1, per property: bit `j` says entry `j` of level 0 has the property for some word.
    up: [AtomicU64; PROPS],
}

impl Page {
    /// A page of `len` free words; the last word has `last_word_pad` bits permanently used.
    pub(crate) fn new(len: usize, last_word_pad: u64) -> Self {
        debug_assert!((1..=PAGE_WORDS).contains(&len));
        let used = |i: usize| if i + 1 == len { last_word_pad } else { 0 };
        // The summaries of a fresh page, computed before anyone can see it.
        let mut entries = [0u64; L0];
        for i in 0..len {
            entries[i / GROUP] |= u64::from(Prop::set_of(used(i))) << (4 * (i % GROUP));
        }
        let up = ALL_PROPS.map(|p| {
            (0..L0).fold(0u64, |acc, j| {
                acc | (u64::from(entries[j] & lane(p) != 0) << j)
            })
        });
        Self {
            words: (0..len)
                .map(|i| AtomicU128::new(pack(used(i), 0)))
                .collect(),
            props: entries.map(AtomicU64::new),
            up: up.map(AtomicU64::new),
        }
    }

    /// The summarised property set of word `i`.
    #[inline(always)]
    pub(crate) fn props_of(&self, i: usize) -> u8 {
        ((self.props[i / GROUP].load(SeqCst) >> (4 * (i % GROUP))) & ALL as u64) as u8
    }

    /// Makes the properties in `changed` of word `i` what `holds` says (one compare-and-swap;
    /// the other properties and words are left as they are). Returns the properties whose
    /// level-1 word went between zero and non-zero: the page as a whole gained or lost them, so
    /// the directory needs a sync.
    ///
    /// Without `FLIPS` (a one-page map, which keeps no directory) it reports nothing, and the
    /// level-1 updates need not read what they replace (one locked instruction each, not a
    /// compare-and-swap loop).
    #[inline]
    pub(crate) fn write_props<const FLIPS: bool>(&self, i: usize, holds: u8, changed: u8) -> u8 {
        let j = i / GROUP;
        let shift = 4 * (i % GROUP);
        let mask = u64::from(changed) << shift;
        let want = u64::from(holds & changed) << shift;
        let entry = &self.props[j];
        let mut old = entry.load(SeqCst);
        let new = loop {
            let new = (old & !mask) | want;
            if new == old {
                return 0;
            }
            match entry.compare_exchange(old, new, SeqCst, SeqCst) {
                Ok(_) => break new,
                Err(actual) => old = actual,
            }
        };
        let mut flipped = 0;
        for p in ALL_PROPS {
            let l = lane(p);
            if (old & l == 0) != (new & l == 0) && self.settle::<FLIPS>(p, j) {
                flipped |= 1 << p as usize;
            }
        }
        flipped
    }

    /// Makes level-1 bit `j` of `p` say "entry `j` has `p` for some word", re-reading the entry
    /// after each write until they agree (see [`super::summary`] for why that makes it exact once
    /// writers finish). True if the level-1 word went between zero and non-zero.
    fn settle<const FLIPS: bool>(&self, p: Prop, j: usize) -> bool {
        let bit = 1u64 << j;
        let up = &self.up[p as usize];
        let has = || self.props[j].load(SeqCst) & lane(p) != 0;
        let mut flipped = false;
        loop {
            let want = has();
            if !FLIPS {
                if want {
                    up.fetch_or(bit, SeqCst);
                } else {
                    up.fetch_and(!bit, SeqCst);
                }
                if has() == want {
                    return false;
                }
                continue;
            }
            let before = if want {
                up.fetch_or(bit, SeqCst)
            } else {
                up.fetch_and(!bit, SeqCst)
            };
            let after = if want { before | bit } else { before & !bit };
            flipped |= (before == 0) != (after == 0);
            if has() == want {
                return flipped;
            }
        }
    }

    /// Whether no word has `p`.
    #[inline]
    pub(crate) fn is_empty(&self, p: Prop) -> bool {
        self.up[p as usize].load(SeqCst) == 0
    }

    /// Whether the summary gives `p` to all sixteen words of the first group that has `p` at all
    /// (the group [`Self::find_from`] looks in first, from word 0): two loads.
    #[inline(always)]
    pub(crate) fn first_group_all_have(&self, p: Prop) -> bool {
        let top = self.up[p as usize].load(SeqCst);
        top != 0 && self.props[top.trailing_zeros() as usize].load(SeqCst) & lane(p) == lane(p)
    }

    /// Whether the summary gives `p` to all sixteen words of word `i`'s level-0 group (a short
    /// last group never qualifies).
    #[inline]
    pub(crate) fn group_all_have(&self, p: Prop, i: usize) -> bool {
        self.props[i / GROUP].load(SeqCst) & lane(p) == lane(p)
    }

    /// The word in entry `j` whose `p` bit is the lowest of `bits` (the entry masked to `p`).
    #[inline(always)]
    fn word_at(j: usize, bits: u64) -> usize {
        j * GROUP + bits.trailing_zeros() as usize / 4
    }

    /// First word `>= from` whose bit for `p` is set (a hint: the word is the truth).
    #[inline(always)]
    pub(crate) fn find_from(&self, p: Prop, from: usize) -> Option<usize> {
        let j = from / GROUP;
        if j >= L0 {
            return None;
        }
        let l = lane(p);
        let up = &self.up[p as usize];
        if from == 0 {
            // From the top: the level-1 word says where to look.
            let top = up.load(SeqCst);
            if top == 0 {
                return None;
            }
            let k = top.trailing_zeros() as usize;
            let bits = self.props[k].load(SeqCst) & l;
            if bits != 0 {
                return Some(Self::word_at(k, bits));
            }
        }
        let bits = self.props[j].load(SeqCst) & l & (u64::MAX << (4 * (from % GROUP)));
        if bits != 0 {
            return Some(Self::word_at(j, bits));
        }
        let mut rest = up.load(SeqCst) & u64::MAX.checked_shl(j as u32 + 1).unwrap_or(0);
        while rest != 0 {
            let k = rest.trailing_zeros() as usize;
            let bits = self.props[k].load(SeqCst) & l;
            if bits != 0 {
                return Some(Self::word_at(k, bits));
            }
            rest &= rest - 1; // stale level-1 bit: skip it
        }
        None
    }

    /// Checks the summaries against the words (quiescent callers only). Each summary word is
    /// loaded once: loom models call this, and every atomic load is a branch for them.
    pub(crate) fn verify_summaries(&self, base_word: usize) -> Result<(), String> {
        let entries: [u64; L0] = std::array::from_fn(|j| self.props[j].load(SeqCst));
        let ups: [u64; PROPS] = std::array::from_fn(|p| self.up[p].load(SeqCst));
        let props_of = |i: usize| (entries[i / GROUP] >> (4 * (i % GROUP))) as u8 & ALL;
        for (i, w) in self.words.iter().enumerate() {
            let truth = Prop::set_of(unpack(w.load(SeqCst)).0);
            let summary = props_of(i);
            if summary != truth {
                return Err(format!(
                    "word {}: summary {summary:#05b} is stale (the word has {truth:#05b})",
                    base_word + i
                ));
            }
        }
        if let Some(i) = (self.words.len()..PAGE_WORDS).find(|&i| props_of(i) != 0) {
            return Err(format!(
                "page summary: properties set for word {}, beyond the page",
                base_word + i
            ));
        }
        for (j, &bits) in entries.iter().enumerate() {
            if bits & !ALL_LANES != 0 {
                return Err(format!("page summary entry {j}: spare bits set"));
            }
            for p in ALL_PROPS {
                if (bits & lane(p) != 0) != (ups[p as usize] & (1 << j) != 0) {
                    return Err(format!(
                        "page summary {p:?}: level-1 bit {j} disagrees with its entry"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Bytes held by a boxed page: the page itself and its words.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.words.len() * 16
    }
}

/// Every property, as a set.
const ALL: u8 = (1 << PROPS) - 1;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::space::word::FULL;

    #[test]
    fn props_round_trip_and_search_by_lane() {
        let pg = Page::new(PAGE_WORDS, 0);
        pg.verify_summaries(0).unwrap();
        assert_eq!(pg.find_from(Prop::Empty, 0), Some(0));
        assert_eq!(pg.find_from(Prop::Partial16, 0), None);
        // Word 37 becomes partly used: it trades Empty for Partial16 (and Broken16).
        let used = 1u64;
        pg.words[37].store(pack(used, 0), SeqCst);
        let set = Prop::set_of(used);
        assert_eq!(
            pg.write_props::<true>(37, set, set ^ pg.props_of(37)),
            0b110
        );
        assert_eq!(pg.props_of(37), set);
        assert_eq!(pg.find_from(Prop::Partial16, 0), Some(37));
        assert_eq!(pg.find_from(Prop::Partial16, 38), None);
        assert_eq!(pg.find_from(Prop::Empty, 37), Some(38));
        // The last word of the page, so the level-1 search reaches its top bit.
        pg.words[PAGE_WORDS - 1].store(pack(FULL, 0), SeqCst);
        pg.write_props::<true>(PAGE_WORDS - 1, 0, ALL);
        pg.words[PAGE_WORDS - 2].store(pack(used, 0), SeqCst);
        pg.write_props::<true>(PAGE_WORDS - 2, set, ALL);
        assert_eq!(pg.find_from(Prop::Broken16, 38), Some(PAGE_WORDS - 2));
        assert_eq!(pg.find_from(Prop::Empty, PAGE_WORDS - 2), None);
        pg.verify_summaries(0).unwrap();
        // Back to empty: the page loses Partial16 and Broken16 again.
        for i in [37, PAGE_WORDS - 2] {
            pg.words[i].store(pack(0, 0), SeqCst);
            pg.write_props::<true>(i, Prop::set_of(0), ALL);
        }
        assert!(pg.is_empty(Prop::Partial16));
        assert!(pg.is_empty(Prop::Broken16));
        assert!(!pg.is_empty(Prop::Empty));
    }

    #[test]
    fn verify_names_each_kind_of_stale_summary() {
        let fails_with = |pg: &Page, base: usize, text: &str| {
            let err = pg.verify_summaries(base).unwrap_err();
            assert!(err.contains(text), "{err:?} should say {text:?}");
        };
        // A word changed behind its summary's back, named by its index in the whole map.
        let pg = Page::new(PAGE_WORDS, 0);
        pg.words[3].store(pack(1, 0), SeqCst);
        fails_with(
            &pg,
            1024,
            "word 1027: summary 0b001 is stale (the word has 0b110)",
        );
        pg.words[3].store(pack(0, 0), SeqCst);
        pg.verify_summaries(1024).unwrap();
        // A property given to a word a short page does not have.
        let short = Page::new(4, 0);
        short.write_props::<true>(9, Prop::set_of(0), ALL);
        fails_with(&short, 0, "properties set for word 9, beyond the page");
        // The spare fourth bit of a word's nibble.
        let pg = Page::new(PAGE_WORDS, 0);
        pg.props[2].fetch_or(1 << 3, SeqCst);
        fails_with(&pg, 0, "page summary entry 2: spare bits set");
        // A level-1 bit that disagrees with its entry.
        let pg = Page::new(PAGE_WORDS, 0);
        pg.up[Prop::Empty as usize].fetch_and(!(1 << 5), SeqCst);
        fails_with(
            &pg,
            0,
            "page summary Empty: level-1 bit 5 disagrees with its entry",
        );
    }

    #[test]
    fn a_short_page_summarises_only_its_words() {
        let pg = Page::new(4, FULL << 8);
        pg.verify_summaries(0).unwrap();
        assert_eq!(pg.find_from(Prop::Empty, 0), Some(0));
        assert_eq!(pg.find_from(Prop::Empty, 3), None);
        assert_eq!(pg.find_from(Prop::Partial16, 0), None);
        assert_eq!(pg.find_from(Prop::Broken16, 0), Some(3));
    }
}
