//! The warm-pool settings users already know, parsed the way the VPC CNI parses them.

use std::fmt;

/// WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET and WARM_PREFIX_TARGET (docs/rules.md, "Warm pools").
///
/// The defaults are the CNI's code defaults: WE = 1, the others 0 (unset). Every manifest the
/// CNI ships sets WARM_PREFIX_TARGET = 1; [`WarmSettings::shipped_manifest`] gives that.
///
/// Built from [`WarmSettings::new`] (those defaults), [`WarmSettings::shipped_manifest`] or
/// [`WarmSettings::parse`] and the setters, so that a field added later is not a breaking change:
///
/// ```
/// use pdipam::planner::WarmSettings;
///
/// let settings = WarmSettings::new().warm_ip_target(5).minimum_ip_target(10);
/// assert_eq!((settings.warm_eni_target, settings.warm_ip_target), (1, 5));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct WarmSettings {
    /// WARM_ENI_TARGET: spare interfaces' worth of addresses (secondary-IP mode).
    pub warm_eni_target: u32,
    /// WARM_IP_TARGET: spare addresses; 0 = unset.
    pub warm_ip_target: u32,
    /// MINIMUM_IP_TARGET: addresses attached at least; 0 = unset.
    pub minimum_ip_target: u32,
    /// WARM_PREFIX_TARGET: spare prefixes (prefix mode).
    pub warm_prefix_target: u32,
    /// The kubelet's maxPods when it differs from the recommended value of docs/rules.md, "Max pods".
    pub max_pods: Option<u32>,
}

impl Default for WarmSettings {
    fn default() -> Self {
        WarmSettings {
            warm_eni_target: 1,
            warm_ip_target: 0,
            minimum_ip_target: 0,
            warm_prefix_target: 0,
            max_pods: None,
        }
    }
}

impl WarmSettings {
    /// The CNI's code defaults: WARM_ENI_TARGET = 1, the others unset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`warm_eni_target`](Self::warm_eni_target).
    pub fn warm_eni_target(mut self, n: u32) -> Self {
        self.warm_eni_target = n;
        self
    }

    /// Sets [`warm_ip_target`](Self::warm_ip_target).
    pub fn warm_ip_target(mut self, n: u32) -> Self {
        self.warm_ip_target = n;
        self
    }

    /// Sets [`minimum_ip_target`](Self::minimum_ip_target).
    pub fn minimum_ip_target(mut self, n: u32) -> Self {
        self.minimum_ip_target = n;
        self
    }

    /// Sets [`warm_prefix_target`](Self::warm_prefix_target).
    pub fn warm_prefix_target(mut self, n: u32) -> Self {
        self.warm_prefix_target = n;
        self
    }

    /// Sets [`max_pods`](Self::max_pods).
    pub fn max_pods(mut self, max_pods: Option<u32>) -> Self {
        self.max_pods = max_pods;
        self
    }
}

/// A setting that was given but could not be used; the default took its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingWarning {
    /// The variable, e.g. `WARM_IP_TARGET`.
    pub name: &'static str,
    /// The text it had.
    pub value: String,
    /// The value used instead.
    pub fallback: u32,
}

impl fmt::Display for SettingWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is negative or not a number; using {}",
            self.name, self.value, self.fallback
        )
    }
}

impl WarmSettings {
    /// The settings of the CNI's shipped manifests: WARM_PREFIX_TARGET = 1, the rest default.
    pub fn shipped_manifest() -> Self {
        WarmSettings {
            warm_prefix_target: 1,
            ..Default::default()
        }
    }

    /// Whether WARM_IP_TARGET or MINIMUM_IP_TARGET is set; they then override WE and WP.
    pub fn ip_targets_set(&self) -> bool {
        self.warm_ip_target > 0 || self.minimum_ip_target > 0
    }

    /// Parses the four variables from `lookup` (a name to its value, if set). Empty or absent
    /// means unset (the default, silently); negative or unparsable text falls back to the default
    /// and is reported in the warnings.
    ///
    /// # Example
    /// ```
    /// use pdipam::planner::WarmSettings;
    /// let (s, warnings) = WarmSettings::parse(|name| match name {
    ///     "WARM_IP_TARGET" => Some("5".to_string()),
    ///     "WARM_ENI_TARGET" => Some("-1".to_string()),
    ///     _ => None,
    /// });
    /// assert_eq!((s.warm_ip_target, s.warm_eni_target), (5, 1));
    /// assert_eq!(warnings[0].to_string(), "WARM_ENI_TARGET=\"-1\" is negative or not a number; using 1");
    /// ```
    pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> (Self, Vec<SettingWarning>) {
        let mut out = WarmSettings::default();
        let mut warnings = Vec::new();
        let mut read = |name: &'static str, default: u32| -> u32 {
            let Some(text) = lookup(name) else {
                return default;
            };
            let t = text.trim();
            if t.is_empty() {
                return default;
            }
            match t.parse::<i64>() {
                Ok(v) if v >= 0 => u32::try_from(v).unwrap_or(u32::MAX),
                _ => {
                    warnings.push(SettingWarning {
                        name,
                        value: text.clone(),
                        fallback: default,
                    });
                    default
                }
            }
        };
        out.warm_eni_target = read("WARM_ENI_TARGET", out.warm_eni_target);
        out.warm_ip_target = read("WARM_IP_TARGET", out.warm_ip_target);
        out.minimum_ip_target = read("MINIMUM_IP_TARGET", out.minimum_ip_target);
        out.warm_prefix_target = read("WARM_PREFIX_TARGET", out.warm_prefix_target);
        (out, warnings)
    }

    /// [`parse`](WarmSettings::parse) over the process environment.
    pub fn from_env() -> (Self, Vec<SettingWarning>) {
        Self::parse(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (WarmSettings, Vec<SettingWarning>) {
        WarmSettings::parse(|n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn fallbacks_are_the_defaults_and_are_reported() {
        let (s, w) = parse(&[]);
        assert_eq!(s, WarmSettings::default());
        assert!(w.is_empty());
        let (s, w) = parse(&[
            ("WARM_ENI_TARGET", "0"),
            ("WARM_IP_TARGET", "abc"),
            ("MINIMUM_IP_TARGET", " 12 "),
            ("WARM_PREFIX_TARGET", "-2"),
        ]);
        assert_eq!(
            (
                s.warm_eni_target,
                s.warm_ip_target,
                s.minimum_ip_target,
                s.warm_prefix_target
            ),
            (0, 0, 12, 0)
        );
        let names: Vec<_> = w.iter().map(|w| w.name).collect();
        assert_eq!(names, ["WARM_IP_TARGET", "WARM_PREFIX_TARGET"]);
        assert_eq!(
            w[1].to_string(),
            "WARM_PREFIX_TARGET=\"-2\" is negative or not a number; using 0"
        );
        let (s, w) = parse(&[
            ("WARM_IP_TARGET", ""),
            ("WARM_PREFIX_TARGET", "99999999999"),
        ]);
        assert_eq!((s.warm_ip_target, s.warm_prefix_target), (0, u32::MAX));
        assert!(w.is_empty());
        assert!(!s.ip_targets_set());
        assert_eq!(WarmSettings::shipped_manifest().warm_prefix_target, 1);
    }
}
