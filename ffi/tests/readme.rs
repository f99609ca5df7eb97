//! The README's C and Go snippets are excerpts of the programs the tests compile and run
//! (`ffi/examples/example.c`, `ffi/go/example_test.go`): every line of each snippet appears in
//! its program, in the same order, so the README never shows code that does not run.

mod common;

use common::root;

/// The body of the README's first fenced block in `language`.
fn snippet(language: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("```{language}\n"))
        .unwrap_or_else(|| panic!("the README has a {language} block"))
        + language.len()
        + 4;
    let end = readme[start..].find("```").unwrap() + start;
    readme[start..end].to_string()
}

/// Checks that every non-empty line of `excerpt` is a line of `program` (both trimmed), in order.
fn is_excerpt(excerpt: &str, program: &str) -> Result<(), String> {
    let mut lines = program.lines().map(str::trim);
    for wanted in excerpt.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !lines.any(|l| l == wanted) {
            return Err(format!(
                "{wanted:?} is not in the program (or not in this order)"
            ));
        }
    }
    Ok(())
}

#[test]
fn the_c_snippet_is_an_excerpt_of_the_c_example() {
    let program = std::fs::read_to_string(root().join("ffi/examples/example.c")).unwrap();
    is_excerpt(&snippet("c"), &program).unwrap();
}

#[test]
fn the_go_snippet_is_an_excerpt_of_the_go_example() {
    let program = std::fs::read_to_string(root().join("ffi/go/example_test.go")).unwrap();
    is_excerpt(&snippet("go"), &program).unwrap();
}

#[test]
fn the_excerpt_check_can_fail() {
    assert!(is_excerpt("b\na", "a\nb\n").is_err(), "order matters");
    assert!(
        is_excerpt("c", "a\nb\n").is_err(),
        "a line not in the program"
    );
    assert!(is_excerpt("  a\n\nb", "a\nb\n").is_ok());
}
