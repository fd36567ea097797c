#!/usr/bin/env python3
"""Interop: an SCP03 host nobody on this project wrote (Yubico's yubikit) opens a
level-33 channel (C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION) to the virtual fob
through the real PC/SC stack (pyscard -> pcscd -> vpcd -> `kf-station sim serve`)
and exchanges protected STORE DATA commands.

Usage: python3 bench/interop_scp03.py [READER]   (default: the first "Virtual PCD" reader)
Needs: pip install yubikey-manager pyscard; pcscd with vpcd; a running
`kf-station sim serve` (dev-sample keys at KVN FF, i = 70).
"""
import sys

from smartcard.System import readers
from yubikit.core import TRANSPORT
from yubikit.core.smartcard import SmartCardConnection, SmartCardProtocol
from yubikit.core.smartcard.scp import KeyRef, Scp03KeyParams, StaticKeys

DEV_KEYS = StaticKeys(
    bytes.fromhex("8b4b8d7ec45dfa503a35f6df8f6bbdd9"),
    bytes.fromhex("42fd95e83821260c5b90463af7996313"),
    bytes.fromhex("1b988a47ac94632f7020734ca172eed8"),
)
APPLET_AID = bytes.fromhex("A000000857")


class PcscConnection(SmartCardConnection):
    def __init__(self, reader):
        self._c = reader.createConnection()
        self._c.connect()

    @property
    def transport(self):
        return TRANSPORT.NFC

    def send_and_receive(self, apdu):
        data, sw1, sw2 = self._c.transmit(list(apdu))
        self.last_raw_len = len(data)
        return bytes(data), (sw1 << 8) | sw2

    def close(self):
        self._c.disconnect()


def main():
    wanted = sys.argv[1] if len(sys.argv) > 1 else None
    reader = next(
        r for r in readers()
        if (str(r) == wanted if wanted else str(r).startswith("Virtual PCD"))
    )
    conn = PcscConnection(reader)
    proto = SmartCardProtocol(conn)
    proto.select(APPLET_AID)
    proto.init_scp(Scp03KeyParams(KeyRef(0x01, 0xFF), DEV_KEYS))
    print(f"{reader}: SCP03 level 33 channel open (yubikit host)")
    # Two protected STORE DATA blocks (P1 00, P2 00/01): DGI A006 (IRK) and
    # A001 (SPID). yubikit encrypts, MACs, and checks R-MAC + decrypts R-ENC.
    blocks = [
        bytes.fromhex("A00610") + bytes(range(16)),
        bytes.fromhex("A00128") + b"59918C0096F859EC8BF6DA454E2E554A14DD4BD1",
    ]
    for p2, block in enumerate(blocks):
        resp = proto.send_apdu(0x80, 0xE2, 0x00, p2, block)
        # At level 33 even an empty 9000 carries an 8-byte R-MAC, which yubikit checks.
        assert conn.last_raw_len == 8, conn.last_raw_len
        print(f"STORE DATA P2={p2:02X}: 9000, {len(resp)} plaintext bytes, 8-byte R-MAC verified by yubikit")
    conn.close()
    print("interop OK")


if __name__ == "__main__":
    main()
