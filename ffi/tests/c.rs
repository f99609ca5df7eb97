//! The C tests (`ffi/tests/c/`) and the C example, compiled against `include/pdipam.h` and
//! `libpdipam.a` with `-std=c11 -Wall -Wextra -Werror -pedantic`, then run plain, under ASan +
//! UBSan, and under valgrind memcheck (0 errors, 0 leaks). The header also compiles as C++.

mod common;

use common::root;
use std::path::{Path, PathBuf};
use std::process::Command;

const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];
const LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];
const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];

/// `libpdipam.a`, built once for this test binary.
fn static_lib() -> PathBuf {
    common::lib_dir().join("libpdipam.a")
}

fn out_dir() -> PathBuf {
    let dir = root().join("target/c-abi/tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `sources` into `name` with `compiler` and `flags`; panics with the compiler's output.
fn compile(compiler: &str, flags: &[&str], sources: &[PathBuf], name: &str) -> PathBuf {
    let exe = out_dir().join(name);
    let out = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .args(sources)
        .arg(static_lib())
        .args(LIBS)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} not found: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs `exe` (through `wrapper` if given) and returns its stdout; panics on failure.
fn run(wrapper: &[&str], exe: &Path) -> String {
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {:?}:\n{stdout}\n{}",
        wrapper.join(" "),
        exe,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

const VALGRIND: &[&str] = &[
    "valgrind",
    "--quiet",
    "--error-exitcode=1",
    "--leak-check=full",
    "--show-leak-kinds=definite,indirect,possible",
    "--errors-for-leak-kinds=definite,indirect,possible",
];

/// One C test program: plain, sanitized, and under valgrind.
fn c_test(file: &str) -> String {
    let src = vec![source(file)];
    let stem = file.rsplit('/').next().unwrap().trim_end_matches(".c");
    let plain = compile("cc", &[C_FLAGS, &["-O1"]].concat(), &src, stem);
    let out = run(&[], &plain);
    let sanitized = compile(
        "cc",
        &[C_FLAGS, SANITIZE].concat(),
        &src,
        &format!("{stem}-asan"),
    );
    run(&[], &sanitized);
    if have("valgrind") {
        run(VALGRIND, &plain);
    } else {
        // `.ci/run` installs valgrind; a bare `cargo test` elsewhere still runs the rest.
        eprintln!("valgrind not installed: {stem} ran plain and under ASan + UBSan only");
    }
    out
}

#[test]
fn c_tests_pass_plain_under_sanitizers_and_valgrind() {
    let out = c_test("tests/c/test_pdipam.c");
    assert!(out.contains("21 tests, 0 failed"), "{out}");
}

#[test]
fn four_threads_never_hold_one_address_twice() {
    let out = c_test("tests/c/test_threads.c");
    assert!(
        out.contains("0 addresses held twice, 0 errors, ok"),
        "{out}"
    );
}

#[test]
fn the_promised_declarations_match_the_header() {
    let exe = compile(
        "cc",
        C_FLAGS,
        &[source("tests/c/test_declarations.c")],
        "test_declarations",
    );
    run(&[], &exe);
}

#[test]
fn the_header_compiles_as_cpp() {
    let cxx = if have("c++") { "c++" } else { "g++" };
    let exe = compile(
        cxx,
        &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        &[source("tests/c/test_cxx.cpp")],
        "test_cxx",
    );
    assert!(run(&[], &exe).contains("PDIPAM_STATUS_OK"));
}

#[test]
fn the_c_example_runs() {
    let exe = compile("cc", C_FLAGS, &[source("examples/example.c")], "example");
    let out = run(&[], &exe);
    assert!(out.contains("eni-0 holds 10.0.0.16/28"), "{out}");
    assert!(out.contains("pod-2 -> 10.0.0.18/32"), "{out}");
    assert!(
        out.contains("releasing pod-1 again: PDIPAM_STATUS_UNKNOWN_POD"),
        "{out}"
    );
}
