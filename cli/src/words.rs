//! Counted nouns for reports: "1 interface", "3 interfaces".

/// `n` and the noun in the right number.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}
