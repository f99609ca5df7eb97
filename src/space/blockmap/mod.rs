//! `BlockMap`: a bitmap over `2^k` units that claims and releases aligned runs of `2^n` units.
//!
//! Layout: words of 64 units (see [`super::word`]) grouped in pages of [`PAGE_WORDS`] words.
//! A page is allocated the first time something in it is claimed, so a huge, mostly empty map (an
//! IPv6 /44 tracked per /80 is 2^36 units) costs only its directory. Each page keeps a two-level
//! summary of its words' [`Prop`]s (see [`super::page`]); the directory keeps one bit per page and
//! property (a one-page map, such as a /16 or an IPv6 /64, keeps none and asks its page).
//!
//! Concurrency: runs of up to 64 units are claimed and released with one compare-and-swap on their
//! word, with no lock. Runs longer than a word, and releases of whole words (which must look at
//! the next word to see where the allocation ends), take the map's short `big` lock; they are rare.
//! Multi-word claims write their words last-to-first so no half-written claim ever looks like a
//! complete smaller allocation. Where automatic claims look, and when a failed search is believed,
//! is in [`search`]; whole-map reads and `verify` are in [`inspect`].

mod inspect;
mod search;

pub(crate) use inspect::Words;
use search::Search;
pub(crate) use search::{Shortfall, Strategy};

use super::page::{Page, PAGE_SHIFT, PAGE_WORDS};
use super::summary::SummaryTree;
use super::word::{
    free_runs, pack, run_mask, unpack, Prop, ALL_PROPS, FULL, PROPS, WORD_LOG2, WORD_UNITS,
};
use super::{Run, Unit};
use crate::sync::{AtomicU128, AtomicU64, Mutex, OnceLock, Ordering::SeqCst};

/// What a failed search checks before it believes itself. Only releases create free space, and
/// only summaries that lag behind the words can hide it. So every change that can leave the
/// summaries behind in that direction is *in flight* from before it happens until its summaries
/// are exact: a release from before its compare-and-swap (free space appears at that instant, the
/// summaries show it only later), a claim from before its summary update (which moves a word
/// between Pack's tiers, and a search between two tiers could miss it). A failed search that
/// began with nothing in flight, and saw nothing begin while it ran, saw the map as it was at one
/// instant, as far as free space goes. (Until 2026-11-22 a release was counted just after its
/// compare-and-swap instead: a search that ran in between believed summaries that did not yet
/// show the freed block; the loom model `a_lane_seen_free_is_never_refused` found it.)
#[derive(Debug)]
struct Activity {
    /// Changes begun.
    started: AtomicU64,
    /// Changes ended.
    finished: AtomicU64,
}

/// The [`Activity`] counters as a search found them when it began.
#[derive(Clone, Copy, Debug)]
struct ActivitySnapshot {
    started: u64,
    /// Nothing was in flight.
    quiet: bool,
}

/// One change in flight; dropping it ends it, on every path out (a refusal included).
struct InFlight<'a>(&'a Activity);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, SeqCst);
    }
}

impl Activity {
    /// Marks a change as begun, until the returned guard drops.
    #[inline(always)]
    fn begin(&self) -> InFlight<'_> {
        self.started.fetch_add(1, SeqCst);
        InFlight(self)
    }

    /// Read before a search looks at anything.
    #[inline(always)]
    fn snapshot(&self) -> ActivitySnapshot {
        let started = self.started.load(SeqCst);
        ActivitySnapshot {
            started,
            quiet: self.finished.load(SeqCst) == started,
        }
    }

    /// Whether a change began since `before`.
    #[inline(always)]
    fn progress_since(&self, before: ActivitySnapshot) -> bool {
        self.started.load(SeqCst) != before.started
    }

    /// Whether a search that began at `before` and found nothing saw the map as it was at one
    /// instant: nothing in flight when it began, and nothing begun since.
    #[inline(always)]
    fn settled_since(&self, before: ActivitySnapshot) -> bool {
        before.quiet && !self.progress_since(before)
    }
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
        let page0 = Page::new(words.min(PAGE_WORDS), pad);
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
                started: AtomicU64::new(0),
                finished: AtomicU64::new(0),
            },
            big: Mutex::new(()),
        };
        // The directory starts as pages of free words are (each has Empty words and no other
        // property), and page 0 is one: only a map of fewer than 64 units pads a word, and that
        // map has one page and keeps no directory.
        debug_assert!(npages == 1 || pad == 0);
        map
    }

    /// Words in each page. Maps are `2^k` units, so a map of more than one page is made of whole
    /// pages, and only a one-page map has a shorter one.
    fn page_len(&self) -> usize {
        self.words.min(PAGE_WORDS)
    }

    #[inline(always)]
    fn page(&self, p: usize) -> &Page {
        if p == 0 {
            return &self.page0;
        }
        self.later_page(p)
    }

    /// Page `p > 0`, created on first use.
    #[inline(never)]
    fn later_page(&self, p: usize) -> &Page {
        // Whole and unpadded: see `page_len`, and `pad`, which only a one-page map has.
        self.more[p - 1].get_or_init(|| Box::new(Page::new(PAGE_WORDS, 0)))
    }

    #[inline]
    fn page_if(&self, p: usize) -> Option<&Page> {
        if p == 0 {
            return Some(&self.page0);
        }
        self.more[p - 1].get().map(|b| &**b)
    }

    /// Whether the summaries give `prop` to every word of word `w`'s group of sixteen.
    #[inline]
    fn group_all_have(&self, prop: Prop, w: usize) -> bool {
        self.page_if(w >> PAGE_SHIFT)
            .is_some_and(|pg| pg.group_all_have(prop, w & (PAGE_WORDS - 1)))
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
    #[inline(never)]
    fn sync_dir_bit(&self, prop: Prop, p: usize, pg: &Page) {
        sync_bit(&self.dir[prop as usize], p, || !pg.is_empty(prop));
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

    /// Writes the properties `changed` of word `i` of page `p` from `holds`; syncs the directory
    /// for each property the page as a whole gained or lost.
    #[inline(always)]
    fn write_summary(&self, p: usize, pg: &Page, i: usize, holds: u8, changed: u8) {
        if self.npages == 1 {
            pg.write_props::<false>(i, holds, changed);
            return; // no directory to sync (see `none_has`)
        }
        let mut flipped = pg.write_props::<true>(i, holds, changed);
        while flipped != 0 {
            let k = flipped.trailing_zeros() as usize;
            flipped &= flipped - 1;
            self.sync_dir_bit(ALL_PROPS[k], p, pg);
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
    ///
    /// `BEGIN`: the update is in flight (see [`Activity`]) only from here, as a claim's is. A
    /// release passes false: it is in flight already, from before its compare-and-swap.
    #[inline(always)]
    fn after_change<const BEGIN: bool>(&self, pg: &Page, w: usize, new: u64) {
        let i = w & (PAGE_WORDS - 1);
        let holds = Prop::set_of(new);
        let stale = holds ^ pg.props_of(i);
        if stale != 0 {
            if BEGIN {
                self.resummarise(pg, w, new, holds, stale);
            } else {
                self.resync(pg, w, new, holds, stale);
            }
        }
    }

    /// A claim's [`Self::after_change`] when some property changed, in flight while it runs.
    /// Out of line: most claims leave a word's properties as they were.
    #[inline(never)]
    fn resummarise(&self, pg: &Page, w: usize, new: u64, holds: u8, changed: u8) {
        let _in_flight = self.activity.begin();
        self.resync(pg, w, new, holds, changed);
    }

    /// Writes the properties in `changed` from `holds` (`Prop::set_of(new)`, which the caller
    /// has computed), then re-reads the word until it confirms what was written. Inline into a
    /// release, which is out of line already and changes its word's properties more often than
    /// not.
    #[inline(always)]
    fn resync(&self, pg: &Page, w: usize, new: u64, mut holds: u8, mut changed: u8) {
        let p = w >> PAGE_SHIFT;
        let i = w & (PAGE_WORDS - 1);
        let mut cur = new;
        loop {
            self.write_summary(p, pg, i, holds, changed);
            let now = unpack(pg.words[i].load(SeqCst)).0;
            if now == cur {
                break;
            }
            cur = now;
            holds = Prop::set_of(cur);
            changed = (1 << PROPS) - 1;
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
                    self.after_change::<true>(pg, w, used | m);
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
            self.after_change::<true>(self.page((w + k) >> PAGE_SHIFT), w + k, FULL);
        }
        true
    }

    /// Releases exactly `run` if it is one allocation.
    pub(crate) fn release(&self, run: Run) -> Result<(), ReleaseRefusal> {
        let n = run.log2 as u32;
        let w = (run.start.0 >> WORD_LOG2) as usize;
        if n < WORD_LOG2 {
            let pos = (run.start.0 & 63) as u32;
            let pg = self.page_if(w >> PAGE_SHIFT).ok_or(ReleaseRefusal::Free)?;
            let cell = &pg.words[w & (PAGE_WORDS - 1)];
            let mut cur = cell.load(SeqCst);
            // A refusal is decided before anything is in flight; one found on a retry ends the
            // bracket as it returns.
            let mut new = released(cur, pos, n)?;
            let _in_flight = self.activity.begin();
            loop {
                match cell.compare_exchange(cur, new, SeqCst, SeqCst) {
                    Ok(_) => {
                        self.after_change::<false>(pg, w, unpack(new).0);
                        return Ok(());
                    }
                    Err(actual) => {
                        cur = actual;
                        new = released(cur, pos, n)?;
                    }
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
        let _in_flight = self.activity.begin();
        for k in (0..count).rev() {
            let x = w + k;
            self.page(x >> PAGE_SHIFT).words[x & (PAGE_WORDS - 1)].store_zero();
            self.after_change::<false>(self.page(x >> PAGE_SHIFT), x, 0);
        }
        Ok(())
    }
}

/// Word `cur` with the run of `2^n` units at `pos` (n < 6) freed, if that run is exactly one
/// allocation: it starts at `pos`, continues to its end and stops there. (An allocation ending
/// inside a word never continues into the next one.)
#[inline(always)]
fn released(cur: u128, pos: u32, n: u32) -> Result<u128, ReleaseRefusal> {
    let (used, cont) = unpack(cur);
    let m = run_mask(pos, n);
    if used & m != m {
        return Err(ReleaseRefusal::Free);
    }
    let end = pos + (1 << n);
    let body = m & !(1u64 << pos);
    let stops = end == WORD_UNITS || cont & (1u64 << end) == 0;
    if cont & (1u64 << pos) != 0 || cont & body != body || !stops {
        return Err(ReleaseRefusal::NotOneAllocation);
    }
    Ok(pack(used & !m, cont & !m))
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

    /// The quick classification of a failed whole-map claim against a plain count, in the states
    /// that reach each of its branches.
    #[test]
    fn a_failed_whole_claim_tells_fragmented_from_exhausted() {
        // On a one-page map (where a /28-size request is classified inline) and on a two-page
        // one whose second page is full (where it goes through `shortfall_after_quick`).
        for log2 in [10, 17] {
            failed_claims_on(log2);
        }
    }

    fn failed_claims_on(log2: u32) {
        // The patterns below cover the first 1024 units; the rest of a larger map is full.
        let units = 1u64 << 10;
        let map_leaving_free = |free: &dyn Fn(u64) -> bool| {
            let m = BlockMap::new(log2);
            for u in (0..units).filter(|&u| !free(u)) {
                assert!(m.claim_at(run(u, 0)));
            }
            for u in (units..1 << log2).step_by(64) {
                assert!(m.claim_at(run(u, 6)));
            }
            m
        };
        let check = |m: &BlockMap, n: u32, want: Result<(), Shortfall>| {
            let got = m.claim_whole(n, Strategy::Pack).map(|u| {
                assert_eq!(m.release(run(u.0, n as u8)), Ok(()));
            });
            assert_eq!(got, want, "/{log2}, n = {n}, {} units used", m.used_units());
            if let Err(why) = want {
                assert_eq!(m.shortfall(&[0..1 << log2], 1 << n), why, "n = {n}");
            }
            m.verify().unwrap();
        };
        use Shortfall::{Exhausted, Fragmented};
        // One used unit in every 16-block: 960 free, no free 16-block.
        let m = map_leaving_free(&|u| u % 16 != 3);
        for n in 0..4 {
            check(&m, n, Ok(()));
        }
        for n in 4..=6 {
            check(&m, n, Err(Fragmented));
        }
        // Ten free units in each of two words, none a whole 16-block: the first broken word
        // alone has too few for a 16-run, the two together enough.
        let m =
            map_leaving_free(&|u| (u / 64 == 3 || u / 64 == 9) && u % 64 % 6 == 0 && u % 64 < 60);
        check(&m, 0, Ok(()));
        check(&m, 4, Err(Fragmented));
        check(&m, 5, Err(Exhausted));
        check(&m, 6, Err(Exhausted));
        // Eleven free units in all, in different words.
        let m = map_leaving_free(&|u| u % 100 == 7);
        check(&m, 0, Ok(()));
        check(&m, 3, Err(Fragmented));
        check(&m, 4, Err(Exhausted));
        // One free unit in each of the sixteen words (one summary group, which answers for a
        // 16-run by itself): exactly enough; in fifteen of them, one short.
        let m = map_leaving_free(&|u| u % 64 == 5);
        check(&m, 4, Err(Fragmented));
        check(&m, 5, Err(Exhausted));
        let m = map_leaving_free(&|u| u < 15 * 64 && u % 64 == 5);
        check(&m, 4, Err(Exhausted));
        // Nothing free: below a 16-run the quick path already knows.
        let m = map_leaving_free(&|_| false);
        for n in 0..=6 {
            check(&m, n, Err(Exhausted));
        }
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

    /// The whole-map reads skip pages never touched, and must still see every later page that
    /// was: a range that starts in an untouched page is read page by page, not judged by its
    /// first page.
    #[test]
    fn reads_past_untouched_pages_find_later_ones() {
        let m = BlockMap::new(18); // four pages
        let page = 1u64 << 16;
        assert!(m.claim_at(run(3 * page + 5, 0)));
        assert!(m.claim_at(run(3 * page + 64, 6)));
        assert_eq!(m.first_used_in(page..4 * page), Some(Unit(3 * page + 5)));
        assert_eq!(
            m.first_used_in(page + 7..4 * page),
            Some(Unit(3 * page + 5))
        );
        assert_eq!(
            m.first_used_in(3 * page + 6..4 * page),
            Some(Unit(3 * page + 64))
        );
        assert_eq!(m.first_used_in(page..3 * page), None);
        assert_eq!(m.used_in(page..4 * page), 65);
        assert_eq!(m.used_in(page + 7..3 * page + 70), 7);
        assert!(m.is_free(page..3 * page + 5));
        assert!(!m.is_free(page..3 * page + 6));
        m.verify().unwrap();
    }

    /// What a page costs: an untouched one only its slot in the page table, a touched one its
    /// words and summaries besides.
    #[test]
    fn memory_grows_by_whole_pages_as_they_are_touched() {
        let words_of_a_page = PAGE_WORDS * 16;
        let directory = |m: &BlockMap| m.dir.iter().map(SummaryTree::heap_bytes).sum::<usize>();
        // One page, inline in the map: its words are all the heap it holds.
        let m = BlockMap::new(16);
        assert_eq!(m.heap_bytes(), words_of_a_page + directory(&m));
        let m = BlockMap::new(30);
        let slot = std::mem::size_of::<OnceLock<Box<Page>>>();
        let untouched = m.heap_bytes();
        assert_eq!(
            untouched,
            (m.npages - 1) * slot + directory(&m) + words_of_a_page
        );
        assert!(m.claim_at(run(5 << 16, 0)));
        assert_eq!(
            m.heap_bytes() - untouched,
            std::mem::size_of::<Page>() + words_of_a_page
        );
        assert!(m.claim_at(run((5 << 16) + 64, 0)));
        assert_eq!(
            m.heap_bytes() - untouched,
            std::mem::size_of::<Page>() + words_of_a_page,
            "a second claim in the same page costs nothing"
        );
    }

    /// `verify` names each way a map can be broken. Words are written raw here, behind the
    /// claim protocol's back, to build states no sequence of claims and releases can reach.
    #[test]
    fn verify_names_each_kind_of_broken_map() {
        let fails_with = |m: &BlockMap, text: &str| {
            let err = m.verify().unwrap_err();
            assert!(err.contains(text), "{err:?} should say {text:?}");
        };
        let plant = |m: &BlockMap, w: usize, used: u64, cont: u64| {
            m.page(w >> PAGE_SHIFT).words[w & (PAGE_WORDS - 1)].store(pack(used, cont), SeqCst);
        };
        // A four-unit map: the other 60 bits of its word are padding, used and never continued.
        let m = BlockMap::new(2);
        plant(&m, 0, 0b1, 0);
        fails_with(&m, "padding bits of word 0 changed");
        plant(&m, 0, FULL, FULL << 4);
        fails_with(&m, "padding bits of word 0 changed");
        plant(&m, 0, FULL << 4, 0);
        m.verify().unwrap();

        let m = BlockMap::new(8);
        plant(&m, 0, 0b1, 0b10);
        fails_with(&m, "word 0: continuation bits on free units: 0x2");
        // Continued from a word that is free.
        plant(&m, 0, 0, 0);
        plant(&m, 1, FULL, FULL);
        fails_with(&m, "word 1: allocation boundary at unit 0 broken");
        // Word 0 is one allocation that goes on into word 1, which must then be wholly continued.
        plant(&m, 0, FULL, FULL & !1);
        plant(&m, 1, 0b11, 0b11);
        fails_with(
            &m,
            "word 1: continued from the previous word but not wholly",
        );
        plant(&m, 1, FULL, 0b1);
        fails_with(
            &m,
            "word 1: continued from the previous word but not wholly",
        );
        plant(&m, 0, 0, 0);
        plant(&m, 1, 0, 0);
        // Three units, and two units that start off their alignment.
        plant(&m, 2, 0b111, 0b110);
        fails_with(
            &m,
            "allocation at unit 128 of 3 units is not an aligned power of two",
        );
        plant(&m, 2, 0b110, 0b100);
        fails_with(
            &m,
            "allocation at unit 129 of 2 units is not an aligned power of two",
        );
        plant(&m, 2, 0, 0);
        m.verify().unwrap();

        // Four pages: the directory must tell which pages hold which kinds of word.
        let m = BlockMap::new(18);
        assert!(m.claim_at(run((1 << 16) + 5, 0)));
        m.verify().unwrap();
        // Words are named by their index in the whole map.
        plant(&m, PAGE_WORDS + 3, 0b1, 0b10);
        fails_with(
            &m,
            &format!("word {}: continuation bits on free units", PAGE_WORDS + 3),
        );
        // A word changed behind its summaries.
        plant(&m, PAGE_WORDS + 3, 1, 0);
        fails_with(&m, &format!("word {}: summary", PAGE_WORDS + 3));
        plant(&m, PAGE_WORDS + 3, 0, 0);
        m.verify().unwrap();
        m.dir[Prop::Empty as usize].clear(1);
        fails_with(&m, "page 1: directory bit Empty is stale");
        m.dir[Prop::Empty as usize].set(1);
        m.dir[Prop::Empty as usize].clear(2);
        fails_with(&m, "untouched page 2 not marked empty in the directory");
        m.dir[Prop::Empty as usize].set(2);
        m.dir[Prop::Broken16 as usize].set(3);
        fails_with(&m, "untouched page 3 marked Broken16 in the directory");
        m.dir[Prop::Broken16 as usize].clear(3);
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
