"""Reads a cidata seed directory (an extracted seed ISO) exactly as cloud-init's NoCloud
datasource reads its mounted `cidata` device (DataSourceNoCloud: util.pathprefix2dict with
required user-data/meta-data, optional network-config, then _merge_new_seed) and prints JSON:
{"meta-data": {...}, "network-config": {...}, "user-data-sha256": "...",
 "user-data-is-cloud-config": bool, "vendor-data-sha256": "..." or null}. Run with the system python3 and PYTHONPATH pointing at an
unpacked cloud-init. Usage: nocloud_seed.py DIR"""
import hashlib
import json
import sys

from cloudinit import util
from cloudinit.sources import DataSourceNoCloud

seeded = util.pathprefix2dict(sys.argv[1], required=["user-data", "meta-data"],
                              optional=["vendor-data", "network-config"])
data = DataSourceNoCloud._merge_new_seed({"meta-data": {}}, seeded)
ud = data["user-data"]
if isinstance(ud, str):
    ud = ud.encode("utf-8")
vd = data.get("vendor-data")
if isinstance(vd, str):
    vd = vd.encode("utf-8")
print(json.dumps({
    "meta-data": data["meta-data"],
    "network-config": data.get("network-config"),
    "user-data-sha256": hashlib.sha256(ud).hexdigest(),
    "user-data-is-cloud-config": ud.startswith(b"#cloud-config\n"),
    "vendor-data-sha256": hashlib.sha256(vd).hexdigest() if vd else None,
}))
