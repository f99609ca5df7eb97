//! The C ABI stays stable: every baseline header in `ffi/abi/` (the header as released at an ABI
//! version of the current major) must still hold against today's header and library.
//!
//! From a baseline, a C file is generated and compiled against today's `include/pdipam.h`:
//! - each baseline function declaration, redeclared verbatim (C accepts a redeclaration only if
//!   it is compatible: a changed parameter or return type is an error);
//! - each baseline `#define PDIPAM_*` constant, asserted to have the same value (the minor
//!   version may only grow);
//! - each baseline struct's size and every field's offset, measured by compiling a probe
//!   against the baseline header itself;
//! - the address of every baseline function, so linking it against today's `libpdipam.so`
//!   and `libpdipam.a` fails when one is gone.
//!
//! Additions pass. When functions are added, the minor version grows and the new header is
//! copied to `ffi/abi/pdipam-MAJOR.MINOR.h` as the next baseline.

mod common;

use common::{lib_dir, root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a baseline header promises.
#[derive(Debug, Default)]
struct Baseline {
    /// Function declarations, each as written (without the `;`).
    functions: Vec<String>,
    /// Function names, in the same order.
    names: Vec<String>,
    /// `#define PDIPAM_* <integer>`.
    constants: Vec<(String, i64)>,
    /// Struct typedef names with their field names.
    structs: Vec<(String, Vec<String>)>,
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("comments are closed") + start + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier that ends `text` (before trailing spaces or an array suffix).
fn last_identifier(text: &str) -> &str {
    let text = text.split('[').next().unwrap().trim_end();
    let start = text
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    &text[start..]
}

fn parse(header: &str) -> Baseline {
    let mut b = Baseline::default();
    let code = strip_comments(header);
    let mut body = String::new();
    for line in code.lines() {
        let line = line.trim();
        if let Some(define) = line.strip_prefix("#define ") {
            let mut parts = define.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let (true, Ok(v)) = (name.starts_with("PDIPAM_"), value.parse::<i64>()) {
                b.constants.push((name.to_string(), v));
            }
        } else if !line.starts_with('#') && !line.starts_with("extern \"C\"") {
            body.push_str(line);
            body.push('\n');
        }
    }
    // Statements end at a `;` outside braces.
    let mut depth = 0;
    let mut statement = String::new();
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ';' && depth == 0 {
            let s = statement.split_whitespace().collect::<Vec<_>>().join(" ");
            statement.clear();
            if let Some(inner) = s.strip_prefix("typedef struct ") {
                if let (Some(open), Some(close)) = (inner.find('{'), inner.rfind('}')) {
                    let fields = inner[open + 1..close]
                        .split(';')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(|f| last_identifier(f).to_string())
                        .collect();
                    b.structs
                        .push((last_identifier(&inner[close + 1..]).to_string(), fields));
                }
            } else if !s.starts_with("typedef") && s.contains("pdipam_") && s.contains('(') {
                let name = last_identifier(s.split('(').next().unwrap()).to_string();
                b.names.push(name);
                b.functions.push(s);
            }
            continue;
        }
        if !(c == '}' && depth == 0 && statement.trim().is_empty()) {
            statement.push(c);
        }
    }
    b
}

fn work_dir(name: &str) -> PathBuf {
    let dir = root().join("target/c-abi/abi").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles C `source` (with `-I include_dir`) and `extra` arguments into `exe`; returns the
/// compiler's complaint on failure.
fn cc(source: &str, include_dir: &Path, extra: &[&str], exe: &Path) -> Result<(), String> {
    let file = exe.with_extension("c");
    std::fs::write(&file, source).unwrap();
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(include_dir)
        .arg(&file)
        .args(extra)
        .arg("-o")
        .arg(exe)
        .output()
        .expect("cc runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The baseline's struct layout as `_Static_assert`s, measured against the baseline itself.
fn layout_asserts(baseline_header: &Path, b: &Baseline, dir: &Path) -> String {
    let mut probe = format!(
        "#include \"{}\"\n#include <stdio.h>\nint main(void) {{\n",
        baseline_header.display()
    );
    for (name, fields) in &b.structs {
        probe.push_str(&format!(
            "  printf(\"_Static_assert(sizeof({name}) == %zu, \\\"size of {name}\\\");\\n\", sizeof({name}));\n"
        ));
        for f in fields {
            probe.push_str(&format!(
                "  printf(\"_Static_assert(offsetof({name}, {f}) == %zu, \\\"{name}.{f}\\\");\\n\", offsetof({name}, {f}));\n"
            ));
        }
    }
    probe.push_str("  return 0;\n}\n");
    let exe = dir.join("layout-probe");
    cc(&probe, dir, &[], &exe).expect("the baseline header compiles");
    let out = Command::new(&exe).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Checks `baseline` against today's header and library; the compiler's or linker's complaint
/// when it does not hold.
fn check(baseline_header: &Path, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(baseline_header).unwrap();
    let b = parse(&text);
    assert!(b.functions.len() > 30, "parsed {b:?}");
    let dir = work_dir(name);
    let mut c = String::from("#include \"pdipam.h\"\n#include <stddef.h>\n\n");
    for f in &b.functions {
        c.push_str(f);
        c.push_str(";\n");
    }
    for (constant, value) in &b.constants {
        let op = if constant == "PDIPAM_ABI_VERSION_MINOR" {
            ">="
        } else {
            "=="
        };
        c.push_str(&format!(
            "_Static_assert({constant} {op} {value}, \"{constant} is {value}\");\n"
        ));
    }
    c.push_str(&layout_asserts(baseline_header, &b, &dir));
    c.push_str("\ntypedef void (*any_function)(void);\nint main(void) {\n");
    c.push_str("  any_function volatile every[] = {\n");
    for n in &b.names {
        c.push_str(&format!("    (any_function)&{n},\n"));
    }
    c.push_str("  };\n  return every[0] == 0;\n}\n");
    let include = root().join("include");
    let lib = lib_dir();
    let shared = format!("-L{}", lib.display());
    cc(
        &c,
        &include,
        &[&shared, "-lpdipam"],
        &dir.join("check-shared"),
    )?;
    let archive = lib.join("libpdipam.a");
    let archive = archive.to_str().unwrap();
    cc(
        &c,
        &include,
        &[archive, "-lpthread", "-ldl", "-lm"],
        &dir.join("check-static"),
    )
}

fn baselines() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("ffi/abi"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pdipam-0.") && n.ends_with(".h"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_baseline_of_this_major_version_still_holds() {
    let all = baselines();
    assert!(!all.is_empty(), "ffi/abi holds the baseline headers");
    for baseline in all {
        let name = baseline.file_stem().unwrap().to_str().unwrap().to_string();
        if let Err(why) = check(&baseline, &name) {
            panic!("{} no longer holds:\n{why}", baseline.display());
        }
    }
}

#[test]
fn the_newest_baseline_is_this_abi_version() {
    let newest = baselines().pop().unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    let b = parse(&text);
    let minor = b
        .constants
        .iter()
        .find(|(n, _)| n == "PDIPAM_ABI_VERSION_MINOR")
        .unwrap()
        .1;
    assert_eq!(
        newest.file_name().unwrap().to_str().unwrap(),
        format!("pdipam-0.{minor}.h")
    );
    assert_eq!(minor, i64::from(pdipam_ffi::PDIPAM_ABI_VERSION_MINOR));
}

/// The check can fail: each kind of incompatible change, made to a copy of the baseline, is
/// caught (and an addition is not).
#[test]
fn incompatible_changes_are_caught() {
    let newest = baselines().pop().unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    let cases = [
        (
            "changed-parameter",
            "pdipam_status pdipam_subnet_alloc_prefix(const struct pdipam_subnet *subnet,\n                                         uint8_t len,",
            "pdipam_status pdipam_subnet_alloc_prefix(const struct pdipam_subnet *subnet,\n                                         uint16_t len,",
            true,
        ),
        (
            "changed-constant",
            "#define PDIPAM_STATUS_UNKNOWN_POD 200",
            "#define PDIPAM_STATUS_UNKNOWN_POD 199",
            true,
        ),
        (
            "changed-field",
            "  uint32_t cooldown_ms;",
            "  uint64_t cooldown_ms;",
            true,
        ),
        (
            "removed-function",
            "void pdipam_subnet_free(struct pdipam_subnet *subnet);",
            "void pdipam_subnet_free(struct pdipam_subnet *subnet);\nvoid pdipam_subnet_gone(struct pdipam_subnet *subnet);",
            true,
        ),
        (
            "added-in-library",
            "void pdipam_subnet_free(struct pdipam_subnet *subnet);",
            "",
            false,
        ),
    ];
    for (name, from, to, fails) in cases {
        assert!(text.contains(from), "{name}: the baseline holds {from:?}");
        let dir = work_dir(name);
        let changed = dir.join("pdipam-0.x.h");
        std::fs::write(&changed, text.replacen(from, to, 1)).unwrap();
        let result = check(&changed, name);
        assert_eq!(result.is_err(), fails, "{name}: {result:?}");
    }
}
