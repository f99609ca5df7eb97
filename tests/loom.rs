//! loom models of the lock-free claim protocol, on subnets of one or two 64-unit words.
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom --target-dir target/loom`.
#![cfg(loom)]

use ipnet::IpNet;
use loom::sync::Arc;
use loom::thread;
use pdipam::{ReservedProfile, Subnet, SubnetOptions};
use std::net::IpAddr;

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(5, f)
}

fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    // Exhaustive search takes minutes per model; 5 preemptions cover every interleaving of the
    // two threads' CAS steps with the summary updates around them and run in seconds.
    b.preemption_bound = Some(bound);
    b.check(f);
}

fn subnet(cidr: &str) -> Arc<Subnet> {
    let opts = SubnetOptions::default().profile(ReservedProfile::None);
    Arc::new(Subnet::with_options(cidr.parse().unwrap(), opts).unwrap())
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn claim_claim_on_one_word() {
    model(|| {
        let s = subnet("10.0.0.0/30");
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.allocate_ip().unwrap());
        let a = s.allocate_ip().unwrap();
        let b = t.join().unwrap();
        assert_ne!(a, b);
        s.verify().unwrap();
    });
}

#[test]
fn claim_release_on_one_word() {
    model(|| {
        let s = subnet("10.0.0.0/30");
        let held: IpAddr = "10.0.0.0".parse().unwrap();
        s.allocate_ip_at(held).unwrap();
        s.allocate_ip_at("10.0.0.1".parse().unwrap()).unwrap();
        s.allocate_ip_at("10.0.0.2".parse().unwrap()).unwrap();
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.release_ip(held).unwrap());
        // Either .3 (free all along) or .0 (if the release came first): never a taken one.
        let got = s.allocate_ip().unwrap();
        t.join().unwrap();
        assert!(got == "10.0.0.3".parse::<IpAddr>().unwrap() || got == held);
        s.verify().unwrap();
    });
}

#[test]
fn release_and_reuse_do_not_hand_out_twice() {
    model(|| {
        let s = subnet("10.0.0.0/30");
        let p = s.allocate_prefix(31).unwrap().cidr;
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || {
            s2.release(p).unwrap();
            s2.allocate_prefix(31).unwrap().cidr
        });
        let mine = s.allocate_prefix(31).ok().map(|a| a.cidr);
        let theirs = t.join().unwrap();
        if let Some(m) = mine {
            assert_ne!(m, theirs);
        }
        s.verify().unwrap();
    });
}

#[test]
fn runs_next_to_a_word_boundary() {
    model(|| {
        // Two words: a /26 per word. One thread frees the low word's /27 that ends at the
        // boundary while the other claims a /26 and then a /27.
        let s = subnet("10.0.0.0/25");
        s.allocate_prefix_at(net("10.0.0.32/27")).unwrap();
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || s2.release(net("10.0.0.32/27")).unwrap());
        let whole = s.allocate_prefix(26).unwrap().cidr;
        let part = s.allocate_prefix(27).ok().map(|a| a.cidr);
        t.join().unwrap();
        if let Some(p) = part {
            assert!(!whole.contains(&p.addr()));
        }
        s.verify().unwrap();
    });
}

#[test]
fn a_completed_release_is_always_visible_to_the_next_claim() {
    // One word, four /28 lanes, all held. Three threads each release a lane and claim one: each
    // must succeed, since its own lane is free the moment its release returns. loom found the
    // interleaving where a release that looked like "no summary change" (another release had
    // not yet written its summary) left its lane invisible. Three threads make the state space
    // large, so this model uses a preemption bound of 3.
    model_bounded(3, || {
        let s = subnet("10.0.0.0/26");
        let lanes: Vec<IpNet> = (0..4)
            .map(|_| s.allocate_prefix(28).unwrap().cidr)
            .collect();
        let handles: Vec<_> = lanes[..3]
            .iter()
            .map(|&lane| {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    s.release(lane).unwrap();
                    s.allocate_prefix(28).expect("its own lane was free").cidr
                })
            })
            .collect();
        let mut got: Vec<IpNet> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.push(lanes[3]);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 4, "a lane was handed out twice");
        s.verify().unwrap();
    });
}
