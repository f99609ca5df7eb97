//! Errors of the limits layer.

/// Why an instance type or a max-pods question could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// The instance type is not in the embedded table.
    #[error("unknown instance type {instance_type}{}", did_you_mean(.suggestions))]
    UnknownInstanceType {
        /// The name asked for.
        instance_type: String,
        /// Close known names, best first (possibly none).
        suggestions: Vec<String>,
    },
    /// The 110 / 250 cap depends on the vCPU count, which is unknown for this type: pdipam does
    /// not guess. Ask for the uncapped value (`show_max_allowed`) instead.
    #[error(
        "vCPUs of {instance_type} are unknown, so the 110/250 max-pods cap cannot be chosen \
         (uncapped: {uncapped}; ask for the max allowed value instead)"
    )]
    UnknownVcpus {
        /// The instance type.
        instance_type: String,
        /// The uncapped value, which is known.
        uncapped: u32,
    },
    /// A CNI version that is not `X.Y.Z` (an optional leading `v` and build suffix allowed).
    #[error("invalid CNI version {text:?}: expected X.Y.Z")]
    InvalidCniVersion {
        /// The text given.
        text: String,
    },
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}
