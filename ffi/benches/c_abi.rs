//! What the C ABI adds to a call: one /28 allocate + release and one pod assign + release,
//! through the `extern "C"` functions (as C calls them) beside the same work through the Rust
//! API. `cargo bench -p pdipam-ffi --bench c_abi`.

use criterion::{criterion_group, criterion_main, Criterion};
use pdipam::{
    limits::InstanceLimits, InterfaceFlags, InterfaceSpec, Node, NodeConfig, PodKey, PodRequest,
    Subnet,
};
use pdipam_ffi as c;
use std::ffi::CString;
use std::hint::black_box;
use std::time::Duration;

const SUBNET: &str = "10.0.0.0/16";

fn subnet_pair(crit: &mut Criterion) {
    let mut g = crit.benchmark_group("c_abi/subnet_alloc_release_28");
    let rust = Subnet::new(SUBNET.parse().unwrap()).unwrap();
    g.bench_function("rust", |b| {
        b.iter(|| {
            let a = rust.allocate_prefix(black_box(28)).unwrap();
            rust.release(a.cidr).unwrap();
        })
    });
    let mut cidr = c::pdipam_prefix {
        family: 0,
        len: 0,
        addr: [0; 16],
    };
    let text = CString::new(SUBNET).unwrap();
    assert_eq!(
        // SAFETY: handles live until their _free at the end; other pointers to live locals.
        unsafe { c::pdipam_prefix_parse(text.as_ptr(), &mut cidr) },
        c::PDIPAM_STATUS_OK
    );
    let mut handle = std::ptr::null_mut();
    assert_eq!(
        // SAFETY: handles live until their _free at the end; other pointers to live locals.
        unsafe { c::pdipam_subnet_new(&cidr, &mut handle) },
        c::PDIPAM_STATUS_OK
    );
    g.bench_function("c_abi", |b| {
        b.iter(|| {
            let mut p = c::pdipam_prefix {
                family: 0,
                len: 0,
                addr: [0; 16],
            };
            // SAFETY: handles live until their _free at the end; other pointers to live locals.
            let s = unsafe { c::pdipam_subnet_alloc_prefix(handle, black_box(28), &mut p) };
            assert_eq!(s, c::PDIPAM_STATUS_OK);
            // SAFETY: handles live until their _free at the end; other pointers to live locals.
            assert_eq!(
                unsafe { c::pdipam_subnet_release(handle, &p) },
                c::PDIPAM_STATUS_OK
            );
        })
    });
    // SAFETY: handles live until their _free at the end; other pointers to live locals.
    unsafe { c::pdipam_subnet_free(handle) };
    g.finish();
}

fn node_config() -> NodeConfig {
    NodeConfig::new().cooldown(Duration::ZERO)
}

fn node_pair(crit: &mut Criterion) {
    let mut g = crit.benchmark_group("c_abi/node_assign_release");
    let limits = InstanceLimits::lookup("m5.large").unwrap().clone();
    let rust = Node::new(limits, node_config());
    rust.attach_interface(
        InterfaceSpec::new("eni-0", 0, "10.0.0.10".parse().unwrap()).flags(InterfaceFlags {
            primary: true,
            ..Default::default()
        }),
    )
    .unwrap();
    rust.attach_prefix("eni-0", "10.0.1.16/28".parse().unwrap())
        .unwrap();
    let keys: Vec<PodKey> = (0..1024)
        .map(|i| PodKey::new("net", format!("c{i}"), "eth0"))
        .collect();
    let mut i = 0;
    g.bench_function("rust", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            rust.assign(PodRequest::new(keys[i].clone())).unwrap();
            rust.release(&keys[i]).unwrap();
        })
    });

    let mut node = std::ptr::null_mut();
    let ty = CString::new("m5.large").unwrap();
    let cfg = c::pdipam_node_config {
        mode: c::PDIPAM_MODE_PREFIX,
        family: 4,
        custom_networking: 0,
        cooldown_ms: 0,
        max_eni: 0,
    };
    assert_eq!(
        // SAFETY: handles live until their _free at the end; other pointers to live locals.
        unsafe { c::pdipam_node_new_with(ty.as_ptr(), &cfg, &mut node) },
        c::PDIPAM_STATUS_OK
    );
    let parse = |t: &str| {
        let mut p = c::pdipam_prefix {
            family: 0,
            len: 0,
            addr: [0; 16],
        };
        let t = CString::new(t).unwrap();
        assert_eq!(
            // SAFETY: handles live until their _free at the end; other pointers to live locals.
            unsafe { c::pdipam_prefix_parse(t.as_ptr(), &mut p) },
            c::PDIPAM_STATUS_OK
        );
        p
    };
    let eni = CString::new("eni-0").unwrap();
    assert_eq!(
        // SAFETY: handles live until their _free at the end; other pointers to live locals.
        unsafe { c::pdipam_node_attach_interface(node, eni.as_ptr(), 0, &parse("10.0.0.10")) },
        0
    );
    assert_eq!(
        // SAFETY: handles live until their _free at the end; other pointers to live locals.
        unsafe { c::pdipam_node_attach_prefix(node, eni.as_ptr(), &parse("10.0.1.16/28")) },
        0
    );
    let net = CString::new("net").unwrap();
    let eth0 = CString::new("eth0").unwrap();
    let ids: Vec<CString> = (0..1024)
        .map(|i| CString::new(format!("c{i}")).unwrap())
        .collect();
    let mut j = 0;
    g.bench_function("c_abi", |b| {
        b.iter(|| {
            j = (j + 1) % ids.len();
            let mut a = c::pdipam_prefix {
                family: 0,
                len: 0,
                addr: [0; 16],
            };
            let s =
                // SAFETY: handles live until their _free at the end; other pointers to live locals.
                unsafe { c::pdipam_node_assign(node, net.as_ptr(), ids[j].as_ptr(), eth0.as_ptr(), &mut a) };
            assert_eq!(s, c::PDIPAM_STATUS_OK);
            // SAFETY: handles live until their _free at the end; other pointers to live locals.
            unsafe { c::pdipam_node_release(node, net.as_ptr(), ids[j].as_ptr(), eth0.as_ptr(), &mut a) }
        })
    });
    // SAFETY: handles live until their _free at the end; other pointers to live locals.
    unsafe { c::pdipam_node_free(node) };
    g.finish();
}

criterion_group!(benches, subnet_pair, node_pair);
criterion_main!(benches);
