#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/TARGET/, not committed) from the published
# test vectors and sample files of the repository. Idempotent: a seed file is
# named by its content hash. Usage: scripts/fuzz-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" - <<'PY'
import binascii, hashlib, json, os, struct

root = os.getcwd()
corpus = os.path.join(root, "fuzz", "corpus")
counts = {}

def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1

def unhex(s):
    return binascii.unhexlify(s.replace(" ", ""))

def load(path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return json.load(f)

def text(path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()

apdu = load("crates/kf-apdu/tests/data/apdu-vectors.json")
replay = load("crates/kf-scp03/tests/data/scp03-replay-pysim-aes128.json")

commands = [unhex(c["hex"]) for c in apdu["commands"] + apdu["malformed_commands"] + apdu["builders"]]
responses = [unhex(sw["sw"]) for sw in apdu["status_words"]]
for case in replay["cases"]:
    inp = case["input"]
    seed("replay_script", json.dumps(inp, indent=1))
    seed("scp03_iu", unhex(inp["initialize_update_response"]))
    responses.append(unhex(inp["initialize_update_response"] + "9000"))
    for c in inp["commands"]:
        commands.append(unhex(c["apdu"]))
        if c.get("response"):
            responses.append(unhex(c["response"]))
    for c in case["expected"].get("commands", []):
        for v in c.values():
            if isinstance(v, str) and len(v) % 2 == 0:
                try:
                    commands.append(unhex(v))
                except binascii.Error:
                    pass
    ea = case["expected"].get("external_authenticate")
    if ea:
        commands.append(unhex(ea))

# ATRs: the virtual fob's contactless ATR, a T=0 ATR, one with every interface byte.
for atr in ["3B8A80018073C001C0544A434F50BB", "3B021450", "3B7111 00FF80", "3BF71100008131FE45A0000000"]:
    seed("atr", unhex(atr))

for c in commands:
    seed("apdu_command", c)
    for flags in (0x10, 0x11, 0x12, 0x13, 0x17, 0x1B, 0x00, 0x03):
        seed("scp03_card_unwrap", bytes([flags]) + c)
for r in responses:
    seed("apdu_response", r)
    for flags in (0x10, 0x11, 0x12, 0x13, 0x17, 0x1B, 0x00, 0x02):
        seed("scp03_host_unwrap", bytes([flags]) + r)

for t in apdu["tlv"] + apdu["tlv_malformed"]:
    for opt in (0x10, 0x90, 0x02):
        seed("ber_tlv", bytes([opt]) + unhex(t["hex"]))
for d in apdu["dgi"] + apdu["dgi_malformed"]:
    for split in (1, 3, 255):
        seed("dgi", bytes([split]) + unhex(d["hex"]))
seed("dgi", bytes([7]) + b"".join(unhex(d["hex"]) for d in apdu["dgi"]))

# The fob: flag byte, then length-prefixed APDUs.
def frames(*apdus):
    return b"".join(bytes([len(a)]) + a for a in apdus)
select_isd = unhex("00A4040008A000000151000000" + "00")
select_app = unhex("00A4040005A000000857" + "00")
iu = unhex("8050FF0008" + "5A" * 8 + "00")
seed("fob_apdu", bytes([0]) + frames(select_isd, iu))
seed("fob_apdu", bytes([0]) + frames(select_app, unhex("80CA006600"), unhex("80CA00CF00")))
seed("fob_apdu", bytes([0]) + frames(*[c for c in commands if len(c) < 256][:40]))
for flags in (1, 3):
    seed("fob_apdu", bytes([flags]) + frames(
        unhex("80E20000") + bytes([6]) + unhex("A00103010203"),
        unhex("80E28001") + bytes([5]) + unhex("A00202AABB"),
        unhex("80F24000024F0000"),
    ))
    for d in apdu["dgi"]:
        data = unhex(d["hex"])[:200]
        seed("fob_apdu", bytes([flags]) + frames(unhex("80E28000") + bytes([len(data)]) + data))

# Container packages: selector byte only (valid package, or one input emptied),
# and small splices.
for sel in range(16):
    seed("container_package", bytes([sel]))
    seed("container_package", bytes([sel, 0, 4, 1]) + b"\x00")
seed("container_package", bytes([0x08]) + b"FESN0001-SPID")
seed("container_package", bytes([0x09]) + b"FESN0001\n")
seed("container_package", bytes([0x0A]) + b"AAAAAAAAAAAAAAAAAAAAAA==")

uid = "04112233445566778899"
seed("klms_request_json", json.dumps({"fob_uid": uid, "reader_id": "LINE_04_READER_01"}))
seed("klms_request_json", '{"fob_uid":"0411","reader_id":"R1","reader_id":"R2"}')
dgi_tags = ["A001", "A002", "A003", "A004", "A005", "A006"]
package = {
    "transaction_id": "trx_0001",
    "fob_uid": uid,
    "key_version": 3,
    "scp03_static_keys": {"enc": "40" * 16, "mac": "41" * 16, "dek": "42" * 16},
    "ford_payload": {"apdu_cla_ins_p1_p2": "80E20000", "data_hex": "A00102AABB"},
    "personalization_dgis": [{"tag": t, "data_hex": "00" * 16, "encrypted": t == "A001"} for t in dgi_tags],
    "expires_at": "2099-01-01T00:00:00Z",
}
seed("klms_package_json", json.dumps(package))
seed("klms_package_json", json.dumps(dict(package, key_version=0)))

audit = text("crates/kf-perso/tests/data/klms_contract_audit_example.json")
seed("audit_json", audit)
chain = load("crates/kf-audit/tests/data/chain_v2.json")
for rec in chain["records"]:
    seed("audit_json", json.dumps(rec))
    seed("audit_json", json.dumps({"station_id": "LINE-04", "seq": rec["seq"], "link": rec["link"],
                                   "signature": "00" * 64}))
seed("audit_json", json.dumps({"accepted": True, "transaction_id": "trx_0001"}))

seed("config_station", text("packaging/windows/station.toml"))
seed("config_station", 'station_id = "S1"\n[source]\nkind = "klms"\n[klms]\nurl = "https://127.0.0.1:8443"\n')
seed("config_klms", """bind = "127.0.0.1:8443"
ca_cert = "ca.pem"
server_cert = "server.pem"
server_key = "server.key"
allowed_stations = ["LINE-04-PC-12"]
master_key_file = "master-key.hex"
key_version = 1
uid_len = 10
ttl_ms = 60000
ledger = "klms-ledger.db"

[limits]
max_connections = 1024

[content]
kind = "synthesized"
ica_cert = "fob-ica.pem"
ica_key = "fob-ica.key"
root_cert = "fob-root.pem"
""")
seed("config_klms", 'ca_cert="a"\nserver_cert="b"\nserver_key="c"\nallowed_stations=[]\nledger="l"\n[content]\nkind="container_pool"\ndir="p"\n')

# SKS: request frames of every method ID (two-byte length prefix), the
# published Appendix A values as response payloads, and DER from the vectors.
for method in range(0x00, 0x40):
    seed("sks_wire", struct.pack(">H", 1) + bytes([method]))
    seed("sks_response", bytes([method, 0]))
    seed("sks_response", bytes([method, 1, 0, 4]) + b"oops")
seed("sks_wire", b"".join(struct.pack(">H", 1) + bytes([m]) for m in range(0x00, 0x20)))
for line in text("crates/sks-core/tests/data/appendix_a.txt").splitlines():
    parts = line.split()
    if len(parts) == 2 and not line.startswith("#"):
        v = unhex(parts[1])
        seed("sks_response", bytes([0x01, 0, 0, len(v)]) + v)
        seed("sks_x509", bytes([len(v) // 2]) + v)
# A P-256 SPKI header with a point, and a certificate-shaped SEQUENCE.
spki = unhex("3059301306072A8648CE3D020106082A8648CE3D030107034200") + b"\x04" + bytes(range(64))
seed("sks_x509", bytes([len(spki)]) + spki)
seed("sks_x509", bytes([0]) + unhex("3082010A0282010100") + bytes(266))

for t, n in sorted(counts.items()):
    print(f"{t:22} {n:5} seeds")
PY
