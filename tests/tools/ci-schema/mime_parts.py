"""Reads a MIME multipart user-data (or vendor-data) file as cloud-init does: splits it with
cloudinit.user_data.UserDataProcessor (what Init.consume_data runs) and merges its
text/cloud-config parts with cloud-init's own handler (handlers/cloud_config.py
CloudConfigPartHandler: Merge-Type headers and merge_how honoured, DEF_MERGERS otherwise).
Prints JSON: {"parts": [{"type", "filename", "payload", "merge-type"}], "cloud-config": {...}}.
Run with the system python3 and PYTHONPATH pointing at an unpacked cloud-init.
Usage: mime_parts.py FILE"""
import json
import shutil
import sys
import tempfile

from cloudinit import handlers, helpers, util
from cloudinit.handlers.cloud_config import CloudConfigPartHandler
from cloudinit.user_data import UserDataProcessor

tmp = tempfile.mkdtemp(prefix="phx-mime-")
try:
    paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
    with open(sys.argv[1], "rb") as f:
        msg = UserDataProcessor(paths).process(f.read())
    handler = CloudConfigPartHandler(paths)
    handler.handle_part(None, handlers.CONTENT_START, None, None, None, None)
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        payload = util.fully_decoded_payload(part)
        parts.append({"type": ctype, "filename": part.get_filename(), "payload": payload,
                      "merge-type": part.get("Merge-Type")})
        if ctype == "text/cloud-config":
            handler.handle_part(None, ctype, part.get_filename(), payload, None,
                                dict(part.items()))
    print(json.dumps({"parts": parts, "cloud-config": handler.cloud_buf}))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
