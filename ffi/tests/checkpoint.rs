//! Checkpoints that conflict with themselves, loaded through the C ABI: the status a C caller
//! sees, and a stray pod kept in quarantine that holds its key.

use pdipam::{
    limits::InstanceLimits, persist::NodeCheckpoint, InterfaceFlags, InterfaceSpec, Node,
    NodeConfig, PodKey, PodRequest,
};
use pdipam_ffi::{
    pdipam_node, pdipam_node_assign, pdipam_node_free, pdipam_node_load, pdipam_prefix,
    PDIPAM_STATUS_CHECKPOINT_CONFLICT, PDIPAM_STATUS_KEY_CONFLICT, PDIPAM_STATUS_OK,
};
use std::ffi::CString;
use std::path::PathBuf;
use std::ptr;

/// An m5.large with one /28 and pods c0 and c1.
fn checkpoint() -> NodeCheckpoint {
    let node = Node::new(
        InstanceLimits::lookup("m5.large").unwrap().clone(),
        NodeConfig::default(),
    );
    node.attach_interface(
        InterfaceSpec::new("eni-0", 0, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags {
            primary: true,
            ..Default::default()
        }),
    )
    .unwrap();
    node.attach_prefix("eni-0", "10.0.1.16/28".parse().unwrap())
        .unwrap();
    for c in ["c0", "c1"] {
        node.assign(PodRequest::new(PodKey::new("aws-cni", c, "eth0")))
            .unwrap();
    }
    node.checkpoint(None)
}

fn path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pdipam-ffi-{}-{name}.json", std::process::id()))
}

/// Loads `cp` from a file through the C ABI: the status, the quarantine count and the node.
fn load(cp: &NodeCheckpoint, name: &str) -> (u32, usize, *mut pdipam_node) {
    let file = path(name);
    std::fs::write(&file, cp.to_bytes()).unwrap();
    let c_path = CString::new(file.to_str().unwrap()).unwrap();
    let mut quarantined = usize::MAX;
    let mut node: *mut pdipam_node = ptr::null_mut();
    // SAFETY: handles live until their _free; other pointers to live locals or CStrings.
    let status = unsafe { pdipam_node_load(c_path.as_ptr(), &mut quarantined, &mut node) };
    std::fs::remove_file(&file).unwrap();
    (status as u32, quarantined, node)
}

#[test]
fn the_same_key_or_address_twice_is_a_conflict() {
    let mut cp = checkpoint();
    let mut dup = cp.pods[0].clone();
    dup.container_id = "other".into();
    cp.pods.push(dup);
    let (status, _, node) = load(&cp, "address-twice");
    assert_eq!(status, PDIPAM_STATUS_CHECKPOINT_CONFLICT as u32);
    assert!(node.is_null());

    let mut cp = checkpoint();
    let mut dup = cp.pods[0].clone();
    dup.address = "10.0.1.30".parse().unwrap();
    cp.pods.push(dup);
    let (status, _, node) = load(&cp, "key-twice");
    assert_eq!(status, PDIPAM_STATUS_CHECKPOINT_CONFLICT as u32);
    assert!(node.is_null());
}

#[test]
fn a_stray_pod_is_quarantined_and_holds_its_key() {
    let mut cp = checkpoint();
    let mut stray = cp.pods[0].clone();
    stray.container_id = "stray".into();
    stray.address = "10.0.9.5".parse().unwrap();
    cp.pods.push(stray);
    let (status, quarantined, node) = load(&cp, "stray");
    assert_eq!(status, PDIPAM_STATUS_OK as u32);
    assert_eq!(quarantined, 1);
    let text = |s: &str| CString::new(s).unwrap();
    let (net, ifname) = (text("aws-cni"), text("eth0"));
    let mut out = pdipam_prefix {
        family: 0,
        len: 0,
        addr: [0; 16],
    };
    // SAFETY: the handle is live until its _free; the strings are NUL-terminated CStrings that
    // live to the end of the statement; `out` is a live local.
    let status = unsafe {
        pdipam_node_assign(
            node,
            net.as_ptr(),
            text("stray").as_ptr(),
            ifname.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status as u32, PDIPAM_STATUS_KEY_CONFLICT as u32);
    // SAFETY: the handle is live until its _free; the strings are NUL-terminated CStrings that
    // live to the end of the statement; `out` is a live local.
    let status = unsafe {
        pdipam_node_assign(
            node,
            net.as_ptr(),
            text("c9").as_ptr(),
            ifname.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status as u32, PDIPAM_STATUS_OK as u32);
    // SAFETY: handles live until their _free; other pointers to live locals or CStrings.
    unsafe { pdipam_node_free(node) };
}
