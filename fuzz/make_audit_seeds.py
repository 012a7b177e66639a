#!/usr/bin/env python3
"""Writes the seed corpus of audit_verify_fuzzer: audit files in Ward's line format
(src/audit/chain.h, docs/audit.md), hash-chained and with checkpoints signed by the Ed25519 key
whose seed is 32 bytes of 's' (the key the fuzzer verifies with). Rerun after a format change:
    python3 fuzz/make_audit_seeds.py fuzz/corpus/audit_verify
"""
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

GENESIS = "0" * 64
KEY = Ed25519PrivateKey.from_private_bytes(b"s" * 32)


def line_hash(line):
    return hashlib.sha256(line.encode()).hexdigest()


def chain_line(record, seq, prev):
    body = json.dumps(record, separators=(",", ":"))[:-1]
    sep = "" if body == "{" else ","
    return f'{body}{sep}"seq":{seq},"prev_hash":"{prev}"}}'


def checkpoint_line(seq, prev, time):
    msg = f"ward-audit-checkpoint-v1\n{seq}\n{prev}\n{time}".encode()
    sig = KEY.sign(msg).hex()
    return f'{{"type":"checkpoint","seq":{seq},"hash":"{prev}","time":"{time}","sig":"{sig}"}}'


def request(i):
    return {"time": f"2023-11-14T22:13:{20 + i:02d}.000000000Z", "type": "request",
            "auth": {"client_token": "hmac-sha256:" + "ab" * 32, "accessor": "hmac-sha256:" + "cd" * 32,
                     "display_name": "root", "policies": ["root"], "token_type": "service"},
            "request": {"id": f"00000000-0000-4000-8000-{i:012d}", "operation": "update",
                        "mount_type": "kv", "mount_point": "secret/", "path": f"secret/data/app{i}",
                        "data": {"data": {"password": "hmac-sha256:" + "ef" * 32}},
                        "remote_address": "127.0.0.1", "remote_port": 40000}}


def response(i):
    r = request(i)
    r["type"] = "response"
    r["response"] = {"status_code": 200, "data": {"version": 1}}
    return r


def build(records, checkpoint_every, close=True):
    lines, prev, seq = [], GENESIS, 1
    since = 0
    for rec in records:
        line = chain_line(rec, seq, prev)
        lines.append(line)
        prev, seq, since = line_hash(line), seq + 1, since + 1
        if checkpoint_every and since == checkpoint_every:
            line = checkpoint_line(seq, prev, f"2023-11-14T22:14:{seq % 60:02d}.000000000Z")
            lines.append(line)
            prev, seq, since = line_hash(line), seq + 1, 0
    if close and since:
        line = checkpoint_line(seq, prev, "2023-11-14T22:15:00.000000000Z")
        lines.append(line)
    return lines


def main(out):
    os.makedirs(out, exist_ok=True)
    records = [f(i) for i in range(3) for f in (request, response)]
    files = {
        "intact.log": build(records, 4),
        "open_tail.log": build(records, 4, close=False),
        "one_record.log": build([request(0)], 0),
        "empty_object.log": build([{}], 0),
    }
    intact = files["intact.log"]
    files["modified.log"] = intact[:2] + [intact[2].replace("app1", "app9")] + intact[3:]
    files["removed.log"] = intact[:2] + intact[3:]
    files["reordered.log"] = intact[:1] + [intact[2], intact[1]] + intact[3:]
    bad_sig = intact[-1][:-10] + ("0" * 8) + intact[-1][-2:]
    files["bad_signature.log"] = intact[:-1] + [bad_sig]
    for name, lines in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write("".join(l + "\n" for l in lines))
    with open(os.path.join(out, "torn_tail.log"), "w") as f:
        f.write("".join(l + "\n" for l in intact) + intact[1][:40])
    with open(os.path.join(out, "no_final_newline.log"), "w") as f:
        f.write("\n".join(files["open_tail.log"]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/audit_verify")
