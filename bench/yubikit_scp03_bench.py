#!/usr/bin/env python3
"""Peer benchmark: yubikit's SCP03 host, per APDU.

Measures what yubikit's ``ScpProcessor.send_apdu`` does for one APDU on the
host side, with the transport replaced by a list of precomputed card
responses:

    encrypt the command data (C-DECRYPTION, ICV from the counter)
    -> format the APDU and compute the C-MAC (chained)
    -> format the wire APDU (what ApduFormatProcessor hands the connection)
    -> check the R-MAC and decrypt the response (R-ENCRYPTION)

Workloads (``--levels``):

* ``33``: the level yubikit always negotiates (C-DEC, C-MAC, R-MAC, R-ENC);
  STORE DATA ``80 E2 90 00`` with N bytes, response N bytes + '9000'.
* ``03``: C-DEC + C-MAC work only. yubikit cannot negotiate level '03' (it
  always sends EXTERNAL AUTHENTICATE with P1 '33'), but its per-APDU path for
  a response that is a bare '9000' (what a level-03 card sends) is exactly
  C-DEC + C-MAC: the R-MAC check and decryption are skipped for empty
  responses.

Card responses are computed before the timer starts, in batches, by a card
emulation written here with ``cryptography`` directly (R-ENC with the
response ICV, R-MAC chained on the C-MAC of the command, GPC Amd D §6.2.5,
§6.2.7) that tracks a second, identical yubikit session (the "shadow"),
so every response is the one the measured session expects.

The session is opened with yubikit's own ``ScpState.scp03_init`` on the
INITIALIZE UPDATE response given with ``--iu-response`` (the kf-bench
``peer-compare`` binary passes the response of kf-scp03's card, so yubikit
verifies our card cryptogram), followed by EXTERNAL AUTHENTICATE through
``ScpProcessor`` as ``SmartCardProtocol._scp03_init`` does. The first wrapped
command of each level-33 workload is printed (``first_command_hex``) so the
Rust side can check that both hosts produce identical bytes.

Output: one JSON object on stdout with the median per-APDU time in ns for
each workload (median over rounds of round time / batch size). Timing uses
``time.perf_counter_ns`` with the garbage collector disabled during each
timed batch (as ``timeit`` does). Unless ``--batch`` is given, the batch size
is calibrated so that one batch takes about ``--batch-us`` microseconds (the
Rust side does the same): on a loaded machine a batch much longer than a
scheduler time slice is inflated by waiting for other processes, so both
sides use batches of equal duration and the median picks uninterrupted ones.
``median_thread_cpu_ns`` (thread CPU time per APDU) is reported for
information.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time

try:
    from importlib.metadata import version as package_version

    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from yubikit.core.smartcard import ApduProcessor, ScpProcessor, ShortApduFormatter
    from yubikit.core.smartcard.scp import (
        KeyRef,
        Scp03KeyParams,
        ScpKid,
        ScpState,
        StaticKeys,
    )
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"yubikit_scp03_bench: {exc}; install the peer with "
        "`python3 -m pip install yubikey-manager`\n"
    )
    sys.exit(2)

# Defaults equal kf-bench's fixtures (crates/kf-bench/src/fixtures.rs).
DEFAULT_ENC = "404142434445464748494A4B4C4D4E4F"
DEFAULT_MAC = "505152535455565758595A5B5C5D5E5F"
DEFAULT_DEK = "606162636465666768696A6B6C6D6E6F"
DEFAULT_KVN = 0x30
DEFAULT_HOST_CHALLENGE = "0102030405060708"
DEFAULT_CARD_CHALLENGE = "C1C2C3C4C5C6C7C8"
COMMAND_FILL = 0x5A
RESPONSE_FILL = 0xA5
SW_OK = 0x9000
STORE_DATA = (0x80, 0xE2, 0x90, 0x00)


def _cmac(key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def _scp03_kdf(key: bytes, constant: int, l_bits: int, context: bytes) -> bytes:
    # GPC Amd D §4.1.5: label (11 x 00 | constant) | 00 | L | i=01 | context
    label = bytes(11) + bytes([constant, 0]) + l_bits.to_bytes(2, "big") + b"\x01"
    return _cmac(key, label + context)[: l_bits // 8]


def emulated_iu_response(keys: StaticKeys, kvn: int, host_ch: bytes, card_ch: bytes):
    """INITIALIZE UPDATE response data of a card with "i" = '60' (no counter)."""
    s_mac = _scp03_kdf(keys.key_mac, 0x06, 128, host_ch + card_ch)
    cryptogram = _scp03_kdf(s_mac, 0x00, 64, host_ch + card_ch)
    return bytes(10) + bytes([kvn, 0x03, 0x60]) + card_ch + cryptogram


def open_session(keys: StaticKeys, kvn: int, host_ch: bytes, iu_response: bytes):
    """Opens a yubikit SCP03 session the way SmartCardProtocol._scp03_init does."""

    def send_initialize_update(cla, ins, p1, p2, data):
        if (cla, ins, p1, p2, data) != (0x80, 0x50, kvn, 0x00, host_ch):
            raise RuntimeError("unexpected INITIALIZE UPDATE")
        return iu_response

    params = Scp03KeyParams(ref=KeyRef(ScpKid.SCP03, kvn), keys=keys)
    state, host_cryptogram = ScpState.scp03_init(
        send_initialize_update, params, host_challenge=host_ch
    )
    return state, host_cryptogram


class CardEmulator(ApduProcessor):
    """Answers the shadow session's commands with valid protected responses."""

    def __init__(self, state: ScpState, response_plain: bytes):
        self.state = state
        self.response_plain = response_plain
        self.authenticated = False
        self.produced: list = []
        self.first_command = None

    def send_apdu(self, cla, ins, p1, p2, data, le):
        if not self.authenticated:  # EXTERNAL AUTHENTICATE: bare '9000'
            self.authenticated = True
            return b"", SW_OK
        if self.first_command is None:
            self.first_command = ShortApduFormatter().format_apdu(
                cla, ins, p1, p2, data, le
            )
        keys = self.state._keys
        chain = self.state._mac_chain  # C-MAC of the command just sent
        counter = self.state._enc_counter - 1  # its encryption counter
        if self.response_plain:
            icv_enc = Cipher(algorithms.AES(keys.key_senc), modes.ECB()).encryptor()
            icv = icv_enc.update(b"\x80" + counter.to_bytes(15, "big"))
            padded = self.response_plain + b"\x80"
            padded += bytes(-len(padded) % 16)
            enc = Cipher(algorithms.AES(keys.key_senc), modes.CBC(icv)).encryptor()
            body = enc.update(padded) + enc.finalize()
        else:
            body = b""
        rmac = _cmac(keys.key_srmac, chain + body + SW_OK.to_bytes(2, "big"))[:8]
        response = body + rmac
        self.produced.append(response)
        return response, SW_OK


class ReplayCard(ApduProcessor):
    """Transport stand-in for the measured session: formats the wire APDU
    (as ApduFormatProcessor does) and returns the next precomputed response."""

    def __init__(self):
        self.formatter = ShortApduFormatter()
        self.responses: list = []
        self.index = 0

    def load(self, responses):
        self.responses = responses
        self.index = 0

    def send_apdu(self, cla, ins, p1, p2, data, le):
        self.formatter.format_apdu(cla, ins, p1, p2, data, le)
        if not self.responses:  # EXTERNAL AUTHENTICATE, or level-03 workload
            return b"", SW_OK
        response = self.responses[self.index]
        self.index += 1
        return response, SW_OK


def run_workload(args, keys, level: str, size: int) -> dict:
    host_ch = bytes.fromhex(args.host_challenge)
    payload = bytes([COMMAND_FILL]) * size
    response_plain = bytes([RESPONSE_FILL]) * size if level == "33" else b""

    state, host_crypto = open_session(keys, args.kvn, host_ch, args.iu_bytes)
    replay = ReplayCard()
    measured = ScpProcessor(replay, ShortApduFormatter(), state)
    measured.send_apdu(0x84, 0x82, 0x33, 0x00, host_crypto, 0, encrypt=False)

    shadow = None
    card = None
    if level == "33":
        shadow_state, shadow_crypto = open_session(keys, args.kvn, host_ch, args.iu_bytes)
        card = CardEmulator(shadow_state, response_plain)
        shadow = ScpProcessor(card, ShortApduFormatter(), shadow_state)
        shadow.send_apdu(0x84, 0x82, 0x33, 0x00, shadow_crypto, 0, encrypt=False)

    last = None

    def timed_batch(count: int):
        """Times `count` APDUs on the measured session; card responses are
        made first, untimed. Returns (wall ns, thread CPU ns)."""
        nonlocal last
        if shadow is not None:
            card.produced = []
            for _ in range(count):
                plain, _sw = shadow.send_apdu(*STORE_DATA, payload, 0)
                if plain != response_plain:
                    raise RuntimeError("shadow session rejected its own card")
            replay.load(card.produced)
        else:
            replay.load([])
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            cpu_start = time.thread_time_ns()
            start = time.perf_counter_ns()
            for _ in range(count):
                last = measured.send_apdu(*STORE_DATA, payload, 0)
            elapsed = time.perf_counter_ns() - start
            cpu = time.thread_time_ns() - cpu_start
        finally:
            if gc_enabled:
                gc.enable()
        return elapsed, cpu

    if args.batch:
        batch = args.batch
    else:
        # Like timeit's autorange: double a pilot batch until it takes at
        # least the target, after one warm-up batch, then scale to the target.
        target_ns = args.batch_us * 1000
        timed_batch(10)
        pilot = 1
        while True:
            elapsed, _cpu = timed_batch(pilot)
            if elapsed >= target_ns or pilot >= 1 << 16:
                break
            pilot *= 2
        # One slow pilot (preemption) must not set the batch: use a median.
        elapsed = statistics.median(timed_batch(pilot)[0] for _ in range(5))
        batch = max(1, round(target_ns * pilot / max(1, elapsed)))
    samples = []
    cpu_samples = []
    for _ in range(args.rounds):
        elapsed, cpu = timed_batch(batch)
        samples.append(elapsed / batch)
        cpu_samples.append(cpu / batch)
    if last != (response_plain, SW_OK):
        raise RuntimeError(f"level {level}, {size} B: unexpected plaintext response")
    result = {
        "level": level,
        "payload": size,
        "response_len": len(response_plain),
        "median_ns": statistics.median(samples),
        "min_ns": min(samples),
        "median_thread_cpu_ns": statistics.median(cpu_samples),
        "rounds": args.rounds,
        "batch": batch,
    }
    if card is not None and card.first_command is not None:
        result["first_command_hex"] = card.first_command.hex().upper()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=201)
    parser.add_argument(
        "--batch", type=int, default=0, help="APDUs per round (default: calibrated)"
    )
    parser.add_argument(
        "--batch-us",
        type=float,
        default=500.0,
        help="calibrate the batch to take about this many microseconds",
    )
    parser.add_argument("--sizes", default="16,64,239")
    parser.add_argument("--levels", default="03,33")
    parser.add_argument("--key-enc", default=DEFAULT_ENC)
    parser.add_argument("--key-mac", default=DEFAULT_MAC)
    parser.add_argument("--key-dek", default=DEFAULT_DEK)
    parser.add_argument("--kvn", type=lambda s: int(s, 0), default=DEFAULT_KVN)
    parser.add_argument("--host-challenge", default=DEFAULT_HOST_CHALLENGE)
    parser.add_argument(
        "--iu-response",
        default=None,
        help="hex INITIALIZE UPDATE response data of the card (default: emulated, "
        "card challenge " + DEFAULT_CARD_CHALLENGE + ")",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.batch < 0 or args.batch_us <= 0:
        parser.error("--rounds must be at least 1, --batch and --batch-us positive")
    levels = [lv.strip() for lv in args.levels.split(",") if lv.strip()]
    if any(lv not in ("03", "33") for lv in levels):
        parser.error("--levels takes 03 and/or 33")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(not 1 <= s <= 239 for s in sizes):
        parser.error("--sizes must be 1..239 (short APDUs)")

    keys = StaticKeys(
        bytes.fromhex(args.key_enc), bytes.fromhex(args.key_mac), bytes.fromhex(args.key_dek)
    )
    if args.iu_response:
        args.iu_bytes = bytes.fromhex(args.iu_response)
    else:
        args.iu_bytes = emulated_iu_response(
            keys,
            args.kvn,
            bytes.fromhex(args.host_challenge),
            bytes.fromhex(DEFAULT_CARD_CHALLENGE),
        )

    results = [run_workload(args, keys, lv, size) for lv in levels for size in sizes]
    print(
        json.dumps(
            {
                "peer": "yubikit",
                "yubikey_manager": package_version("yubikey-manager"),
                "cryptography": package_version("cryptography"),
                "python": platform.python_version(),
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
