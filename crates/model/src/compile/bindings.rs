//! Where a device sits: its own zone and addresses, or (a multi-homed device, whose profile
//! declares `interfaces`) one binding per interface, each with its address and zone. Every
//! binding becomes its own IR group (`DEVICE.INTERFACE`), so a flow of one interface is
//! compiled for that interface's address and zone only, and the back ends' spoofing checks
//! (address ↔ zone) see two separate bindings.

use ipnet::IpNet;

use crate::diag::{Code, Sink, Subject};
use crate::document::pos;
use crate::ir::{Mac, Zone};
use crate::profile::Profile;
use crate::raw::Spanned;
use crate::raw_site::{RawDevice, RawInterfaceBinding};

use super::claims::Claims;
use super::site::{claim, SiteCtx};

/// One place the device is bound: the whole device, or one of its interfaces.
pub(super) struct Binding {
    /// The IR group's id: the device id, or `DEVICE.INTERFACE`.
    pub group: String,
    pub interface: Option<String>,
    pub zone: String,
    pub addresses: Vec<IpNet>,
    pub macs: Vec<Mac>,
}

/// The device's bindings, each zone and address checked (inside its zone, claimed once).
/// Checked before the profile is known, so that a site with an unknown profile still hears
/// of its addresses; [`against_profile`] then compares the interfaces with the profile's.
pub(super) fn of_device(
    sink: &mut Sink,
    ctx: &SiteCtx,
    d: &RawDevice,
    claimed: &mut Claims,
) -> Vec<Binding> {
    if d.interfaces.is_empty() {
        let zone = match &d.zone {
            Some(z) => known_zone(sink, ctx, z),
            None => {
                sink.error_about(
                    Subject::Device(d.id.value.clone()),
                    pos(&d.id),
                    Code::MissingField,
                    format!("device `{}` names no zone", d.id.value),
                    "add `zone:` (or, for a device whose profile declares `interfaces`, bind each under `interfaces:`)",
                );
                None
            }
        };
        let addresses = super::site::addresses(sink, d, zone, claimed);
        return vec![Binding {
            group: d.id.value.clone(),
            interface: None,
            zone: d.zone.as_ref().map(|z| z.value.clone()).unwrap_or_default(),
            addresses,
            macs: crate::mac::device_macs(sink, d.mac.as_ref()),
        }];
    }
    // Per interface: the device's own zone, addresses and MAC would say nothing about which
    // interface they are.
    let mixed = d
        .zone
        .as_ref()
        .map(pos)
        .or_else(|| d.addresses.first().map(pos))
        .or_else(|| d.mac.as_ref().map(pos));
    if let Some(at) = mixed {
        sink.error_about(
            Subject::Device(d.id.value.clone()),
            at,
            Code::ZoneAndInterfaces,
            format!(
                "device `{}` binds its interfaces, and also gives a zone, addresses or MAC of its own",
                d.id.value
            ),
            "give `zone`, `address` (or `addresses`) and `mac` under each interface, and remove them from the device",
        );
    }
    d.interfaces
        .iter()
        .map(|(id, b)| interface(sink, ctx, d, id, b, claimed))
        .collect()
}

fn interface(
    sink: &mut Sink,
    ctx: &SiteCtx,
    d: &RawDevice,
    id: &str,
    b: &Spanned<RawInterfaceBinding>,
    claimed: &mut Claims,
) -> Binding {
    let group = format!("{}.{id}", d.id.value);
    let zone = known_zone(sink, ctx, &b.value.zone);
    let given: Vec<Spanned<String>> = b
        .value
        .address
        .iter()
        .chain(&b.value.addresses)
        .cloned()
        .collect();
    if b.value.address.is_some() && !b.value.addresses.is_empty() {
        sink.error(
            pos(b),
            Code::InvalidValue,
            format!(
                "interface `{id}` of device `{}` gives both `address` and `addresses`",
                d.id.value
            ),
            "write one address under `address`, or a list under `addresses`",
        );
    }
    if given.is_empty() {
        sink.error(
            pos(b),
            Code::MissingAddress,
            format!(
                "interface `{id}` of device `{}` lists no address",
                d.id.value
            ),
            "give the interface's address or prefix under `address`",
        );
    }
    let addresses = claim(sink, &group, &given, zone, claimed);
    Binding {
        group,
        interface: Some(id.to_string()),
        zone: b.value.zone.value.clone(),
        addresses,
        macs: crate::mac::device_macs(sink, b.value.mac.as_ref()),
    }
}

fn known_zone<'c>(sink: &mut Sink, ctx: &'c SiteCtx, z: &Spanned<String>) -> Option<&'c Zone> {
    crate::work::visit(ctx.zones.len());
    let zone = ctx.zones.iter().find(|x| x.id == z.value);
    if zone.is_none() {
        sink.error_about(
            Subject::Zone(z.value.clone()),
            pos(z),
            Code::UnknownZone,
            format!("zone `{}` is not declared", z.value),
            "declare it under `zones`",
        );
    }
    zone
}

/// The device's interfaces against its profile's: each bound interface declared, each
/// declared interface bound. A profile without interfaces takes the device's own binding.
pub(super) fn against_profile(sink: &mut Sink, d: &RawDevice, p: &Profile) {
    let declared: Vec<&str> = p.interfaces.iter().map(|i| i.id.as_str()).collect();
    for (id, b) in &d.interfaces {
        if p.interface(id).is_none() {
            let help = if declared.is_empty() {
                format!(
                    "profile `{}` declares no interfaces: give the device `zone:` and `addresses:`",
                    p.id
                )
            } else {
                format!(
                    "{} interfaces of profile `{}`: {}",
                    crate::suggest::did_you_mean(id, declared.iter().copied()),
                    p.id,
                    declared.join(", ")
                )
                .trim_start()
                .to_string()
            };
            sink.error_about(
                Subject::Interface(id.clone()),
                pos(b),
                Code::UnknownInterface,
                format!("profile `{}` has no interface `{id}`", p.id),
                help,
            );
        }
    }
    if declared.is_empty() {
        return;
    }
    if d.interfaces.is_empty() {
        sink.error_about(
            Subject::Interface(declared[0].to_string()),
            pos(&d.profile),
            Code::UnboundInterface,
            format!(
                "profile `{}` declares the device's interfaces ({}); device `{}` binds none",
                p.id,
                declared.join(", "),
                d.id.value
            ),
            format!(
                "bind each under `interfaces:`, e.g. `interfaces: {{{}: {{address: ..., zone: ...}}}}`, in place of `zone` and `addresses`",
                declared[0]
            ),
        );
        return;
    }
    for id in &declared {
        if !d.interfaces.contains_key(*id) {
            sink.error_about(
                Subject::Interface(id.to_string()),
                pos(&d.id),
                Code::UnboundInterface,
                format!(
                    "device `{}` leaves interface `{id}` of profile `{}` unbound",
                    d.id.value, p.id
                ),
                format!("add `{id}: {{address: ..., zone: ...}}` under the device's `interfaces:`"),
            );
        }
    }
}
