//! A checkpoint kept as two generations written in place in turn: the newest one that opens is
//! read, a write cut short never hides it, and damaged files are kept for inspection.

use crate::persist::{clock, sample, FAILPOINT};
use pdipam::persist::{Generations, NodeCheckpoint, PersistError};
use pdipam::{PodKey, PodRequest, Timestamp};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pdipam-generations-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn add_pod(node: &pdipam::Node, name: &str) {
    node.assign(PodRequest::new(PodKey::new("net", name, "eth0")))
        .unwrap();
}

#[test]
fn writes_alternate_between_the_two_files_and_the_newest_is_read() {
    let c = clock();
    let node = sample(&c);
    let d = dir("alternate");
    let base = d.join("ipv4.checkpoint");
    let (mut g, none) = Generations::open(&base).unwrap();
    assert!(none.is_none() && g.newest_file().is_none());
    let mut written = Vec::new();
    for i in 0..6 {
        add_pod(&node, &format!("p{i}"));
        let mut cp = node.checkpoint(None);
        g.write(&mut cp).unwrap();
        let expect = &Generations::files_of(&base)[i % 2];
        assert_eq!(g.newest_file(), Some(expect.as_path()), "write {i}");
        // A fresh reader sees exactly what was written, and each file reads on its own.
        let (again, read) = Generations::open(&base).unwrap();
        assert_eq!(read.as_ref(), Some(&cp), "write {i}");
        assert_eq!(again.newest_file(), Some(expect.as_path()));
        assert_eq!(NodeCheckpoint::read(expect).unwrap(), cp);
        written.push(cp);
        c.advance(Duration::from_millis(1));
    }
    assert_eq!(names(&d), ["ipv4.checkpoint", "ipv4.checkpoint.1"]);
    // Padded to whole pages, and the older file holds the generation before the newest.
    for f in Generations::files_of(&base) {
        assert_eq!(std::fs::metadata(&f).unwrap().len() % 4096, 0);
    }
    assert_eq!(NodeCheckpoint::read(&base).unwrap(), written[4]);
}

#[test]
fn a_clock_that_went_back_does_not_make_a_write_older_than_the_newest() {
    let c = clock();
    let node = sample(&c);
    let d = dir("clock-back");
    let base = d.join("node");
    let (mut g, _) = Generations::open(&base).unwrap();
    let mut first = node.checkpoint(None);
    first.written_at = Timestamp::from_unix_nanos(2_000_000_000_000_000_000);
    g.write(&mut first).unwrap();
    add_pod(&node, "later");
    let mut second = node.checkpoint(None);
    assert!(second.written_at < first.written_at);
    g.write(&mut second).unwrap();
    assert!(second.written_at > first.written_at);
    let (_, read) = Generations::open(&base).unwrap();
    assert_eq!(read.unwrap(), second);
}

/// What a write cut short by a crash can leave in the file it was writing: the start of the
/// new generation over the rest of the old one, or only part of the new one.
fn torn(old: &[u8], new: &[u8], cut: usize) -> Vec<u8> {
    let mut t = new[..cut].to_vec();
    if old.len() > cut {
        t.extend_from_slice(&old[cut..]);
    }
    t
}

#[test]
fn a_write_cut_short_leaves_the_newest_generation_and_the_damage_is_kept_aside() {
    let c = clock();
    let node = sample(&c);
    let d = dir("torn");
    let base = d.join("ipv4.checkpoint");
    let files = Generations::files_of(&base);
    let (mut g, _) = Generations::open(&base).unwrap();
    let mut older = node.checkpoint(None);
    g.write(&mut older).unwrap();
    add_pod(&node, "a");
    c.advance(Duration::from_millis(1));
    let mut newest = node.checkpoint(None);
    g.write(&mut newest).unwrap();
    // The third write goes over the older generation, in files[0]: cut it short at various
    // points (as a crash between the write and its sync can).
    add_pod(&node, "b");
    c.advance(Duration::from_millis(1));
    let mut third = node.checkpoint(None);
    third.written_at = newest.written_at.saturating_add(Duration::from_nanos(1));
    let new_bytes = third.to_bytes();
    let old_bytes = std::fs::read(&files[0]).unwrap();
    for cut in [1, 80, 200, new_bytes.len() / 2, new_bytes.len() - 3] {
        let t = torn(&old_bytes, &new_bytes, cut);
        std::fs::write(&files[0], &t).unwrap();
        let (g, read) = Generations::open(&base).unwrap();
        assert_eq!(read.as_ref(), Some(&newest), "cut at {cut}");
        if t == old_bytes {
            // Cut before the first byte that differs: the older generation, intact.
            assert!(g.damaged().is_none());
            continue;
        }
        let Some((file, why)) = g.damaged() else {
            panic!("cut at {cut} of {}: not reported", new_bytes.len())
        };
        assert_eq!(file, files[0]);
        assert!(why.to_string().contains("ipv4.checkpoint"), "{why}");
    }
    let torn_bytes = std::fs::read(&files[0]).unwrap();
    let (mut g, _) = Generations::open(&base).unwrap();
    g.write(&mut third).unwrap();
    assert_eq!(
        std::fs::read(Generations::damaged_copy(&files[0])).unwrap(),
        torn_bytes,
        "the damaged file is kept as it was"
    );
    let (g, read) = Generations::open(&base).unwrap();
    assert_eq!(read.unwrap(), third);
    assert!(g.damaged().is_none());
}

#[test]
fn damage_with_nothing_to_fall_back_on_is_an_error_naming_the_files() {
    let c = clock();
    let node = sample(&c);
    let d = dir("damaged");
    let base = d.join("ipv4.checkpoint");
    let files = Generations::files_of(&base);
    // One file only (as a single-file checkpoint of an earlier build), damaged.
    node.checkpoint(None).write(&base).unwrap();
    let mut bytes = std::fs::read(&base).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    std::fs::write(&base, &bytes).unwrap();
    match Generations::open(&base) {
        Err(PersistError::BadChecksum { source_name, .. }) => {
            assert!(source_name.ends_with("ipv4.checkpoint"))
        }
        other => panic!("{other:?}"),
    }
    // Both files, both damaged.
    std::fs::write(&files[1], b"{").unwrap();
    let e = Generations::open(&base).unwrap_err();
    assert!(matches!(e, PersistError::NoValidGeneration { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("ipv4.checkpoint:") && text.contains("ipv4.checkpoint.1:"),
        "{text}"
    );
    // A file that exists but cannot be read is an I/O error, never taken for damage.
    std::fs::remove_file(&files[1]).unwrap();
    std::fs::create_dir(&files[1]).unwrap();
    node.checkpoint(None).write(&base).unwrap();
    let e = Generations::open(&base).unwrap_err();
    assert!(matches!(e, PersistError::Io { .. }), "{e}");
}

#[test]
fn a_single_file_checkpoint_is_the_newest_generation_and_is_never_written_over_first() {
    let c = clock();
    let node = sample(&c);
    let d = dir("single");
    let base = d.join("ipv4.checkpoint");
    let earlier = node.checkpoint(None);
    earlier.write(&base).unwrap();
    let (mut g, read) = Generations::open(&base).unwrap();
    assert_eq!(read.unwrap(), earlier);
    add_pod(&node, "new");
    let mut next = node.checkpoint(None);
    g.write(&mut next).unwrap();
    assert_eq!(NodeCheckpoint::read(&base).unwrap(), earlier);
    let (_, read) = Generations::open(&base).unwrap();
    assert_eq!(read.unwrap(), next);
}

#[test]
fn two_different_generations_of_the_same_time_are_refused() {
    let c = clock();
    let node = sample(&c);
    let d = dir("conflict");
    let base = d.join("ipv4.checkpoint");
    let files = Generations::files_of(&base);
    let one = node.checkpoint(None);
    one.write(&files[0]).unwrap();
    one.write(&files[1]).unwrap();
    assert_eq!(Generations::open(&base).unwrap().1.unwrap(), one);
    add_pod(&node, "other");
    let mut two = node.checkpoint(None);
    two.written_at = one.written_at;
    two.write(&files[1]).unwrap();
    let e = Generations::open(&base).unwrap_err();
    assert!(
        matches!(e, PersistError::ConflictingGenerations { .. }),
        "{e}"
    );
}

#[test]
fn a_failed_write_leaves_the_newest_generation_and_is_never_read_back() {
    let _serial = FAILPOINT.lock().unwrap();
    let c = clock();
    let node = sample(&c);
    let d = dir("failed");
    let base = d.join("ipv4.checkpoint");
    let (mut g, _) = Generations::open(&base).unwrap();
    for _ in 0..2 {
        let mut cp = node.checkpoint(None);
        g.write(&mut cp).unwrap();
        c.advance(Duration::from_millis(1));
    }
    let (_, before) = Generations::open(&base).unwrap();
    add_pod(&node, "failed");
    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = g.write(&mut node.checkpoint(None)).unwrap_err();
    assert!(
        matches!(
            e,
            PersistError::Io {
                operation: "fdatasync",
                ..
            }
        ),
        "{e}"
    );
    // The new generation reached the file (not synced), and was spoiled after the failure.
    let (_, after) = Generations::open(&base).unwrap();
    assert_eq!(after, before);
    let mut cp = node.checkpoint(None);
    g.write(&mut cp).unwrap();
    assert_eq!(Generations::open(&base).unwrap().1.unwrap(), cp);
}
