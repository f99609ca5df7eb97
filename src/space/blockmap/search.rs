//! Automatic placement: where a claim looks, in which order, and when a failed search is
//! believed (see [`BlockMap::claim_auto`]).

use super::BlockMap;
use crate::space::page::{PAGE_SHIFT, PAGE_WORDS};
use crate::space::word::{
    best_fit, first_free_run_from, has_broken16, most_used_broken16, Prop, ALL_PROPS, FULL,
    PARTIAL, WORD_LOG2,
};
use crate::space::Unit;
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

/// Why an automatic claim over the whole map failed (see [`BlockMap::claim_whole`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shortfall {
    /// Enough units are free, but no aligned run of the asked size.
    Fragmented,
    /// Fewer units are free than the run needs.
    Exhausted,
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
pub(super) struct Search {
    scan: Scan,
    pub(super) mismatch: std::cell::Cell<bool>,
}

impl BlockMap {
    /// Whether at least `k` units are free inside `domain`. Visits only words the summaries say
    /// have a free unit, and stops at `k`: O(k) words at most, whatever the map's size. This is how
    /// a failed request tells "fragmented" from "full" without a shared counter on the hot path.
    #[inline]
    pub(crate) fn free_at_least(&self, domain: &[Range<u64>], k: u64) -> bool {
        if self.is_whole(domain) {
            return self.free_at_least_whole(k);
        }
        self.free_at_least_in(domain, k)
    }

    /// [`Self::free_at_least`] over ranges: boundary words masked, inner words from the summaries.
    #[inline(never)]
    fn free_at_least_in(&self, domain: &[Range<u64>], k: u64) -> bool {
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
    /// a free 16-block at least 16, so the summaries often answer alone; in a fragmented map the
    /// first broken word usually does.
    #[inline(always)]
    fn free_at_least_whole(&self, k: u64) -> bool {
        if (k <= 64 && !self.none_has(Prop::Empty)) || (k <= 16 && !self.none_has(Prop::Partial16))
        {
            return true;
        }
        if let Some(x) = self.find_word(Prop::Broken16, 0, Scan::Summaries) {
            if u64::from((!self.word(x).0).count_ones()) >= k {
                return true;
            }
        }
        self.count_free_whole(k)
    }

    /// The rest of [`Self::free_at_least_whole`]: counts word by word until `k`.
    #[inline(never)]
    fn count_free_whole(&self, k: u64) -> bool {
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
                    if prop == Prop::Empty && off < self.page_len() {
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

    /// Automatically claims a run of `2^n` inside the unit ranges of `domain` (sorted, disjoint),
    /// following `strategy`. Returns the first unit of the run.
    ///
    /// A failure is reported only when it is believable. A search walks words one after another
    /// rather than seeing one instant, so under churn it can miss a block freed behind it while
    /// another thread takes the one ahead; and the summaries are hints that a thread mid-way
    /// through a stale update can briefly hide a free word behind. So a failed search is believed
    /// only if no change was in flight when it began and none began while it ran (a release is in
    /// flight from before its compare-and-swap, a claim's summary update from before it moves a
    /// word between Pack's tiers: see `Activity`); otherwise it searches again, which it only has
    /// to because another thread made progress: lock-free.
    /// If a summary writer seems stalled (nothing else moves, but one is still in flight), the
    /// search stops trusting the summaries and visits every touched word instead.
    #[inline(always)]
    pub(crate) fn claim_auto(
        &self,
        n: u32,
        strategy: Strategy,
        domain: &[Range<u64>],
    ) -> Option<Unit> {
        if strategy == Strategy::Pack && n <= WORD_LOG2 && self.is_whole(domain) {
            let before = self.activity.snapshot();
            match self.claim_packed_quick(n) {
                Quick::Claimed(u) => return Some(u),
                // No summary shows a word that could take the run, and nothing moved meanwhile:
                // believed exactly as a failed search would be.
                Quick::NoCandidate if self.activity.settled_since(before) => return None,
                Quick::NoCandidate | Quick::Declined => {}
            }
        }
        self.claim_auto_searching(n, strategy, domain)
    }

    /// [`Self::claim_auto`] over the whole map, and on failure why, as
    /// [`Self::free_at_least`] tells it. Where the quick path already saw which summaries are
    /// empty, the classification does not look at them again: a /28 request doomed by
    /// fragmentation costs the quick path, one broken word and a count.
    #[inline(always)]
    pub(crate) fn claim_whole(&self, n: u32, strategy: Strategy) -> Result<Unit, Shortfall> {
        if strategy == Strategy::Pack && n <= WORD_LOG2 && self.pad == 0 {
            let before = self.activity.snapshot();
            match self.claim_packed_quick(n) {
                Quick::Claimed(u) => return Ok(u),
                Quick::NoCandidate if self.activity.settled_since(before) => {
                    // A /28-size request on a one-page map, classified inline where it can be:
                    // sixteen broken words hold sixteen free units at least, as in
                    // `shortfall_after_quick`, which does the same through a search and a call.
                    if n == 4 && self.npages == 1 && self.page0.first_group_all_have(Prop::Broken16)
                    {
                        return Err(Shortfall::Fragmented);
                    }
                    return Err(self.shortfall_after_quick(n));
                }
                Quick::NoCandidate | Quick::Declined => {}
            }
        }
        #[allow(clippy::single_range_in_vec_init)] // a domain is a list of ranges; this one has one
        let whole = [0..self.units];
        self.claim_auto_searching(n, strategy, &whole)
            .ok_or_else(|| self.shortfall(&whole, 1 << n))
    }

    /// Why a run of `2^n` failed when the quick path found no candidate: no summary showed an
    /// empty word, nor (below 64 units) a word with a free 16-block, nor (below 16 units) any
    /// free unit at all. The count looks only where free units can still be.
    #[inline(never)]
    fn shortfall_after_quick(&self, n: u32) -> Shortfall {
        let k = 1u64 << n;
        let enough = if n < 4 {
            false
        } else if n < WORD_LOG2 {
            match self.find_word(Prop::Broken16, 0, Scan::Summaries) {
                // Sixteen broken words hold sixteen free units at least: a /28-size run is
                // answered by the summary entry find_word just read, without loading a word.
                Some(x) if k <= 16 && self.group_all_have(Prop::Broken16, x) => true,
                Some(x) if u64::from((!self.word(x).0).count_ones()) >= k => true,
                Some(_) => self.count_free_whole(k),
                None => false,
            }
        } else {
            self.free_at_least_whole(k)
        };
        if enough {
            Shortfall::Fragmented
        } else {
            Shortfall::Exhausted
        }
    }

    /// Why a claim of `k` units failed in `domain`.
    #[cold]
    pub(crate) fn shortfall(&self, domain: &[Range<u64>], k: u64) -> Shortfall {
        if self.free_at_least(domain, k) {
            Shortfall::Fragmented
        } else {
            Shortfall::Exhausted
        }
    }

    /// Whether `domain` is the whole map, with no padding: the searches need no range masks.
    #[inline(always)]
    fn is_whole(&self, domain: &[Range<u64>]) -> bool {
        matches!(domain, [whole] if whole.start == 0 && whole.end == self.units && self.pad == 0)
    }

    /// The common case in a few dozen instructions: Pack, a run of up to 64 units, over the
    /// whole map. It looks at the first candidate word of the first tier that has one, which is
    /// the word [`Self::claim_packed_whole`] looks at first, so a claim here is exactly that
    /// search's answer. If that word declines (a stale summary bit, a word that changed), the
    /// full search takes over. If no tier has a candidate at all, that is what the full search
    /// would see too ([`Self::may_fit`] is false), and the caller believes it on the same terms.
    /// Straight-line code on purpose (the tiers of [`packed_tiers`], unrolled): a loop over them
    /// here costs a third more.
    #[inline(always)]
    fn claim_packed_quick(&self, n: u32) -> Quick {
        // Read once: the summary loads between the tiers would otherwise make it a load per tier.
        let one_page = self.npages == 1;
        let first = |p: Prop| {
            if one_page {
                self.page0.find_from(p, 0)
            } else {
                self.find_word(p, 0, Scan::Summaries)
            }
        };
        // One closure per tier, each used once, so that each tier's choice inlines.
        let claimed = |u: Option<Unit>| u.map_or(Quick::Declined, Quick::Claimed);
        if n == 0 {
            if let Some(x) = first(Prop::Broken16) {
                let choose = |v| Tier::Broken16.choose(v, n);
                return claimed(self.claim_in_word(x, n, 0, choose, None));
            }
        }
        if n < WORD_LOG2 {
            let x = if n < 4 {
                self.find_word_in(Tier::Partial.props(n), 0, Scan::Summaries)
            } else {
                first(Prop::Partial16)
            };
            if let Some(x) = x {
                // A /28 (IPv4) is the length this crate exists for: a constant n lets the
                // best-fit arithmetic fold (about a third fewer instructions), and a claim of
                // its own keeps that choice small enough to inline into it.
                if n == 4 {
                    let choose = |v| Tier::Partial.choose(v, 4);
                    return claimed(self.claim_in_word(x, 4, 0, choose, None));
                }
                let choose = |v| Tier::Partial.choose(v, n);
                return claimed(self.claim_in_word(x, n, 0, choose, None));
            }
        }
        match first(Prop::Empty) {
            Some(x) => claimed(self.claim_in_word(x, n, 0, |v| Tier::Empty.choose(v, n), None)),
            None => Quick::NoCandidate,
        }
    }

    /// [`Self::claim_auto`] past its quick path: the full search, and the checks that make a
    /// failure believable.
    fn claim_auto_searching(
        &self,
        n: u32,
        strategy: Strategy,
        domain: &[Range<u64>],
    ) -> Option<Unit> {
        let act = &self.activity;
        let mut stalled_rounds = 0;
        loop {
            let before = act.snapshot();
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
            let progress = act.progress_since(before);
            if !progress && !search.mismatch.get() && (before.quiet || scan == Scan::Every) {
                return None;
            }
            // A mismatch with nothing else moving means a writer is stuck between its CAS and
            // its summary update: after two such rounds stop trusting the summaries.
            stalled_rounds = if progress { 0 } else { stalled_rounds + 1 };
            crate::sync::spin_wait();
        }
    }

    /// One search attempt (out of line, so that a failing request, which often needs no search
    /// at all, does not pay for the search's registers).
    #[inline(never)]
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
        let tiers = packed_tiers(n, search.scan);
        if self.is_whole(domain) {
            return self.claim_packed_whole(n, tiers, search);
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
}

/// Pack's tiers for a run of `2^n` (n <= 6), in the order they are tried.
#[inline(always)]
fn packed_tiers(n: u32, scan: Scan) -> &'static [Tier] {
    match (n, scan) {
        // The exhaustive fallback takes any free run, lowest word first: no tiers, so a word
        // cannot slip between them and the fallback always ends.
        (_, Scan::Every) => &[Tier::Any],
        (0, _) => &[Tier::Broken16, Tier::Partial, Tier::Empty],
        (WORD_LOG2, _) => &[Tier::Empty],
        _ => &[Tier::Partial, Tier::Empty],
    }
}

/// What [`BlockMap::claim_packed_quick`] found.
enum Quick {
    Claimed(Unit),
    /// No summary shows a word that could take the run.
    NoCandidate,
    /// The first candidate word could not take it after all.
    Declined,
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

    #[inline(always)]
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
pub(super) fn split_words(range: &Range<u64>) -> (Option<usize>, Range<usize>, Option<usize>) {
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
pub(super) fn outside_mask(w: usize, range: &Range<u64>) -> u64 {
    let base = (w as u64) << WORD_LOG2;
    let lo = range.start.saturating_sub(base).min(64) as u32;
    let hi = range.end.saturating_sub(base).min(64) as u32;
    let inside = if hi == 64 { FULL } else { (1u64 << hi) - 1 }
        & !if lo == 64 { FULL } else { (1u64 << lo) - 1 };
    !inside
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::space::Run;

    #[test]
    fn the_stalled_writer_fallback_visits_every_touched_word() {
        // `Scan::Every`, taken when a summary writer seems stuck, cannot trust any summary: every
        // word of a page that exists is a candidate, and an untouched page offers only empty
        // words. Four pages, of which 0 (always there) and 2 exist.
        let m = BlockMap::new(18);
        let one = Run {
            start: Unit(2 * 65_536 + 5),
            log2: 0,
        };
        assert!(m.claim_at(one));
        let every = |p: Prop, from: usize| m.find_word(p, from, Scan::Every);
        assert_eq!(every(Prop::Broken16, 0), Some(0));
        assert_eq!(every(Prop::Broken16, PAGE_WORDS), Some(2 * PAGE_WORDS));
        assert_eq!(
            every(Prop::Partial16, 2 * PAGE_WORDS + 1),
            Some(2 * PAGE_WORDS + 1)
        );
        assert_eq!(every(Prop::Broken16, 3 * PAGE_WORDS), None);
        assert_eq!(every(Prop::Empty, PAGE_WORDS + 6), Some(PAGE_WORDS + 6));
        // The summaries name only the word that has the property.
        assert_eq!(
            m.find_word(Prop::Broken16, 0, Scan::Summaries),
            Some(2 * PAGE_WORDS)
        );
        assert_eq!(
            m.find_word(Prop::Broken16, 2 * PAGE_WORDS + 1, Scan::Summaries),
            None
        );
    }

    #[test]
    fn a_start_point_on_a_range_boundary_opens_the_next_range() {
        // Random and FirstFit placement start at a point of the domain (ranges of unreserved
        // units); a point at the exact end of one range is the next range's start.
        let domain = [0..10, 20..30];
        assert_eq!(start_point(&domain, 10, 0), (1, 20));
        assert_eq!(start_point(&domain, 9, 0), (0, 9));
        assert_eq!(start_point(&domain, 20, 0), (0, 0), "wraps around");
        assert_eq!(start_point(&domain, 17, 2), (1, 24), "aligned down");
        assert_eq!(
            start_point(&domain, 11, 3),
            (1, 20),
            "not below the range's start"
        );
        assert_eq!(start_point(&[], 7, 0), (0, 0));
    }
}
