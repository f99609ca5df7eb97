//! Subnet CIDR reservations of a live fleet subnet: added and removed by a transaction on its
//! configuration key. Members learn of the change through their watch, or at their next claim:
//! every claim's transaction compares the configuration's revision, so a claim placed under the
//! old reservations loses its race and is placed again under the new ones.

use crate::error::FleetError;
use crate::etcd::Etcd;
use crate::keyspace::Keyspace;
use crate::subnet::read_config;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use ipnet::IpNet;
use pdipam::{Reservation, SubnetError};

/// Attempts before giving up when the configuration keeps changing under the call.
const ATTEMPTS: u32 = 100;

/// Adds `reservation` to the fleet subnet `cidr`. As in a `pdipam::Subnet`, space already
/// allocated stays allocated; automatic claims follow the new rules from then on.
///
/// # Errors
/// [`FleetError::Subnet`] with the subnet's refusal (outside, misaligned,
/// `ReservationOverlap`), [`FleetError::NotInitialised`], etcd's.
pub async fn add_reservation(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
    reservation: Reservation,
) -> Result<(), FleetError> {
    change(etcd, keys, cidr, |config| {
        let subnet = config
            .build()
            .map_err(|message| FleetError::Config { cidr, message })?;
        subnet.add_reservation(reservation.cidr, reservation.kind)?;
        config.reservations.push(reservation);
        config.reservations.sort_by_key(|r| r.cidr);
        Ok(())
    })
    .await
}

/// Removes the reservation `reserved` from the fleet subnet `cidr`; nothing is unassigned.
///
/// # Errors
/// [`FleetError::Subnet`] with `ReservationNotFound`, [`FleetError::NotInitialised`], etcd's.
pub async fn remove_reservation(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
    reserved: IpNet,
) -> Result<(), FleetError> {
    change(etcd, keys, cidr, |config| {
        let at = config
            .reservations
            .iter()
            .position(|r| r.cidr == reserved)
            .ok_or(SubnetError::ReservationNotFound {
                cidr: reserved,
                subnet: cidr,
            })?;
        config.reservations.remove(at);
        Ok(())
    })
    .await
}

/// Reads the configuration, applies `edit`, and writes it back if nobody changed it meanwhile.
async fn change(
    etcd: &Etcd,
    keys: &Keyspace,
    cidr: IpNet,
    edit: impl Fn(&mut crate::FleetConfig) -> Result<(), FleetError>,
) -> Result<(), FleetError> {
    let key = keys.config(cidr);
    for _ in 0..ATTEMPTS {
        let (mut config, revision) = read_config(etcd, keys, cidr, None).await?;
        edit(&mut config)?;
        let value = serde_json::to_vec(&config).expect("a configuration always serialises");
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                revision,
            )])
            .and_then([TxnOp::put(key.clone(), value, None)]);
        if etcd.call(etcd.client().txn(txn)).await?.succeeded() {
            return Ok(());
        }
    }
    Err(FleetError::Contention {
        cidr,
        attempts: ATTEMPTS,
    })
}
