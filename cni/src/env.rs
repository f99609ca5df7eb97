//! The CNI environment: which verb, for which container and interface, with which arguments.
//! Required variables are checked per verb as the specification lists them; a missing or
//! malformed one is error 4 naming the variable.

use crate::error::{code, CniError};
use std::collections::HashMap;

/// The verbs of CNI 1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Give the container its addresses.
    Add,
    /// Take them back.
    Del,
    /// Confirm the container still holds what ADD gave.
    Check,
    /// Which versions the plugin speaks.
    Version,
    /// Release every attachment not in `cni.dev/valid-attachments` (CNI 1.1).
    Gc,
    /// Can the plugin serve an ADD now (CNI 1.1)?
    Status,
}

impl Command {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            _ => return None,
        })
    }
}

/// The pod metadata a runtime passes in `CNI_ARGS` (Kubernetes runtimes pass these).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodArgs {
    /// `K8S_POD_NAMESPACE`.
    pub namespace: String,
    /// `K8S_POD_NAME`.
    pub pod_name: String,
    /// `IP`: addresses asked for (comma-separated, as host-local reads it), unparsed.
    pub ips: Vec<String>,
}

/// What one invocation was asked, from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The verb.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for VERSION, GC and STATUS).
    pub container_id: String,
    /// `CNI_IFNAME` (empty for VERSION, GC and STATUS).
    pub if_name: String,
    /// Pod metadata from `CNI_ARGS`.
    pub args: PodArgs,
}

fn invalid(message: String) -> CniError {
    CniError::new(code::INVALID_ENVIRONMENT, message)
}

impl Invocation {
    /// Reads the invocation from `get` (the process environment in production).
    ///
    /// # Errors
    /// Code 4 naming the variable that is missing or malformed.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let raw = get("CNI_COMMAND").ok_or_else(|| invalid("CNI_COMMAND is not set".into()))?;
        let command = Command::parse(&raw).ok_or_else(|| {
            invalid(format!(
                "CNI_COMMAND {raw:?} is not one of ADD, DEL, CHECK, VERSION, GC, STATUS"
            ))
        })?;
        let required = |name: &str| {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| invalid(format!("{name} is required for {raw} and is not set")))
        };
        let (container_id, if_name) = match command {
            Command::Add | Command::Check | Command::Del => {
                if command != Command::Del {
                    required("CNI_NETNS")?;
                }
                required("CNI_PATH")?;
                let c = required("CNI_CONTAINERID")?;
                check_container_id(&c)?;
                let i = required("CNI_IFNAME")?;
                check_if_name(&i)?;
                (c, i)
            }
            Command::Version | Command::Gc | Command::Status => (String::new(), String::new()),
        };
        let args = match get("CNI_ARGS") {
            Some(a) => parse_args(&a)?,
            None => PodArgs::default(),
        };
        Ok(Invocation {
            command,
            container_id,
            if_name,
            args,
        })
    }
}

/// The specification's rule for container ids and network names: a letter or digit, then
/// letters, digits, `_`, `.` and `-`.
pub(crate) fn is_cni_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_container_id(id: &str) -> Result<(), CniError> {
    if is_cni_identifier(id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "CNI_CONTAINERID {id:?} is invalid: it must start with a letter or digit and hold \
             only letters, digits, '_', '.' and '-'"
        )))
    }
}

/// Linux interface names: at most 15 bytes, not `.` or `..`, no `/`, `:` or white space.
fn check_if_name(name: &str) -> Result<(), CniError> {
    let bad = name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        Err(invalid(format!(
            "CNI_IFNAME {name:?} is not a valid interface name (at most 15 bytes; no '/', ':' \
             or spaces; not '.' or '..')"
        )))
    } else {
        Ok(())
    }
}

/// `CNI_ARGS` is `KEY=VALUE` pairs separated by `;`. Keys other than the pod's namespace and
/// name are the runtime's business and are ignored; a pair without `=` is malformed.
fn parse_args(raw: &str) -> Result<PodArgs, CniError> {
    let mut pairs = HashMap::new();
    for pair in raw.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            invalid(format!(
                "CNI_ARGS {raw:?} is malformed: {pair:?} is not KEY=VALUE"
            ))
        })?;
        pairs.insert(k, v);
    }
    let get = |k: &str| pairs.get(k).map(|v| v.to_string()).unwrap_or_default();
    Ok(PodArgs {
        namespace: get("K8S_POD_NAMESPACE"),
        pod_name: get("K8S_POD_NAME"),
        ips: get("IP")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Invocation, CniError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Invocation::from_env(|k| vars.get(k).cloned())
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
        ),
    ];

    #[test]
    fn add_reads_key_and_pod_metadata() {
        let i = from(ADD).unwrap();
        assert_eq!(i.command, Command::Add);
        assert_eq!(
            (i.container_id.as_str(), i.if_name.as_str()),
            ("abc123", "eth0")
        );
        assert_eq!(i.args.namespace, "default");
        assert_eq!(i.args.pod_name, "web-0");
        assert!(i.args.ips.is_empty());
        let vars: Vec<_> = ADD
            .iter()
            .map(|&(k, v)| {
                if k == "CNI_ARGS" {
                    (k, "IP=10.0.1.20, 2600::5")
                } else {
                    (k, v)
                }
            })
            .collect();
        assert_eq!(from(&vars).unwrap().args.ips, ["10.0.1.20", "2600::5"]);
    }

    #[test]
    fn each_missing_variable_is_named() {
        for missing in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"] {
            let vars: Vec<_> = ADD.iter().copied().filter(|(k, _)| *k != missing).collect();
            let e = from(&vars).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENVIRONMENT);
            assert!(e.message.contains(missing), "{e}");
        }
        // DEL needs no network namespace (it may be gone already).
        let del: Vec<_> = ADD
            .iter()
            .map(|&(k, v)| {
                if k == "CNI_COMMAND" {
                    (k, "DEL")
                } else {
                    (k, v)
                }
            })
            .filter(|(k, _)| *k != "CNI_NETNS")
            .collect();
        assert_eq!(from(&del).unwrap().command, Command::Del);
        // VERSION, GC and STATUS need only the verb.
        for verb in ["VERSION", "GC", "STATUS"] {
            assert!(from(&[("CNI_COMMAND", verb)]).is_ok(), "{verb}");
        }
    }

    #[test]
    fn malformed_values_are_named() {
        let with = |k: &str, v: &str| {
            let vars: Vec<_> = ADD
                .iter()
                .map(|&(kk, vv)| if kk == k { (kk, v) } else { (kk, vv) })
                .collect();
            from(&vars).unwrap_err()
        };
        assert!(with("CNI_COMMAND", "ATTACH").message.contains("\"ATTACH\""));
        assert!(with("CNI_CONTAINERID", "-x").message.contains("\"-x\""));
        assert!(with("CNI_CONTAINERID", "a/b").message.contains("\"a/b\""));
        assert!(with("CNI_IFNAME", "a-very-long-ifname")
            .message
            .contains("CNI_IFNAME"));
        assert!(with("CNI_IFNAME", "..").message.contains("CNI_IFNAME"));
        for bad in [".", "a/b", "a:b", "a b", "sixteen-bytes-xx"] {
            assert!(
                with("CNI_IFNAME", bad).message.contains("CNI_IFNAME"),
                "{bad}"
            );
        }
        // Fifteen bytes is the longest name Linux takes; dots inside a name are fine.
        for good in ["fifteen-bytes-x", "eth0.100", "..x"] {
            let vars: Vec<_> = ADD
                .iter()
                .map(|&(k, v)| if k == "CNI_IFNAME" { (k, good) } else { (k, v) })
                .collect();
            assert_eq!(from(&vars).unwrap().if_name, good);
        }
        assert!(with("CNI_ARGS", "K8S_POD_NAME")
            .message
            .contains("K8S_POD_NAME"));
        assert!(from(&[]).unwrap_err().message.contains("CNI_COMMAND"));
    }
}
