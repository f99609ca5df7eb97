//! `ffi/install.sh` as a C user runs it: install into a temporary prefix, then build the C
//! example with `pkg-config` against the shared library and against the static one, run both,
//! and check what the shared library is: its soname, its symlinks, and that it exports the
//! header's functions and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command, panics with its output unless it succeeds, returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let text = run(Command::new("pkg-config")
        .args(args)
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
    text.split_whitespace().map(String::from).collect()
}

/// The `pdipam_*` functions the header declares.
fn declared_functions() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/pdipam.h")).unwrap();
    // Every identifier directly followed by `(`: the declarations (and macros, which are not
    // called pdipam_*).
    let mut names: Vec<String> = header
        .split('(')
        .filter_map(|before| {
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            Some(before[start..].to_string()).filter(|w| w.starts_with("pdipam_"))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn check_example_output(out: &str) {
    assert!(out.contains("eni-0 holds 10.0.0.16/28"), "{out}");
    assert!(
        out.contains("releasing pod-1 again: PDIPAM_STATUS_UNKNOWN_POD"),
        "{out}"
    );
}

fn needed(exe: &Path) -> String {
    run(Command::new("readelf").arg("-d").arg(exe))
}

#[test]
fn installs_into_a_prefix_and_links_through_pkg_config() {
    let work = root().join("target/c-abi/install-test");
    let _ = std::fs::remove_dir_all(&work);
    let prefix = work.join("prefix");
    std::fs::create_dir_all(&work).unwrap();
    // Its own target directory, shared with the C tests: the outer cargo holds the main one.
    run(Command::new("bash")
        .arg(root().join("ffi/install.sh"))
        .args(["--debug", "--prefix"])
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", root().join("target/c-abi")));

    let lib = prefix.join("lib");
    for f in [
        "include/pdipam.h",
        "lib/libpdipam.a",
        "lib/pkgconfig/pdipam.pc",
    ] {
        assert!(prefix.join(f).is_file(), "{f} is installed");
    }
    let so = std::fs::read_link(lib.join("libpdipam.so.0")).expect("libpdipam.so.0 is a link");
    assert_eq!(so, Path::new("libpdipam.so.0.4.0"));
    assert_eq!(std::fs::read_link(lib.join("libpdipam.so")).unwrap(), so);
    let dynamic = needed(&lib.join("libpdipam.so.0.4.0"));
    assert!(
        dynamic.contains("Library soname: [libpdipam.so.0]"),
        "{dynamic}"
    );

    // Exactly the header's functions are exported: the version script hides everything else.
    let symbols = run(Command::new("nm")
        .args(["-D", "--defined-only", "--format=posix"])
        .arg(lib.join("libpdipam.so")));
    let mut exported: Vec<String> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    exported.sort();
    assert_eq!(exported, declared_functions());

    let example = root().join("ffi/examples/example.c");
    let flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];

    // Dynamic: the soname is what the program needs; the run-time path finds it.
    let exe = work.join("example-dynamic");
    run(Command::new("cc")
        .args(flags)
        .arg(&example)
        .args(pkg_config(&prefix, &["--cflags", "--libs", "pdipam"]))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe));
    assert!(needed(&exe).contains("Shared library: [libpdipam.so.0]"));
    check_example_output(&run(&mut Command::new(&exe)));

    // Static: nothing of pdipam is loaded at run time.
    let exe = work.join("example-static");
    run(Command::new("cc")
        .args(flags)
        .arg(&example)
        .args(pkg_config(
            &prefix,
            &["--cflags", "--libs", "pdipam-static"],
        ))
        .arg("-o")
        .arg(&exe));
    assert!(!needed(&exe).contains("libpdipam"));
    check_example_output(&run(&mut Command::new(&exe)));
}
