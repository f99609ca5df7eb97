//! A checkpoint write that fails: the call reports an I/O error (code 5), prints no result, and
//! the state on disk is what it was. In-process, through `pdipam_cni::run`, with pdipam's
//! injected write failure (its own test binary: the injection is process-wide).

mod common;

use common::*;
use pdipam_cni::env::Invocation;
use serde_json::json;

fn run(
    verb: &str,
    container: &str,
    conf: &serde_json::Value,
) -> Result<Option<String>, pdipam_cni::CniError> {
    let env = env_for(verb, container);
    let inv = Invocation::from_env(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap();
    pdipam_cni::run(&inv, conf.to_string().as_bytes())
}

#[test]
fn a_failed_write_is_an_error_with_no_result_and_no_change() {
    let dir = DataDir::new("failed-write");
    let conf = network(
        "1.0.0",
        dir.path(),
        json!({"prefixes": ["10.0.1.16/28"], "subnets": ["10.0.0.0/22"]}),
    );
    let first = run("ADD", "c1", &conf).unwrap().unwrap();
    assert!(first.contains("10.0.1.16/22"), "{first}");
    let before = stored_pods(dir.path(), "ipv4");

    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = run("ADD", "c2", &conf).unwrap_err();
    assert_eq!(e.code, 5, "{e}");
    assert!(e.message.contains("ipv4.checkpoint"), "{e}");
    assert_eq!(
        stored_pods(dir.path(), "ipv4"),
        before,
        "the stored pods changed"
    );

    pdipam::testing::fail_next_checkpoint_writes(1);
    let e = run("DEL", "c1", &conf).unwrap_err();
    assert_eq!(e.code, 5, "{e}");
    assert_eq!(
        stored_pods(dir.path(), "ipv4"),
        before,
        "the stored pods changed"
    );

    // Nothing was lost or half done: c1 still holds .16, c2 gets .17 now.
    assert!(run("CHECK", "c1", &conf).is_ok());
    let second = run("ADD", "c2", &conf).unwrap().unwrap();
    assert!(second.contains("10.0.1.17/22"), "{second}");
}
