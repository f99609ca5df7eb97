//! Only those who belong get in: etcd with TLS and client certificates (`--client-cert-auth`,
//! certificates made by the test with rcgen), and etcd's users with a role limited to pdipam's
//! keyspace. Secrets come from files and never appear in an error.

mod common;

use common::{net, runtime, EtcdServer};
use etcd_client::{Permission, PutOptions};
use pdipam_fleet::{Credentials, Etcd, FleetConfig, FleetError, FleetSubnet, Keyspace, Member};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Joins, opens and claims a /28 under `keys`: the fleet works over `etcd`.
async fn claim_one(etcd: &Etcd, keys: &Keyspace) {
    let cidr = net("10.8.0.0/24");
    FleetSubnet::init(etcd, keys, &FleetConfig::new(cidr))
        .await
        .unwrap();
    let me = Member::join(etcd, keys, "node-1", Duration::from_secs(10))
        .await
        .unwrap();
    let subnet = FleetSubnet::open(etcd, keys, cidr, &me).await.unwrap();
    let p = subnet.allocate_prefix(28).await.unwrap();
    subnet.release(p).await.unwrap();
    me.leave(etcd).await.unwrap();
}

#[test]
fn tls_with_client_certificates_lets_in_only_certificates_the_ca_signed() {
    let Some(server) = EtcdServer::start_tls("tls") else {
        return;
    };
    let certs = server.certs.as_ref().unwrap();
    let endpoints = server.endpoints();
    let rt = runtime();
    rt.block_on(async {
        let etcd = Etcd::connect_with(&endpoints, TIMEOUT, &certs.credentials())
            .await
            .unwrap();
        claim_one(&etcd, &Keyspace::new("")).await;

        // No client certificate, or one of another CA: refused, naming the endpoint.
        for (what, credentials) in [
            (
                "no client certificate",
                Credentials::new().ca_file(&certs.ca),
            ),
            (
                "another CA's certificate",
                Credentials::new()
                    .ca_file(&certs.ca)
                    .client_cert(&certs.rogue.0, &certs.rogue.1),
            ),
        ] {
            let e = Etcd::connect_with(&endpoints, TIMEOUT, &credentials)
                .await
                .err()
                .unwrap_or_else(|| panic!("{what}: let in"));
            assert!(matches!(e, FleetError::Rejected { .. }), "{what}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(&server.endpoint)
                    && text.contains("refuses this client's certificate"),
                "{what}: {text}"
            );
        }
        // Plain http to a TLS etcd, https without the CA, a missing file: named, no connection.
        let plain = vec![server.endpoint.replace("https://", "http://")];
        let e = Etcd::connect_with(&plain, TIMEOUT, &certs.credentials())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("are not https://"), "{e}");
        let e = Etcd::connect_with(&endpoints, TIMEOUT, &Credentials::new())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("give the CA file"), "{e}");
        let missing = certs.ca.with_file_name("missing.pem");
        let e = Etcd::connect_with(&endpoints, TIMEOUT, &Credentials::new().ca_file(&missing))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&e, FleetError::Credentials { message } if message.contains("missing.pem")),
            "{e}"
        );
    });
}

#[test]
fn an_etcd_user_limited_to_pdipams_keyspace_runs_the_fleet_and_nothing_else() {
    let Some(server) = EtcdServer::start("auth") else {
        return;
    };
    let keys = Keyspace::new("/clusters/prod");
    let dir = std::env::temp_dir().join(format!("pdipam-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "s3cret-pw-9f2";
    let password = dir.join("node.password");
    std::fs::write(&password, format!("{secret}\n")).unwrap();
    let wrong = dir.join("wrong.password");
    std::fs::write(&wrong, "not-it\n").unwrap();
    let rt = runtime();
    rt.block_on(async {
        // The operator's set-up, as `etcdctl user add / role add / role grant-permission
        // --prefix / auth enable` does it.
        let admin = server.connect(TIMEOUT).await;
        let mut c = admin.client();
        c.user_add("root", "root-pw", None).await.unwrap();
        c.user_grant_role("root", "root").await.unwrap();
        c.role_add("pdipam").await.unwrap();
        c.role_grant_permission("pdipam", Permission::read_write(keys.all()).with_prefix())
            .await
            .unwrap();
        c.user_add("node", secret, None).await.unwrap();
        c.user_grant_role("node", "pdipam").await.unwrap();
        c.put("/elsewhere/secret", "x", None).await.unwrap();
        c.auth_enable().await.unwrap();

        let endpoints = server.endpoints();
        let etcd = Etcd::connect_with(
            &endpoints,
            TIMEOUT,
            &Credentials::new().user("node", &password),
        )
        .await
        .unwrap();
        claim_one(&etcd, &keys).await;
        // Outside the keyspace: neither read nor written.
        let read = etcd
            .call(etcd.client().get("/elsewhere/secret", None))
            .await;
        assert!(read.is_err(), "read outside the keyspace");
        let write = etcd
            .call(
                etcd.client()
                    .put("/elsewhere/other", "x", Some(PutOptions::new())),
            )
            .await;
        assert!(write.is_err(), "wrote outside the keyspace");
        // The same keyspace under another root is outside too.
        let other = Keyspace::new("/clusters/test");
        let e = FleetSubnet::init(&etcd, &other, &FleetConfig::new(net("10.9.0.0/24")))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{e}");

        // A wrong password: refused, naming the endpoint and not the password.
        let e = Etcd::connect_with(
            &endpoints,
            TIMEOUT,
            &Credentials::new().user("node", &wrong),
        )
        .await
        .err()
        .unwrap();
        let text = format!("{e} {e:?}");
        assert!(text.contains(&server.endpoint), "{text}");
        assert!(!text.contains("not-it") && !text.contains(secret), "{text}");
    });
    std::fs::remove_dir_all(dir).unwrap();
}
