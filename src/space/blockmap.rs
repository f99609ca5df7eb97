//! `BlockMap`: a bitmap over `2^k` units that claims and releases aligned runs of `2^n` units.
//!
//! Layout: words of 64 units (see [`super::word`]) grouped in pages of [`PAGE_WORDS`] words.
//! A page is allocated the first time something in it is claimed, so a huge, mostly empty map (an
//! IPv6 /44 tracked per /80 is 2^36 units) costs only its directory. Each page keeps one summary
//! tree per [`Prop`]; the directory keeps one bit per page and property.
//!
//! Concurrency: runs of up to 64 units are claimed and released with one compare-and-swap on their
//! word, with no lock. Runs longer than a word, and releases of whole words (which must look at
//! the next word to see where the allocation ends), take the map's short `big` lock; they are rare.
//! Multi-word claims write their words last-to-first so no half-written claim ever looks like a
//! complete smaller allocation.

use super::page::{Page, PAGE_SHIFT, PAGE_WORDS};
use super::summary::SummaryTree;
use super::word::{
    best_fit, first_free_run_from, free_runs, has_broken16, most_used_broken16, pack, run_mask,
    unpack, Prop, ALL_PROPS, FULL, PARTIAL, PROPS, WORD_LOG2, WORD_UNITS,
};
use super::{Run, Unit};
use crate::sync::{AtomicU128, AtomicU64, Mutex, OnceLock, Ordering::SeqCst};
use bitvec::prelude::*;
use std::ops::Range;

/// Where an automatic claim looks first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Tiers: broken 16-blocks (single units only), then partly used words (best fit inside the
    /// word), then empty words; lowest address first inside a tier.
    Pack,
    /// The first free aligned run at or after unit `from` (domain order, wrapping to the start).
    FirstFrom(u64),
}

/// How a search finds candidate words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// Through the summary trees: sub-linear; may miss a word while a summary writer is active.
    Summaries,
    /// Every word of every touched page: linear; the fallback that cannot miss.
    Every,
}

/// One search attempt: how it finds candidates, and whether it saw a word with a free run that
/// the current tier declined (the word moved between Pack's tiers while the search ran: e.g.
/// empty when the "partly used" tier looked, partly used when the "empty" tier did).
struct Search {
    scan: Scan,
    mismatch: std::cell::Cell<bool>,
}

/// What a failed search checks before it believes itself. Only releases create free space, and
/// only summary updates can hide it; a search that saw neither happen while it ran saw the map as
/// it was at one instant, as far as free space goes.
#[derive(Debug)]
struct Activity {
    /// Releases completed their CAS (bumped right after it).
    releases: AtomicU64,
    /// Summary updates begun.
    started: AtomicU64,
    /// Summary updates ended.
    finished: AtomicU64,
}

/// What [`BlockMap::for_each_word`] reports.
pub(crate) enum Words {
    /// Word index and its used bits.
    One(usize, u64),
    /// First word index and count of words that are all free.
    Empty(usize, usize),
}

/// Why a release was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReleaseRefusal {
    /// Some unit of the run is free.
    Free,
    /// The units are used, but not by exactly one allocation of this run.
    NotOneAllocation,
}

/// The bitmap. `Send + Sync`; every method takes `&self`.
#[derive(Debug)]
pub(crate) struct BlockMap {
    units: u64,
    words: usize,
    /// Bits of the last word beyond the map (maps of fewer than 64 units): permanently used.
    pad: u64,
    /// Page 0 lives inline: it is the only page of a /16 or an IPv6 /64, and one pointer fewer
    /// on the hot path is measurable.
    page0: Page,
    /// Pages 1.., created on first use.
    more: Box<[OnceLock<Box<Page>>]>,
    npages: usize,
    dir: [SummaryTree; PROPS],
    activity: Activity,
    big: Mutex<()>,
}

impl BlockMap {
    /// A map of `2^log2_units` free units.
    pub(crate) fn new(log2_units: u32) -> Self {
        assert!(log2_units <= 40, "block maps are limited to 2^40 units");
        let units = 1u64 << log2_units;
        let words = units.div_ceil(WORD_UNITS as u64) as usize;
        let pad = if units < WORD_UNITS as u64 {
            FULL << units
        } else {
            0
        };
        let npages = words.div_ceil(PAGE_WORDS);
        let more: Box<[OnceLock<Box<Page>>]> = (1..npages).map(|_| OnceLock::new()).collect();
        let page0 = Page::new(words.min(PAGE_WORDS), if npages == 1 { pad } else { 0 });
        let dir = ALL_PROPS.map(|p| {
            if p == Prop::Empty && pad == 0 {
                SummaryTree::new_full(npages)
            } else {
                SummaryTree::new(npages)
            }
        });
        let map = Self {
            units,
            words,
            pad,
            page0,
            more,
            npages,
            dir,
            activity: Activity {
                releases: AtomicU64::new(0),
                started: AtomicU64::new(0),
                finished: AtomicU64::new(0),
            },
            big: Mutex::new(()),
        };
        // Page 0 exists from the start (with the padded word of a tiny map summarised), so its
        // directory bits must say so.
        for p in ALL_PROPS {
            map.sync_dir(p, 0, &map.page0);
        }
        map
    }

    fn page_len(&self, p: usize) -> usize {
        (self.words - p * PAGE_WORDS).min(PAGE_WORDS)
    }

    #[inline]
    fn page(&self, p: usize) -> &Page {
        if p == 0 {
            return &self.page0;
        }
        self.more[p - 1].get_or_init(|| {
            let len = self.page_len(p);
            Box::new(Page::new(
                len,
                if p + 1 == self.npages { self.pad } else { 0 },
            ))
        })
    }

    #[inline]
    fn page_if(&self, p: usize) -> Option<&Page> {
        if p == 0 {
            return Some(&self.page0);
        }
        self.more[p - 1].get().map(|b| &**b)
    }

    /// Current (used, continuation) bits of word `w`.
    pub(crate) fn word(&self, w: usize) -> (u64, u64) {
        match self.page_if(w >> PAGE_SHIFT) {
            Some(pg) => unpack(pg.words[w & (PAGE_WORDS - 1)].load(SeqCst)),
            None => (0, 0),
        }
    }

    /// Number of words.
    pub(crate) fn word_count(&self) -> usize {
        self.words
    }

    /// Bits of word `w` that lie outside the map.
    pub(crate) fn pad_of(&self, w: usize) -> u64 {
        if w + 1 == self.words {
            self.pad
        } else {
            0
        }
    }

    /// Makes directory bit (`prop`, page `p`) equal "the page's tree is non-empty".
    fn sync_dir(&self, prop: Prop, p: usize, pg: &Page) {
        if self.npages > 1 {
            sync_bit(&self.dir[prop as usize], p, || !pg.is_empty(prop));
        }
    }

    /// Whether no word of the map has `prop` (per the summaries). A one-page map asks its page
    /// directly and keeps no directory: every flip of that page would otherwise cost a sync.
    #[inline]
    fn none_has(&self, prop: Prop) -> bool {
        if self.npages == 1 {
            self.page0.is_empty(prop)
        } else {
            self.dir[prop as usize].is_empty()
        }
    }

    /// Writes summary bit `prop` of word `i` of page `p`; syncs the directory if that changed
    /// whether the page has the property anywhere.
    #[inline]
    fn write_summary(&self, p: usize, pg: &Page, prop: Prop, i: usize, holds: bool) {
        if pg.get(prop, i) == holds {
            return;
        }
        let flipped = if holds {
            pg.set(prop, i)
        } else {
            pg.clear(prop, i)
        };
        if flipped {
            self.sync_dir(prop, p, pg);
        }
    }

    /// Repairs the summaries after word `w` was changed to `new` used bits.
    ///
    /// Summary bits are written from `new` (our own CAS result), then the word is read once: if it
    /// still holds `new`, every bit we wrote is true of it. If another thread changed it meanwhile,
    /// we rewrite every property from what we read, until a read confirms. Whoever changes a word
    /// last confirms last, so once writers finish every summary bit is exact.
    ///
    /// The comparison is with the summary bits as stored, not with the word's old value: another
    /// thread may have changed the word and not yet written its summary, and skipping because
    /// "old and new look alike" would then leave this completed change invisible (loom found that
    /// interleaving: a release returned and its own block could not be found).
    #[inline(always)]
    fn after_change(&self, pg: &Page, w: usize, new: u64) {
        let i = w & (PAGE_WORDS - 1);
        let stale = Prop::set_of(new) ^ pg.props_of(i);
        if stale != 0 {
            self.resummarise(pg, w, new, stale);
        }
    }

    /// The body of [`Self::after_change`] when some property changed (kept out of line: most
    /// claims leave a word's properties as they were).
    #[inline(never)]
    fn resummarise(&self, pg: &Page, w: usize, new: u64, mut changed: u8) {
        self.activity.started.fetch_add(1, SeqCst);
        let p = w >> PAGE_SHIFT;
        let i = w & (PAGE_WORDS - 1);
        let mut cur = new;
        while changed != 0 {
            let holds = Prop::set_of(cur);
            for prop in ALL_PROPS {
                if changed & (1 << prop as usize) != 0 {
                    self.write_summary(p, pg, prop, i, holds & (1 << prop as usize) != 0);
                }
            }
            let now = unpack(pg.words[i].load(SeqCst)).0;
            if now == cur {
                break;
            }
            cur = now;
            changed = (1 << PROPS) - 1;
        }
        self.activity.finished.fetch_add(1, SeqCst);
    }

    /// Used units in the whole map (a scan of the touched pages: for diagnostics).
    pub(crate) fn used_units(&self) -> u64 {
        self.used_in(0..self.units)
    }

    /// Whether at least `k` units are free inside `domain`. Visits only words the summaries say
    /// have a free unit, and stops at `k`: O(k) words at most, whatever the map's size. This is how
    /// a failed request tells "fragmented" from "full" without a shared counter on the hot path.
    pub(crate) fn free_at_least(&self, domain: &[Range<u64>], k: u64) -> bool {
        if let [whole] = domain {
            if whole.start == 0 && whole.end == self.units && self.pad == 0 {
                return self.free_at_least_whole(k);
            }
        }
        let mut free = 0u64;
        for range in domain {
            let (head, inner, tail) = split_words(range);
            for w in head.into_iter().chain(tail) {
                free += (!(self.word(w).0 | outside_mask(w, range))).count_ones() as u64;
            }
            let mut w = inner.start;
            while free < k && w < inner.end {
                let Some(x) = self.find_word_in(
                    &[Prop::Empty, Prop::Partial16, Prop::Broken16],
                    w,
                    Scan::Summaries,
                ) else {
                    break;
                };
                if x >= inner.end {
                    break;
                }
                free += (!(self.word(x).0 | self.pad_of(x))).count_ones() as u64;
                w = x + 1;
            }
            if free >= k {
                return true;
            }
        }
        false
    }

    /// [`Self::free_at_least`] over the whole map: an empty word has 64 free units and a word with
    /// a free 16-block at least 16, so the summaries often answer alone.
    fn free_at_least_whole(&self, k: u64) -> bool {
        if (k <= 64 && !self.none_has(Prop::Empty)) || (k <= 16 && !self.none_has(Prop::Partial16))
        {
            return true;
        }
        // Count each word with a free unit once, tree by tree (order does not matter for a
        // count): broken words, then words with a free 16-block that are not broken, then empty.
        let mut free = 0u64;
        for prop in [Prop::Broken16, Prop::Partial16, Prop::Empty] {
            let mut w = 0;
            while let Some(x) = self.find_word(prop, w, Scan::Summaries) {
                let used = self.word(x).0;
                if prop == Prop::Broken16 || !has_broken16(used) {
                    free += (!used).count_ones() as u64;
                    if free >= k {
                        return true;
                    }
                }
                w = x + 1;
            }
        }
        false
    }

    /// The lowest word `>= from` that any of `props` marks.
    #[inline(always)]
    fn find_word_in(&self, props: &[Prop], from: usize, scan: Scan) -> Option<usize> {
        match props {
            [p] => self.find_word(*p, from, scan),
            _ => props
                .iter()
                .filter_map(|&p| self.find_word(p, from, scan))
                .min(),
        }
    }

    /// Whether any word might hold a free aligned run of `2^n`: a handful of directory loads that
    /// let a request doomed to fail skip the search (the summaries over-approximate, never under).
    #[inline(always)]
    fn may_fit(&self, n: u32) -> bool {
        let any = |p: Prop| !self.none_has(p);
        any(Prop::Empty)
            || (n < WORD_LOG2 && (any(Prop::Partial16) || (n < 4 && any(Prop::Broken16))))
    }

    /// First word `>= from` whose summary says it has `prop` (a hint: check the word).
    #[inline(always)]
    fn find_word(&self, prop: Prop, from: usize, scan: Scan) -> Option<usize> {
        if scan == Scan::Every {
            return self.next_touched_word(prop, from);
        }
        if self.npages == 1 {
            return self.page0.find_from(prop, from);
        }
        if self.dir[prop as usize].is_empty() {
            return None; // no page has it: one load answers a failing search
        }
        self.find_word_in_pages(prop, from)
    }

    /// [`Scan::Every`]: every word of a touched page is a candidate, as are the words of untouched
    /// pages when looking for empty ones (untouched pages hold nothing else).
    fn next_touched_word(&self, prop: Prop, from: usize) -> Option<usize> {
        let mut w = from;
        while w < self.words {
            let p = w >> PAGE_SHIFT;
            if prop == Prop::Empty || self.page_if(p).is_some() {
                return Some(w);
            }
            w = (p + 1) << PAGE_SHIFT;
        }
        None
    }

    fn find_word_in_pages(&self, prop: Prop, from: usize) -> Option<usize> {
        let mut p = from >> PAGE_SHIFT;
        let mut off = from & (PAGE_WORDS - 1);
        loop {
            if p >= self.npages {
                return None;
            }
            match self.page_if(p) {
                Some(pg) => {
                    if let Some(i) = pg.find_from(prop, off) {
                        return Some((p << PAGE_SHIFT) + i);
                    }
                }
                None => {
                    if prop == Prop::Empty && off < self.page_len(p) {
                        return Some((p << PAGE_SHIFT) + off);
                    }
                }
            }
            if p + 1 == self.npages {
                return None;
            }
            p = self.dir[prop as usize].find_from(p + 1)?;
            off = 0;
        }
    }

    /// Claims a run of `2^n` (n <= 6) in word `w`: `choose` picks a position from the word's used
    /// bits with `view_mask` (units outside the search domain) also marked used.
    #[inline(always)]
    fn claim_in_word(
        &self,
        w: usize,
        n: u32,
        view_mask: u64,
        choose: impl Fn(u64) -> Option<u32>,
        search: Option<&Search>,
    ) -> Option<Unit> {
        let pg = self.page(w >> PAGE_SHIFT);
        let cell = &pg.words[w & (PAGE_WORDS - 1)];
        let mut cur = cell.load(SeqCst);
        loop {
            let (used, cont) = unpack(cur);
            let Some(pos) = choose(used | view_mask) else {
                if let Some(s) = search {
                    if free_runs(used | view_mask, n) != 0 {
                        s.mismatch.set(true);
                    }
                }
                return None;
            };
            let m = run_mask(pos, n);
            debug_assert_eq!(used & m, 0);
            let new = pack(used | m, cont | (m & !(1u64 << pos)));
            match cell.compare_exchange(cur, new, SeqCst, SeqCst) {
                Ok(_) => {
                    self.after_change(pg, w, used | m);
                    return Some(Unit((w as u64) << WORD_LOG2 | pos as u64));
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Claims exactly `run`. Returns false (changing nothing) if any unit of it is used.
    pub(crate) fn claim_at(&self, run: Run) -> bool {
        let n = run.log2 as u32;
        let w = (run.start.0 >> WORD_LOG2) as usize;
        if n <= WORD_LOG2 {
            let pos = (run.start.0 & 63) as u32;
            let m = run_mask(pos, n);
            return self
                .claim_in_word(w, n, 0, |used| (used & m == 0).then_some(pos), None)
                .is_some();
        }
        let _g = self.big.lock();
        self.claim_words(w, 1 << (n - WORD_LOG2))
    }

    /// Claims `count` whole words from `w` (big lock held), last word first.
    fn claim_words(&self, w: usize, count: usize) -> bool {
        for k in (0..count).rev() {
            let x = w + k;
            let pg = self.page(x >> PAGE_SHIFT);
            let cont = if k == 0 { FULL & !1 } else { FULL };
            if pg.words[x & (PAGE_WORDS - 1)]
                .compare_exchange(0, pack(FULL, cont), SeqCst, SeqCst)
                .is_err()
            {
                for j in k + 1..count {
                    let y = w + j;
                    self.page(y >> PAGE_SHIFT).words[y & (PAGE_WORDS - 1)].store_zero();
                }
                return false;
            }
        }
        for k in 0..count {
            self.after_change(self.page((w + k) >> PAGE_SHIFT), w + k, FULL);
        }
        true
    }

    /// Automatically claims a run of `2^n` inside the unit ranges of `domain` (sorted, disjoint),
    /// following `strategy`. Returns the first unit of the run.
    ///
    /// A failure is reported only when it is believable. A search walks words one after another
    /// rather than seeing one instant, so under churn it can miss a block freed behind it while
    /// another thread takes the one ahead; and the summaries are hints that a thread mid-way
    /// through a stale update can briefly hide a free word behind. So a failed search is believed
    /// only if no release completed, no summary update was in progress and no word moved between
    /// Pack's tiers while it ran; otherwise
    /// it searches again, which it only has to because another thread made progress: lock-free.
    /// If a summary writer seems stalled (nothing else moves, but one is still in flight), the
    /// search stops trusting the summaries and visits every touched word instead.
    pub(crate) fn claim_auto(
        &self,
        n: u32,
        strategy: Strategy,
        domain: &[Range<u64>],
    ) -> Option<Unit> {
        let act = &self.activity;
        let mut stalled_rounds = 0;
        loop {
            let releases = act.releases.load(SeqCst);
            let started = act.started.load(SeqCst);
            let quiet_before = act.finished.load(SeqCst) == started;
            let scan = if stalled_rounds < 2 {
                Scan::Summaries
            } else {
                Scan::Every
            };
            let search = Search {
                scan,
                mismatch: std::cell::Cell::new(false),
            };
            if scan == Scan::Every || self.may_fit(n) {
                if let Some(u) = self.claim_auto_in(n, strategy, domain, &search) {
                    return Some(u);
                }
            }
            let progress =
                act.releases.load(SeqCst) != releases || act.started.load(SeqCst) != started;
            if !progress && !search.mismatch.get() && (quiet_before || scan == Scan::Every) {
                return None;
            }
            // A mismatch with nothing else moving means a writer is stuck between its CAS and
            // its summary update: after two such rounds stop trusting the summaries.
            stalled_rounds = if progress { 0 } else { stalled_rounds + 1 };
            crate::sync::spin_wait();
        }
    }

    #[inline(always)]
    fn claim_auto_in(
        &self,
        n: u32,
        strategy: Strategy,
        domain: &[Range<u64>],
        search: &Search,
    ) -> Option<Unit> {
        match strategy {
            Strategy::Pack if n <= WORD_LOG2 => self.claim_packed(n, domain, search),
            // Runs longer than a word: the lowest free aligned block keeps the rest together.
            Strategy::Pack => self.claim_first_from(n, domain, 0, search),
            Strategy::FirstFrom(r) => self.claim_first_from(n, domain, r, search),
        }
    }

    /// Pack, for runs of up to 64 units: tier by tier, range by range, lowest word first.
    #[inline(always)]
    fn claim_packed(&self, n: u32, domain: &[Range<u64>], search: &Search) -> Option<Unit> {
        let tiers: &[Tier] = match (n, search.scan) {
            // The exhaustive fallback takes any free run, lowest word first: no tiers, so a word
            // cannot slip between them and the fallback always ends.
            (_, Scan::Every) => &[Tier::Any],
            (0, _) => &[Tier::Broken16, Tier::Partial, Tier::Empty],
            (WORD_LOG2, _) => &[Tier::Empty],
            _ => &[Tier::Partial, Tier::Empty],
        };
        if let [whole] = domain {
            if whole.start == 0 && whole.end == self.units && self.pad == 0 {
                return self.claim_packed_whole(n, tiers, search);
            }
        }
        for &t in tiers {
            for r in domain {
                if let Some(u) =
                    self.scan_small(n, r.clone(), t.props(n), |v| t.choose(v, n), search)
                {
                    return Some(u);
                }
            }
        }
        None
    }

    /// [`Self::claim_packed`] when the domain is the whole map (no reservations): no range
    /// boundaries, no masks, candidate words straight from the summaries.
    #[inline(always)]
    fn claim_packed_whole(&self, n: u32, tiers: &[Tier], search: &Search) -> Option<Unit> {
        for &t in tiers {
            let mut w = 0;
            while let Some(x) = self.find_word_in(t.props(n), w, search.scan) {
                if let Some(u) = self.claim_in_word(x, n, 0, |v| t.choose(v, n), Some(search)) {
                    return Some(u);
                }
                w = x + 1;
            }
        }
        None
    }

    /// The first free aligned run at or after the domain's point `r`, wrapping around.
    #[inline(never)]
    fn claim_first_from(
        &self,
        n: u32,
        domain: &[Range<u64>],
        r: u64,
        search: &Search,
    ) -> Option<Unit> {
        if domain.iter().all(Range::is_empty) {
            return None;
        }
        let (k, from) = start_point(domain, r, n);
        let first = &domain[k];
        let order = std::iter::once(from..first.end)
            .chain(domain[k + 1..].iter().cloned())
            .chain(domain[..k].iter().cloned())
            .chain(std::iter::once(first.start..from));
        if n > WORD_LOG2 {
            let _g = self.big.lock();
            return order
                .into_iter()
                .find_map(|range| self.scan_big(n, range, search.scan));
        }
        // Words with a free aligned run: empty ones, and partly used ones (for runs of 16 or more
        // only those with a free 16-block).
        let props: &[Prop] = if n >= 4 {
            &[Prop::Empty, Prop::Partial16]
        } else {
            &[Prop::Empty, Prop::Partial16, Prop::Broken16]
        };
        let choose = |v: u64| first_free_run_from(v, n, 0);
        order
            .into_iter()
            .find_map(|range| self.scan_small(n, range, props, choose, search))
    }

    /// Lowest-address search for a run of `2^n` in `range`: candidate words come from the
    /// summary tree of `prop` (partial boundary words are checked directly, masked).
    #[inline]
    fn scan_small(
        &self,
        n: u32,
        range: Range<u64>,
        props: &[Prop],
        choose: impl Fn(u64) -> Option<u32> + Copy,
        search: &Search,
    ) -> Option<Unit> {
        let (head, inner, tail) = split_words(&range);
        if let Some(h) = head {
            if let Some(u) = self.claim_in_word(h, n, outside_mask(h, &range), choose, Some(search))
            {
                return Some(u);
            }
        }
        let mut w = inner.start;
        while w < inner.end {
            match self.find_word_in(props, w, search.scan) {
                Some(x) if x < inner.end => {
                    if let Some(u) = self.claim_in_word(x, n, self.pad_of(x), choose, Some(search))
                    {
                        return Some(u);
                    }
                    w = x + 1;
                }
                _ => break,
            }
        }
        let t = tail?;
        self.claim_in_word(t, n, outside_mask(t, &range), choose, Some(search))
    }

    /// Lowest aligned group of empty words for a run of `2^n` (n > 6) inside `range` (big lock
    /// held by the caller).
    fn scan_big(&self, n: u32, range: Range<u64>, scan: Scan) -> Option<Unit> {
        let size = 1u64 << n;
        let group = 1usize << (n - WORD_LOG2);
        let mut s = range.start.next_multiple_of(size);
        while s + size <= range.end {
            let w = (s >> WORD_LOG2) as usize;
            let x = self.find_word(Prop::Empty, w, scan)?;
            let g = x & !(group - 1);
            if g != w {
                // The next empty word starts a later group: jump there.
                s = ((g as u64) << WORD_LOG2)
                    .max(s + size)
                    .next_multiple_of(size);
                continue;
            }
            match (0..group).find(|&j| self.word(w + j).0 != 0) {
                None => {
                    if self.claim_words(w, group) {
                        return Some(Unit(s));
                    }
                    s += size;
                }
                Some(j) => s = (((w + j + 1) as u64) << WORD_LOG2).next_multiple_of(size),
            }
        }
        None
    }

    /// Releases exactly `run` if it is one allocation.
    pub(crate) fn release(&self, run: Run) -> Result<(), ReleaseRefusal> {
        let n = run.log2 as u32;
        let w = (run.start.0 >> WORD_LOG2) as usize;
        if n < WORD_LOG2 {
            let pos = (run.start.0 & 63) as u32;
            let m = run_mask(pos, n);
            let pg = self.page_if(w >> PAGE_SHIFT).ok_or(ReleaseRefusal::Free)?;
            let cell = &pg.words[w & (PAGE_WORDS - 1)];
            let mut cur = cell.load(SeqCst);
            loop {
                let (used, cont) = unpack(cur);
                if used & m != m {
                    return Err(ReleaseRefusal::Free);
                }
                let end = pos + (1 << n);
                // Exactly one allocation: starts at pos, continues to the end, stops there. An
                // allocation ending inside a word never continues into the next one.
                let body = m & !(1u64 << pos);
                let stops = end == WORD_UNITS || cont & (1u64 << end) == 0;
                if cont & (1u64 << pos) != 0 || cont & body != body || !stops {
                    return Err(ReleaseRefusal::NotOneAllocation);
                }
                match cell.compare_exchange(cur, pack(used & !m, cont & !m), SeqCst, SeqCst) {
                    Ok(_) => {
                        self.activity.releases.fetch_add(1, SeqCst);
                        self.after_change(pg, w, used & !m);
                        return Ok(());
                    }
                    Err(actual) => cur = actual,
                }
            }
        }
        let _g = self.big.lock();
        let count = 1usize << (n - WORD_LOG2);
        for k in 0..count {
            let (used, cont) = self.word(w + k);
            if used != FULL {
                return Err(ReleaseRefusal::Free);
            }
            let want = if k == 0 { FULL & !1 } else { FULL };
            if cont != want {
                return Err(ReleaseRefusal::NotOneAllocation);
            }
        }
        if w + count < self.words && self.word(w + count).1 & 1 != 0 {
            return Err(ReleaseRefusal::NotOneAllocation);
        }
        // Last word first: the remaining prefix always reads as a complete allocation.
        for k in (0..count).rev() {
            let x = w + k;
            self.page(x >> PAGE_SHIFT).words[x & (PAGE_WORDS - 1)].store_zero();
            self.activity.releases.fetch_add(1, SeqCst);
            self.after_change(self.page(x >> PAGE_SHIFT), x, 0);
        }
        Ok(())
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

    /// Used units in `range`.
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
                None => f(Words::Empty(base, self.page_len(p))),
            }
        }
    }

    /// Heap bytes held: pages, directory and page table.
    pub(crate) fn heap_bytes(&self) -> usize {
        let table = self.more.len() * std::mem::size_of::<OnceLock<Box<Page>>>();
        let dir: usize = self.dir.iter().map(SummaryTree::heap_bytes).sum();
        let pages: usize = (0..self.npages)
            .filter_map(|p| self.page_if(p))
            .map(Page::heap_bytes)
            .sum();
        table + dir + pages
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
            let Some(pg) = self.page_if(p) else {
                if expect_cont_into_next {
                    return Err(format!("allocation runs into never-used page {p}"));
                }
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

/// Makes bit `i` of `tree` equal `truth()`, re-reading the truth after each write until the two
/// agree. Whichever thread changes the truth last runs this after its change, and every earlier
/// writer re-checks after writing, so when writers finish the bit is exact: a search never skips a
/// word that has the property, and never keeps visiting one that lost it.
fn sync_bit(tree: &SummaryTree, i: usize, truth: impl Fn() -> bool) {
    loop {
        let want = truth();
        if tree.get(i) != want {
            if want {
                tree.set(i);
            } else {
                tree.clear(i);
            }
        }
        if truth() == want {
            return;
        }
    }
}

/// Zero-store for a word the caller owns outright (big lock held, word fully its own).
trait StoreZero {
    fn store_zero(&self);
}

impl StoreZero for AtomicU128 {
    fn store_zero(&self) {
        let mut cur = self.load(SeqCst);
        while let Err(actual) = self.compare_exchange(cur, 0, SeqCst, SeqCst) {
            cur = actual;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Tier {
    Broken16,
    Partial,
    Empty,
    /// Any word with a free run (the exhaustive fallback).
    Any,
}

impl Tier {
    /// The summary trees whose words can satisfy this tier (a superset: the word decides).
    fn props(self, n: u32) -> &'static [Prop] {
        match self {
            Tier::Broken16 => &[Prop::Broken16],
            Tier::Partial if n >= 4 => &[Prop::Partial16],
            Tier::Partial => &PARTIAL,
            Tier::Empty => &[Prop::Empty],
            Tier::Any => &ALL_PROPS,
        }
    }

    fn choose(self, view: u64, n: u32) -> Option<u32> {
        match self {
            Tier::Broken16 => most_used_broken16(view),
            Tier::Partial if view != 0 && view != FULL => best_fit(view, n),
            Tier::Partial => None,
            Tier::Empty => (view == 0).then_some(0),
            Tier::Any => best_fit(view, n),
        }
    }
}

/// The domain range holding point `r` (taken modulo the domain size) and the point itself,
/// aligned down to `2^n` but not below its range's start.
pub(crate) fn start_point(domain: &[Range<u64>], r: u64, n: u32) -> (usize, u64) {
    let total: u64 = domain.iter().map(|d| d.end - d.start).sum();
    if total == 0 {
        return (0, domain.first().map_or(0, |d| d.start));
    }
    let mut off = r % total;
    for (k, d) in domain.iter().enumerate() {
        let len = d.end - d.start;
        if off < len {
            let at = d.start + off;
            let aligned = at & !((1u64 << n) - 1);
            return (k, aligned.max(d.start));
        }
        off -= len;
    }
    unreachable!("offset is below the domain total")
}

/// (partial head word, whole words, partial tail word) of a unit range.
fn split_words(range: &Range<u64>) -> (Option<usize>, Range<usize>, Option<usize>) {
    if range.is_empty() {
        return (None, 0..0, None);
    }
    let first = (range.start >> WORD_LOG2) as usize;
    let last = ((range.end - 1) >> WORD_LOG2) as usize;
    let head_partial = range.start & 63 != 0;
    let tail_partial = range.end & 63 != 0;
    if first == last && (head_partial || tail_partial) {
        return (Some(first), 0..0, None);
    }
    let head = head_partial.then_some(first);
    let tail = tail_partial.then_some(last);
    let inner = (first + head_partial as usize)..(last + 1 - tail_partial as usize);
    (head, inner, tail)
}

/// Bits of word `w` outside `range`.
fn outside_mask(w: usize, range: &Range<u64>) -> u64 {
    let base = (w as u64) << WORD_LOG2;
    let lo = range.start.saturating_sub(base).min(64) as u32;
    let hi = range.end.saturating_sub(base).min(64) as u32;
    let inside = if hi == 64 { FULL } else { (1u64 << hi) - 1 }
        & !if lo == 64 { FULL } else { (1u64 << lo) - 1 };
    !inside
}

#[cfg(all(test, not(loom)))]
#[allow(clippy::single_range_in_vec_init)] // search domains are lists of ranges; many have one
mod tests {
    use super::*;

    fn run(start: u64, log2: u8) -> Run {
        Run {
            start: Unit(start),
            log2,
        }
    }

    #[test]
    fn claim_release_round_trip() {
        let m = BlockMap::new(16);
        assert!(m.claim_at(run(16, 4)));
        assert!(!m.claim_at(run(20, 0)));
        assert_eq!(m.allocation_at(Unit(20)), Some(run(16, 4)));
        assert_eq!(m.release(run(16, 3)), Err(ReleaseRefusal::NotOneAllocation));
        assert_eq!(m.release(run(17, 0)), Err(ReleaseRefusal::NotOneAllocation));
        assert_eq!(m.release(run(32, 0)), Err(ReleaseRefusal::Free));
        m.verify().unwrap();
        assert_eq!(m.release(run(16, 4)), Ok(()));
        assert_eq!(m.used_units(), 0);
        m.verify().unwrap();
    }

    #[test]
    fn single_next_to_prefix_is_its_own_allocation() {
        let m = BlockMap::new(8);
        assert!(m.claim_at(run(0, 4)));
        assert!(m.claim_at(run(16, 0)));
        assert_eq!(m.allocation_at(Unit(16)), Some(run(16, 0)));
        assert_eq!(m.release(run(0, 4)), Ok(()));
        assert_eq!(m.release(run(16, 0)), Ok(()));
        m.verify().unwrap();
    }

    #[test]
    fn multi_word_runs() {
        let m = BlockMap::new(12);
        assert!(m.claim_at(run(128, 7)));
        assert!(!m.claim_at(run(192, 6)));
        assert_eq!(m.allocation_at(Unit(200)), Some(run(128, 7)));
        m.verify().unwrap();
        assert_eq!(
            m.release(run(128, 6)),
            Err(ReleaseRefusal::NotOneAllocation)
        );
        assert_eq!(
            m.release(run(192, 6)),
            Err(ReleaseRefusal::NotOneAllocation)
        );
        let got = m.claim_auto(8, Strategy::Pack, &[0..4096]).unwrap();
        assert_eq!(got, Unit(256));
        assert_eq!(m.release(run(128, 7)), Ok(()));
        assert_eq!(m.release(run(256, 8)), Ok(()));
        m.verify().unwrap();
    }

    #[test]
    fn pack_prefers_broken_blocks_for_singles() {
        let m = BlockMap::new(10);
        assert!(m.claim_at(run(512, 0)));
        let got = m.claim_auto(0, Strategy::Pack, &[0..1024]).unwrap();
        assert_eq!(got, Unit(513));
        let p = m.claim_auto(4, Strategy::Pack, &[0..1024]).unwrap();
        assert_eq!(
            p,
            Unit(528),
            "a /28 goes next to the used block, keeping other words whole"
        );
        m.verify().unwrap();
    }

    #[test]
    fn domain_boundaries_are_respected() {
        let m = BlockMap::new(8);
        let got = m.claim_auto(0, Strategy::Pack, &[5..7]).unwrap();
        assert_eq!(got, Unit(5));
        assert_eq!(m.claim_auto(0, Strategy::Pack, &[5..7]), Some(Unit(6)));
        assert_eq!(m.claim_auto(0, Strategy::Pack, &[5..7]), None);
        // Unit 5 is taken, so the pair at 4 is not free: the first free aligned pair is at 70.
        assert_eq!(
            m.claim_auto(1, Strategy::FirstFrom(0), &[4..6, 70..80]),
            Some(Unit(70))
        );
        // Offset 7 of the domain is unit 75 (2 units in the first range, 5 into the second),
        // aligned down to 74.
        assert_eq!(
            m.claim_auto(1, Strategy::FirstFrom(7), &[4..6, 70..80]),
            Some(Unit(74))
        );
        // Offset 13 of an 8-unit domain is unit 77 -> 76; then 78; then wrap to the first range.
        let d = [2..6, 76..80];
        assert_eq!(m.claim_auto(1, Strategy::FirstFrom(13), &d), Some(Unit(76)));
        assert_eq!(m.claim_auto(1, Strategy::FirstFrom(13), &d), Some(Unit(78)));
        assert_eq!(m.claim_auto(1, Strategy::FirstFrom(13), &d), Some(Unit(2)));
        assert_eq!(m.claim_auto(1, Strategy::FirstFrom(13), &d), None);
        m.verify().unwrap();
    }

    #[test]
    fn tiny_maps_pad_the_word() {
        let m = BlockMap::new(2);
        for _ in 0..4 {
            assert!(m.claim_auto(0, Strategy::Pack, &[0..4]).is_some());
        }
        assert_eq!(m.claim_auto(0, Strategy::Pack, &[0..4]), None);
        assert_eq!(m.used_units(), 4);
        m.verify().unwrap();
    }

    #[test]
    fn huge_maps_are_lazy() {
        let m = BlockMap::new(36);
        assert!(m.heap_bytes() < 40 << 20);
        let u = m.claim_auto(0, Strategy::Pack, &[0..1 << 36]).unwrap();
        assert_eq!(u, Unit(0));
        assert!(m.claim_at(run((1 << 36) - 1, 0)));
        assert_eq!(m.used_units(), 2);
    }
}
