#!/usr/bin/env python3
"""Independent SCP03 vectors for the key sizes and forms no published
transcript covers: AES-192 and AES-256 static keys, every security level,
and commands whose wrapped form needs extended length.

Written from GlobalPlatform Card Specification v2.2 Amendment D (SCP03)
v1.1.1 alone, on the `cryptography` package's AES and CMAC, sharing no code
with the Rust implementation: §4.1.5 (data derivation: KDF in counter mode,
CMAC PRF, 11 zero bytes || constant || 00 || L || i || context), §6.2.1
(session keys), §6.2.2 (pseudo-random card challenge, cryptograms), §6.2.3
(EXTERNAL AUTHENTICATE MAC with a zero chaining value), §6.2.4 (C-MAC over
the chaining value and the modified header), §6.2.5 (R-MAC over the
chaining value, response data and SW), §6.2.6 (C-DECRYPTION: ICV from the
encryption counter, '80' padding), §6.2.7 (R-ENCRYPTION: ICV with '80' in the
counter block's first byte). Lengths above 255 use the extended Lc/Le forms
of ISO/IEC 7816-4 §5.1. S16, which later revisions of Amendment D add and
the v1.1.1 text does not have, is generated on this reading of it: 16-byte
challenges, cryptograms of L = '0080' and 16-byte C-MACs and R-MACs, the
same derivations otherwise.

Writes the cases in the replay format of `kf-station scp03 replay` (input
and expected output) to stdout. Usage:
    python3 scp03_vectors.py > ../data/scp03-independent.json
"""
import json

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def aes_cmac(key, data):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def aes_ecb(key, block):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def aes_cbc(key, iv, data, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def kdf(key, constant, bits, context):
    """§4.1.5: counter mode, CMAC PRF, counter after L."""
    out = b""
    for i in range(1, (bits + 127) // 128 + 1):
        data = bytes(11) + bytes([constant]) + b"\x00" + bits.to_bytes(2, "big") + bytes([i]) + context
        out += aes_cmac(key, data)
    return out[: bits // 8]


def pad(data):
    """§4.1.4: '80' then zeros to a multiple of 16."""
    data = data + b"\x80"
    return data + bytes(-len(data) % 16)


def unpad(data):
    data = data.rstrip(b"\x00")
    assert data.endswith(b"\x80")
    return data[:-1]


def encode(cla, ins, p1, p2, data, le):
    """ISO/IEC 7816-4 §5.1: short form when everything fits, else extended."""
    extended = len(data) > 255 or (le is not None and le > 256)
    out = bytes([cla, ins, p1, p2])
    if data:
        out += (b"\x00" + len(data).to_bytes(2, "big")) if extended else bytes([len(data)])
        out += data
    if le is not None:
        if extended:
            out += (b"" if data else b"\x00") + (le % 65536).to_bytes(2, "big")
        else:
            out += bytes([le % 256])
    return out


def parse(apdu):
    """Case 1-4, short or extended: (cla, ins, p1, p2, data, le)."""
    cla, ins, p1, p2, body = apdu[0], apdu[1], apdu[2], apdu[3], apdu[4:]
    if not body:
        return cla, ins, p1, p2, b"", None
    if len(body) == 1:
        return cla, ins, p1, p2, b"", body[0] or 256
    if body[0] == 0 and len(body) >= 3:
        if len(body) == 3:
            return cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536
        lc = int.from_bytes(body[1:3], "big")
        data = body[3 : 3 + lc]
        rest = body[3 + lc :]
        return cla, ins, p1, p2, data, (int.from_bytes(rest, "big") or 65536) if rest else None
    lc = body[0]
    data = body[1 : 1 + lc]
    rest = body[1 + lc :]
    return cla, ins, p1, p2, data, (rest[0] or 256) if rest else None


class Session:
    def __init__(self, keys, host_challenge, card_challenge, level):
        # S8 or S16: the length of challenges, cryptograms and MACs.
        self.n = len(host_challenge)
        enc, mac = keys["enc"], keys["mac"]
        bits = len(enc) * 8
        context = host_challenge + card_challenge
        self.s_enc = kdf(enc, 0x04, bits, context)
        self.s_mac = kdf(mac, 0x06, bits, context)
        self.s_rmac = kdf(mac, 0x07, bits, context)
        self.card_cryptogram = kdf(self.s_mac, 0x00, 8 * self.n, context)
        self.host_cryptogram = kdf(self.s_mac, 0x01, 8 * self.n, context)
        self.level = level
        self.chaining = bytes(16)
        self.counter = 0

    def c_mac(self, cla, ins, p1, p2, data, le):
        """§6.2.4: MAC over the chaining value and the header with Lc + MAC length."""
        # The header as transmitted: Lc is extended when the data or Le is.
        lc = len(data) + self.n
        extended = lc > 255 or (le is not None and le > 256)
        header = bytes([cla, ins, p1, p2]) + (b"\x00" + lc.to_bytes(2, "big") if extended else bytes([lc]))
        full = aes_cmac(self.s_mac, self.chaining + header + data)
        self.chaining = full
        return encode(cla, ins, p1, p2, data + full[: self.n], le)

    def external_authenticate(self):
        return self.c_mac(0x84, 0x82, self.level, 0x00, self.host_cryptogram, None)

    def wrap(self, apdu):
        cla, ins, p1, p2, data, le = parse(apdu)
        self.counter += 1
        cla = (cla & ~0x03 & ~0x08 & 0xFF) | 0x04
        if self.level & 0x02 and data:
            icv = aes_ecb(self.s_enc, self.counter.to_bytes(16, "big"))
            data = aes_cbc(self.s_enc, icv, pad(data))
        return self.c_mac(cla, ins, p1, p2, data, le)

    def card_response(self, plain_data, sw):
        """What the card returns for the command just wrapped (§6.2.5, §6.2.7)."""
        data = plain_data
        if self.level & 0x20 and data:
            block = bytearray(self.counter.to_bytes(16, "big"))
            block[0] = 0x80
            icv = aes_ecb(self.s_enc, bytes(block))
            data = aes_cbc(self.s_enc, icv, pad(data))
        if self.level & 0x10:
            data += aes_cmac(self.s_rmac, self.chaining + data + sw)[: self.n]
        return data + sw


def case(name, keys, level, commands, seq=b"\x00\x00\x2A", n=8):
    sd_aid = bytes.fromhex("A000000151000000")
    host_challenge = bytes.fromhex("F0E1D2C3B4A596870123456789ABCDEF")[:n]
    # Pseudo-random card challenge, "i" = 70 (§6.2.2.1).
    card_challenge = kdf(keys["enc"], 0x02, 8 * n, seq + sd_aid)
    session = Session(keys, host_challenge, card_challenge, level)
    iu = bytes.fromhex("00112233445566778899") + bytes([0x30, 0x03, 0x70]) + card_challenge + session.card_cryptogram + seq
    ea = session.external_authenticate()
    inputs, expected = [], []
    for apdu_hex, response_data_hex in commands:
        apdu = bytes.fromhex(apdu_hex)
        wrapped = session.wrap(apdu)
        item = {"apdu": apdu_hex}
        exp = {"wrapped": wrapped.hex().upper(), "response_valid": None, "response_plain": None}
        if level & 0x10:
            plain = bytes.fromhex(response_data_hex) + b"\x90\x00"
            item["response"] = session.card_response(bytes.fromhex(response_data_hex), b"\x90\x00").hex().upper()
            exp["response_valid"] = True
            exp["response_plain"] = plain.hex().upper()
        inputs.append(item)
        expected.append(exp)
    hexkeys = {k: v.hex().upper() for k, v in keys.items()}
    return {
        "source": f"independent Python (GPC Amendment D v1.1.1, cryptography): {name}",
        "input": {
            "static_keys": hexkeys,
            "host_challenge": host_challenge.hex().upper(),
            "initialize_update_response": iu.hex().upper(),
            "security_level": f"{level:02X}",
            "sd_aid": sd_aid.hex().upper(),
            "commands": inputs,
        },
        "expected": {
            "card_cryptogram_valid": True,
            "card_challenge_valid": True,
            "host_cryptogram": session.host_cryptogram.hex().upper(),
            "external_authenticate": ea.hex().upper(),
            "commands": expected,
        },
    }


def keyset(length):
    return {
        "enc": bytes((0x40 + i) % 256 for i in range(length)),
        "mac": bytes((0x80 + 3 * i) % 256 for i in range(length)),
        "dek": bytes((0xC0 + 5 * i) % 256 for i in range(length)),
    }


def store_data(p1, n, length, seed):
    data = bytes((seed + 7 * i) % 256 for i in range(length))
    return encode(0x80, 0xE2, p1, n, data, None).hex().upper()


COMMANDS = [
    ("80CA006600", "660C730A06082A864886FC6B0102"),  # GET DATA with Le
    ("80F22002024F0000", "E3104F07A0000001510000"),  # GET STATUS, data and Le
    ("80F08007", ""),  # SET STATUS, no data, no Le (case 1)
    (store_data(0x00, 0, 200, 1), ""),  # short, wraps to short (C-MAC) or extended (C-DEC)
    (store_data(0x00, 1, 250, 2), ""),  # wraps to extended at every level: 250 + 8 > 255
    (store_data(0x80, 2, 1000, 3), "0102"),  # extended before and after wrapping
    (encode(0x80, 0xCA, 0x00, 0x66, b"", 1000).hex().upper(), "00" * 300),  # extended Le only
]

cases = []
for bits in (192, 256):
    for level in (0x01, 0x03, 0x11, 0x13, 0x33):
        cases.append(case(f"AES-{bits}, level {level:02X}", keyset(bits // 8), level, COMMANDS))
# AES-128 at level 33 with the same commands: extended length at the key size
# the published transcripts use.
cases.append(case("AES-128, level 33", keyset(16), 0x33, COMMANDS))
# S16.
cases.append(case("AES-128, S16, level 33", keyset(16), 0x33, COMMANDS, n=16))
cases.append(case("AES-256, S16, level 13", keyset(32), 0x13, COMMANDS, n=16))

print(json.dumps({
    "about": "Generated by crates/kf-scp03/tests/independent/scp03_vectors.py; see its docstring. "
             "Not a card transcript: an implementation written separately from the specification text.",
    "cases": cases,
}, indent=1))
