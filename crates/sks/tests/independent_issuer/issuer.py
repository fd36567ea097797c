"""An SKS 1.00 issuer: builds every provisioning call with its MAC, and verifies every MAC,
attestation and stored value the SKS returns. Each verified item counts as one check; the
first mismatch raises `Discrepancy` naming the spec section and the octets involved.
"""

import datetime
import os
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from cryptography.x509.oid import NameOID

from . import spec
from .spec import SessionCrypto
from .wire import SksError, array, blob, boolean, int32, short, string, u8


class Discrepancy(Exception):
    """The SKS returned something the specification does not allow."""


class Checks:
    def __init__(self):
        self.passed = 0
        self.log = []

    def equal(self, what, expected, observed):
        if expected != observed:
            def show(v):
                return v.hex() if isinstance(v, (bytes, bytearray)) else repr(v)
            raise Discrepancy(f"{what}: expected {show(expected)}, observed {show(observed)}")
        self.passed += 1

    def true(self, what, cond):
        if not cond:
            raise Discrepancy(what)
        self.passed += 1

    def fails(self, what, status, fn):
        """`fn` must fail with `status`."""
        try:
            fn()
        except SksError as e:
            self.equal(f"{what}: status", status, e.status)
            return
        raise Discrepancy(f"{what}: succeeded, expected status 0x{status:02X}")


class CertificateAuthority:
    """Issues the End-Entity certificates the issuer attaches with setCertificatePath."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Independent Issuer CA")])

    def issue(self, public_key, common_name):
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(self.key, hashes.SHA256())
            .public_bytes(spec.Encoding.DER)
        )


class Key:
    """What the issuer knows about one key entry."""

    def __init__(self, key_id, handle, public_key):
        self.id = key_id
        self.handle = handle
        self.public_key = public_key  # SPKI DER returned by createKeyEntry
        self.certs = []
        self.pin = None

    @property
    def ee(self):
        return self.certs[0]


class Session:
    """One provisioning session as seen by the issuer."""

    def __init__(self, issuer, privacy, kmk_private, key_limit, label):
        self.issuer = issuer
        self.c = issuer.checks
        self.sks = issuer.sks
        self.privacy = privacy
        self.kmk_private = kmk_private
        self.kmk = spec.spki(kmk_private.public_key()) if kmk_private else b""
        self.key_limit = key_limit
        self.server_session_id = "S" + os.urandom(8).hex()
        self.issuer_uri = "https://issuer.example.com/" + label
        self.client_time = int(time.time())
        self.life_time = 3600
        self.keys = {}
        self._create()

    # --- createProvisioningSession (layouts 2, 3) ------------------------------------------
    def _create(self):
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        server_ephemeral = spec.spki(ephemeral.public_key())
        r = self.sks.call(spec.CREATE_PROVISIONING_SESSION,
                          string(spec.ALG_SESSION) + boolean(self.privacy)
                          + string(self.server_session_id) + array(server_ephemeral)
                          + string(self.issuer_uri) + array(self.kmk) + int32(self.client_time)
                          + int32(self.life_time) + short(self.key_limit))
        self.client_session_id = r.string()
        client_ephemeral = r.array()
        attestation = r.array()
        self.handle = r.int32()
        r.end()
        c = self.c
        c.true(f"ClientSessionID {self.client_session_id!r} passes the ID syntax (layouts 8.1)",
               spec.id_syntax_ok(self.client_session_id))
        c.true("ClientEphemeralKey is a canonical 91-octet P-256 SPKI (layouts 1.4)",
               spec.canonical_p256_spki(client_ephemeral))
        c.true("ProvisioningHandle is non-zero", self.handle != 0)
        device_id = spec.DEVICE_ID_PEP if self.privacy else self.issuer.device_cert
        z = spec.ecdh_z(ephemeral, client_ephemeral)
        c.equal("Z is 32 octets (layouts 2.3)", 32, len(z))
        session_key = SessionCrypto.derive(z, self.client_session_id, self.server_session_id,
                                           self.issuer_uri, device_id)
        self.crypto = SessionCrypto(session_key, device_id)
        att_data = spec.session_attestation_data(self.privacy, server_ephemeral,
                                                 client_ephemeral, self.kmk, self.client_time,
                                                 self.life_time, self.key_limit)
        h = spec.hmac_sha256(session_key, att_data)
        if self.privacy:
            c.equal("PEP session attestation = HMAC(SessionKey, AttData) (layouts 3)", h,
                    attestation)
        else:
            device_key = x509.load_der_x509_certificate(self.issuer.device_cert).public_key()
            try:
                spec.verify_signature(device_key, attestation, h)
            except Exception as e:  # noqa: BLE001 - any failure is the discrepancy
                raise Discrepancy(
                    "E2ES session attestation does not verify as SHA256withRSA/ECDSA over "
                    f"HMAC(SessionKey, AttData) with the device certificate (layouts 3): {e!r}; "
                    f"H = {h.hex()}, attestation = {attestation.hex()}") from e
            c.passed += 1

    # --- helpers -----------------------------------------------------------------------------
    def _mac_call(self, method_id, method_name, args, data, reader=None):
        mac = self.crypto.mac(method_name, data)
        r = self.sks.call(method_id, args + array(mac))
        if reader is None:
            r.end()
            return None
        out = reader(r)
        r.end()
        return out

    def sign_data(self, data):
        """signProvisioningSessionData (layouts 6.3)."""
        r = self.sks.call(spec.SIGN_PROVISIONING_SESSION_DATA, int32(self.handle) + array(data))
        sig = r.array()
        r.end()
        self.c.equal("signProvisioningSessionData = HMAC(SessionKey || \"External Signature\", "
                     "Data) (layouts 6.3)", self.crypto.external_signature(data), sig)

    def create_puk_policy(self, pid, puk, fmt=0, retry_limit=3):
        """createPUKPolicy (layouts 6.4)."""
        enc = self.crypto.encrypt(puk)
        data = string(pid) + array(enc) + u8(fmt) + short(retry_limit)
        handle = self._mac_call(spec.CREATE_PUK_POLICY, "createPUKPolicy",
                                int32(self.handle) + string(pid) + array(enc) + u8(fmt)
                                + short(retry_limit), data, lambda r: r.int32())
        self.c.true("PUKPolicyHandle is non-zero", handle != 0)
        return (pid, handle)

    def create_pin_policy(self, pid, puk=None, user_defined=True, user_modifiable=True, fmt=0,
                          retry_limit=3, grouping=1, patterns=0, min_len=4, max_len=8,
                          input_method=3):
        """createPINPolicy (layouts 6.5)."""
        puk_ref, puk_handle = puk if puk else (spec.NOT_APPLICABLE, 0)
        tail = (boolean(user_defined) + boolean(user_modifiable) + u8(fmt) + short(retry_limit)
                + u8(grouping) + u8(patterns) + short(min_len) + short(max_len)
                + u8(input_method))
        data = string(pid) + string(puk_ref) + tail
        handle = self._mac_call(spec.CREATE_PIN_POLICY, "createPINPolicy",
                                int32(self.handle) + string(pid) + int32(puk_handle) + tail,
                                data, lambda r: r.int32())
        self.c.true("PINPolicyHandle is non-zero", handle != 0)
        return {"id": pid, "handle": handle, "user_defined": user_defined}

    def create_key(self, kid, key_algorithm=spec.ALG_EC_P256, pin_policy=None, pin=None,
                   export=0, delete=0, app_usage=1, friendly="", endorsed=(), server_seed=b"",
                   biometric=0, caching=False, key_parameters=b""):
        """createKeyEntry (layouts 6.6), checking the key attestation (6.6.2)."""
        if pin_policy is None:
            pin_ref, pin_handle, pin_value_ref, pin_wire = (spec.NOT_APPLICABLE, 0,
                                                            string(spec.NOT_APPLICABLE), b"")
        elif pin_policy["user_defined"]:
            pin_ref, pin_handle = pin_policy["id"], pin_policy["handle"]
            pin_value_ref, pin_wire = string(spec.NOT_APPLICABLE), pin
        else:
            pin_ref, pin_handle = pin_policy["id"], pin_policy["handle"]
            pin_wire = self.crypto.encrypt(pin)
            pin_value_ref = array(pin_wire)
        endorsed_data = b"".join(string(a) for a in endorsed)
        data = (string(kid) + string(spec.ALG_KEY) + array(server_seed) + string(pin_ref)
                + pin_value_ref + boolean(caching) + u8(biometric) + u8(export) + u8(delete)
                + u8(app_usage) + string(friendly) + string(key_algorithm)
                + array(key_parameters) + endorsed_data)
        args = (int32(self.handle) + string(kid) + string(spec.ALG_KEY) + array(server_seed)
                + boolean(False) + int32(pin_handle) + array(pin_wire) + boolean(caching)
                + u8(biometric) + u8(export) + u8(delete) + u8(app_usage) + string(friendly)
                + string(key_algorithm) + array(key_parameters) + u8(len(endorsed))
                + endorsed_data)

        def read(r):
            return r.int32(), r.array(), r.array()

        handle, public_key, attestation = self._mac_call(spec.CREATE_KEY_ENTRY, "createKeyEntry",
                                                         args, data, read)
        c = self.c
        c.true("KeyHandle is non-zero", handle != 0)
        expected = self.crypto.attestation(string(kid) + array(public_key))
        c.equal(f"createKeyEntry({kid}) attestation = HMAC(SessionKey || \"Device Attestation\""
                " || n+1, ID || PublicKey) (layouts 6.6.2)", expected, attestation)
        parsed = load_der_public_key(public_key)
        if key_algorithm == spec.ALG_EC_P256:
            c.true(f"{kid}: PublicKey is a canonical P-256 SPKI",
                   spec.canonical_p256_spki(public_key))
        elif key_algorithm == spec.ALG_EC_P384:
            c.equal(f"{kid}: PublicKey curve", "secp384r1", parsed.curve.name)
        else:
            bits = 1024 if key_algorithm.startswith(spec.ALG_RSA1024) else 2048
            c.equal(f"{kid}: RSA modulus size", bits, parsed.key_size)
            exponent = int.from_bytes(key_parameters, "big") if key_parameters else 65537
            c.equal(f"{kid}: RSA exponent (KeyParameters, default 65537)", exponent,
                    parsed.public_numbers().e)
        c.equal(f"{kid}: PublicKey SPKI re-encodes identically", spec.spki(parsed), public_key)
        key = Key(kid, handle, public_key)
        key.pin = pin
        self.keys[kid] = key
        return key

    def set_certificate_path(self, key, certs=None, public_key=None):
        """setCertificatePath (layouts 6.7); by default certifies the generated key."""
        if certs is None:
            pk = public_key or load_der_public_key(key.public_key)
            certs = [self.issuer.ca.issue(pk, key.id)]
        data = array(key.public_key) + string(key.id) + b"".join(array(x) for x in certs)
        self._mac_call(spec.SET_CERTIFICATE_PATH, "setCertificatePath",
                       int32(key.handle) + u8(len(certs)) + b"".join(array(x) for x in certs),
                       data)
        key.certs = certs

    def import_symmetric_key(self, key, secret):
        """importSymmetricKey (layouts 6.8)."""
        enc = self.crypto.encrypt(secret)
        self._mac_call(spec.IMPORT_SYMMETRIC_KEY, "importSymmetricKey",
                       int32(key.handle) + array(enc), array(key.ee) + array(enc))

    def import_private_key(self, key, pkcs8):
        """importPrivateKey (layouts 6.9)."""
        enc = self.crypto.encrypt(pkcs8)
        self._mac_call(spec.IMPORT_PRIVATE_KEY, "importPrivateKey",
                       int32(key.handle) + array(enc), array(key.ee) + array(enc))

    def add_extension(self, key, ext_type, sub_type, data, qualifier=""):
        """addExtension (layouts 6.10); SubType 0x01 data is encrypted here."""
        wire_data = self.crypto.encrypt(data) if sub_type == spec.SUBTYPE_ENCRYPTED else data
        tail = string(ext_type) + u8(sub_type) + string(qualifier) + blob(wire_data)
        self._mac_call(spec.ADD_EXTENSION, "addExtension", int32(key.handle) + tail,
                       array(key.ee) + tail)

    def get_key_handle(self, kid):
        r = self.sks.call(spec.GET_KEY_HANDLE, int32(self.handle) + string(kid))
        h = r.int32()
        r.end()
        return h

    def _authorization(self, target_ee, owner_kmk_private):
        return self.crypto.target_key_reference(target_ee, owner_kmk_private)

    def post_delete_or_unlock(self, method_id, name, target_handle, target_ee, owner_kmk):
        """postDeleteKey / postUnlockKey (layouts 6.11, 7)."""
        auth = self._authorization(target_ee, owner_kmk)
        self._mac_call(method_id, name,
                       int32(self.handle) + int32(target_handle) + array(auth), array(auth))

    def post_update_or_clone(self, method_id, name, new_key, target_handle, target_ee,
                             owner_kmk):
        """postUpdateKey / postCloneKeyProtection (layouts 6.12, 7)."""
        auth = self._authorization(target_ee, owner_kmk)
        self._mac_call(method_id, name,
                       int32(new_key.handle) + int32(target_handle) + array(auth),
                       array(new_key.ee) + array(auth))

    def close(self):
        """closeProvisioningSession (layouts 6.2), checking the close attestation."""
        nonce = os.urandom(16)
        data = (string(self.client_session_id) + string(self.server_session_id)
                + string(self.issuer_uri) + array(nonce))
        attestation = self._mac_call(spec.CLOSE_PROVISIONING_SESSION, "closeProvisioningSession",
                                     int32(self.handle) + array(nonce), data,
                                     lambda r: r.array())
        expected = self.crypto.attestation(array(nonce) + string(spec.ALG_SESSION))
        self.c.equal("close attestation = HMAC(SessionKey || \"Device Attestation\" || n+1, "
                     "Nonce || sks.s1) (layouts 6.2)", expected, attestation)

    def close_with_tampered_mac(self):
        """A close whose MAC is wrong must fail with ERROR_MAC and abort (layouts 4.1, 8.9)."""
        nonce = os.urandom(8)
        data = (string(self.client_session_id) + string(self.server_session_id)
                + string(self.issuer_uri) + array(nonce))
        mac = bytearray(self.crypto.mac("closeProvisioningSession", data))
        mac[0] ^= 1
        self.c.fails("close with a tampered MAC", spec.ERROR_MAC,
                     lambda: self.sks.call(spec.CLOSE_PROVISIONING_SESSION,
                                           int32(self.handle) + array(nonce) + array(bytes(mac))))


class Issuer:
    """Connection, device identity and the issuer's CA."""

    def __init__(self, connection):
        self.sks = connection
        self.checks = Checks()
        self.ca = CertificateAuthority()
        r = self.sks.call(spec.GET_DEVICE_INFO)
        self.api_level = r.short()
        self.device_type = r.u8()
        self.update_url = r.string()
        self.vendor_name = r.string()
        self.vendor_description = r.string()
        self.device_certs = [r.array() for _ in range(r.u8())]
        self.algorithms = [r.string() for _ in range(r.short())]
        self.crypto_data_size = r.int32()
        self.extension_data_size = r.int32()
        self.device_pin_support = r.boolean()
        self.biometric_support = r.boolean()
        r.end()
        self.device_cert = self.device_certs[0]

    def session(self, privacy, kmk_private, key_limit, label):
        return Session(self, privacy, kmk_private, key_limit, label)
