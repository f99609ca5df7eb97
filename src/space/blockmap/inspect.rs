//! Reading the map whole: who holds a unit, counts, the allocation list, memory, and the
//! invariant check. These walk words and are meant for diagnostics and tests, not hot paths.

use super::search::{outside_mask, split_words};
use super::BlockMap;
use crate::space::page::{Page, PAGE_SHIFT, PAGE_WORDS};
use crate::space::summary::SummaryTree;
use crate::space::word::{unpack, Prop, ALL_PROPS, FULL, WORD_LOG2, WORD_UNITS};
use crate::space::{Run, Unit};
use crate::sync::{OnceLock, Ordering::SeqCst};
use bitvec::prelude::*;
use std::ops::Range;

/// What [`BlockMap::for_each_word`] reports.
pub(crate) enum Words {
    /// Word index and its used bits.
    One(usize, u64),
    /// First word index and count of words that are all free.
    Empty(usize, usize),
}

impl BlockMap {
    /// Used units in the whole map (a scan of the touched pages: for diagnostics).
    pub(crate) fn used_units(&self) -> u64 {
        self.used_in(0..self.units)
    }

    /// The allocation holding `unit`, if it is used.
    pub(crate) fn allocation_at(&self, unit: Unit) -> Option<Run> {
        let mut w = (unit.0 >> WORD_LOG2) as usize;
        let pos = (unit.0 & 63) as u32;
        let (used, cont) = self.word(w);
        if used & (1u64 << pos) == 0 {
            return None;
        }
        // Walk back to the start: the highest position <= pos whose continuation bit is clear.
        let below = !cont & (FULL >> (63 - pos));
        let start = if below != 0 {
            ((w as u64) << WORD_LOG2) + (63 - below.leading_zeros()) as u64
        } else {
            loop {
                if w == 0 {
                    return None; // corrupt: continuation from before the map
                }
                w -= 1;
                let (_, c) = self.word(w);
                if c & 1 == 0 {
                    break (w as u64) << WORD_LOG2;
                }
            }
        };
        let len = self.run_length_from(start);
        Some(Run {
            start: Unit(start),
            log2: len.trailing_zeros() as u8,
        })
    }

    /// Units of the allocation that starts at `start` (start, then continuation bits).
    fn run_length_from(&self, start: u64) -> u64 {
        let mut w = (start >> WORD_LOG2) as usize;
        let pos = (start & 63) as u32;
        let (_, cont) = self.word(w);
        let ones = if pos == 63 {
            0
        } else {
            (!(cont >> (pos + 1))).trailing_zeros().min(63 - pos)
        };
        let mut len = 1 + ones as u64;
        if pos + ones == 63 {
            loop {
                w += 1;
                if w >= self.words || self.word(w).1 != FULL {
                    break;
                }
                len += WORD_UNITS as u64;
            }
        }
        len
    }

    /// Whether every unit of `range` is free.
    pub(crate) fn is_free(&self, range: Range<u64>) -> bool {
        self.used_in(range) == 0
    }

    /// The lowest used unit in `range`, skipping pages never touched.
    pub(crate) fn first_used_in(&self, range: Range<u64>) -> Option<Unit> {
        let (head, inner, tail) = split_words(&range);
        let hit = |w: usize, mask: u64| {
            let used = self.word(w).0 & !mask;
            (used != 0).then(|| Unit(((w as u64) << WORD_LOG2) + used.trailing_zeros() as u64))
        };
        if let Some(u) = head.and_then(|w| hit(w, outside_mask(w, &range))) {
            return Some(u);
        }
        let mut w = inner.start;
        while w < inner.end {
            let page_end = (((w >> PAGE_SHIFT) + 1) << PAGE_SHIFT).min(inner.end);
            if self.page_if(w >> PAGE_SHIFT).is_some() {
                if let Some(u) = (w..page_end).find_map(|x| hit(x, self.pad_of(x))) {
                    return Some(u);
                }
            }
            w = page_end;
        }
        tail.and_then(|w| hit(w, outside_mask(w, &range)))
    }

    /// Used units in `range`, skipping pages never touched.
    pub(crate) fn used_in(&self, range: Range<u64>) -> u64 {
        let (head, inner, tail) = split_words(&range);
        let mut c = 0u64;
        for w in head.into_iter().chain(tail) {
            c += (self.word(w).0 & !outside_mask(w, &range)).count_ones() as u64;
        }
        let mut w = inner.start;
        while w < inner.end {
            let p = w >> PAGE_SHIFT;
            let page_end = ((p + 1) << PAGE_SHIFT).min(inner.end);
            if let Some(pg) = self.page_if(p) {
                for x in w..page_end {
                    c += (unpack(pg.words[x & (PAGE_WORDS - 1)].load(SeqCst)).0 & !self.pad_of(x))
                        .count_ones() as u64;
                }
            }
            w = page_end;
        }
        c
    }

    /// Visits every word in address order: `Words::One(w, used)` for each word of a touched page,
    /// `Words::Empty(first, count)` for all the words of a page never touched.
    pub(crate) fn for_each_word(&self, mut f: impl FnMut(Words)) {
        for p in 0..self.npages {
            let base = p << PAGE_SHIFT;
            match self.page_if(p) {
                Some(pg) => {
                    for (i, cell) in pg.words.iter().enumerate() {
                        f(Words::One(base + i, unpack(cell.load(SeqCst)).0));
                    }
                }
                None => f(Words::Empty(base, self.page_len())),
            }
        }
    }

    /// Heap bytes held: pages, directory and page table. Page 0 lives inside the map, so only
    /// its words count here; the map's own size is the caller's to add.
    pub(crate) fn heap_bytes(&self) -> usize {
        let table = self.more.len() * std::mem::size_of::<OnceLock<Box<Page>>>();
        let dir: usize = self.dir.iter().map(SummaryTree::heap_bytes).sum();
        let later: usize = (1..self.npages)
            .filter_map(|p| self.page_if(p))
            .map(Page::heap_bytes)
            .sum();
        let page0 = self.page0.heap_bytes() - std::mem::size_of::<Page>();
        table + dir + page0 + later
    }

    /// Every allocation, in address order (quiescent callers only).
    pub(crate) fn allocations(&self) -> Vec<Run> {
        let mut out = Vec::new();
        let mut w = 0usize;
        while w < self.words {
            let (used, cont) = self.word(w);
            let used = used & !self.pad_of(w);
            let starts = used & !cont;
            let bits = starts.view_bits::<Lsb0>();
            for pos in bits.iter_ones() {
                let start = ((w as u64) << WORD_LOG2) + pos as u64;
                let len = self.run_length_from(start);
                out.push(Run {
                    start: Unit(start),
                    log2: len.trailing_zeros() as u8,
                });
            }
            w += 1;
        }
        out
    }

    /// Checks the map's invariants (quiescent callers only): continuation bits only on used
    /// units, every allocation an aligned power-of-two run, summaries exact, counters exact.
    pub(crate) fn verify(&self) -> Result<(), String> {
        let mut expect_cont_into_next = false;
        for p in 0..self.npages {
            // An untouched page reads as free, so no allocation runs into it: the word before
            // it expected no continuation (`next_continues` read this page's first word).
            let Some(pg) = self.page_if(p) else {
                if !self.dir[Prop::Empty as usize].get(p) {
                    return Err(format!(
                        "untouched page {p} not marked empty in the directory"
                    ));
                }
                for prop in [Prop::Partial16, Prop::Broken16] {
                    if self.dir[prop as usize].get(p) {
                        return Err(format!(
                            "untouched page {p} marked {prop:?} in the directory"
                        ));
                    }
                }
                continue;
            };
            for (i, cell) in pg.words.iter().enumerate() {
                let w = (p << PAGE_SHIFT) + i;
                let (used, cont) = unpack(cell.load(SeqCst));
                let pad = self.pad_of(w);
                if used & pad != pad || cont & pad != 0 {
                    return Err(format!(
                        "padding bits of word {w} changed: used {used:#x} cont {cont:#x}"
                    ));
                }
                if cont & !used != 0 {
                    return Err(format!(
                        "word {w}: continuation bits on free units: {:#x}",
                        cont & !used
                    ));
                }
                let continued = cont & 1 != 0;
                if continued != expect_cont_into_next {
                    return Err(format!("word {w}: allocation boundary at unit 0 broken"));
                }
                if continued && (used != FULL || cont != FULL) {
                    return Err(format!(
                        "word {w}: continued from the previous word but not wholly"
                    ));
                }
                let real = used & !pad;
                let next_continues = w + 1 < self.words && self.word(w + 1).1 & 1 != 0;
                expect_cont_into_next = used == FULL && cont | 1 == FULL && next_continues;
                // Each allocation that starts here: an aligned power-of-two run.
                for pos in (real & !cont).view_bits::<Lsb0>().iter_ones() {
                    let start = ((w as u64) << WORD_LOG2) + pos as u64;
                    let len = self.run_length_from(start);
                    if !len.is_power_of_two() || start % len != 0 {
                        return Err(format!("word {w}: allocation at unit {start} of {len} units is not an aligned power of two"));
                    }
                }
            }
            pg.verify_summaries(p << PAGE_SHIFT)?;
            for prop in ALL_PROPS.into_iter().filter(|_| self.npages > 1) {
                if self.dir[prop as usize].get(p) == pg.is_empty(prop) {
                    return Err(format!("page {p}: directory bit {prop:?} is stale"));
                }
            }
        }
        for t in &self.dir {
            t.verify_structure()?;
        }
        Ok(())
    }
}
