"""Prints one line summarising how cloud-init's own network-config v2 parser reads FILE:
`<name> <mac> static <addr>/<prefix> route <net>/<prefix> via <gw> dns <a,b> search <a,b>`
or `<name> <mac> dhcp4` (several subnets in a row; an IPv6 one without an address, dhcp6 or
ipv6_slaac, by its type). Run with the system python3 and PYTHONPATH pointing at an unpacked
cloud-init (tests/integration/test_cloudinit_schema.py does). Usage: netcfg_summary.py FILE"""
import sys

import yaml
from cloudinit.net import network_state

cfg = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
ns = network_state.parse_net_config_data(cfg, skip_broken=False)
for iface in ns.iter_interfaces():
    out = [iface["name"], iface["mac_address"] or "-"]
    for sub in iface["subnets"]:
        if sub["type"] in ("dhcp", "dhcp4"):
            out.append("dhcp4")
            continue
        if "address" not in sub:  # dhcp6, ipv6_slaac, ...: no address of its own
            out.append(sub["type"])
            continue
        out += [sub["type"], "%s/%s" % (sub["address"], sub["prefix"])]
        for r in sub.get("routes", []):
            out += ["route", "%s/%s" % (r["network"], r["prefix"]), "via", r["gateway"]]
        if sub.get("dns_nameservers"):
            out += ["dns", ",".join(sub["dns_nameservers"])]
        if sub.get("dns_search"):
            out += ["search", ",".join(sub["dns_search"])]
    print(" ".join(out))
