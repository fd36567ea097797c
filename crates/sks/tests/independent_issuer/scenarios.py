"""Complete provisioning sessions and the User-API checks of what they stored."""

import hashlib
import hmac as std_hmac
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding as sympad
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)

from . import spec
from .issuer import Discrepancy
from .wire import SksError, array, blob, boolean, int32, string

HOTP = "http://xmlns.webpki.org/keygen2/1.0#provider.ietf-hotp"
LOGO = "http://xmlns.webpki.org/keygen2/1.0#logotype.application"
EXT_PLAIN = "urn:x-independent-issuer:extension"
EXT_ENCRYPTED = "urn:x-independent-issuer:encrypted"
PNG = bytes.fromhex("89504e470d0a1a0a") + os.urandom(40)


def property_bag(props):
    """Layouts 6.10.1: Name:string || Writable:bool || Value:string, repeated."""
    return b"".join(string(n) + boolean(w) + string(v) for n, w, v in props)


# --- User API wrappers ------------------------------------------------------------------------

def key_attributes(sks, handle):
    r = sks.call(spec.GET_KEY_ATTRIBUTES, int32(handle))
    out = {"symmetric_key_length": r.short()}
    out["certs"] = [r.array() for _ in range(r.u8())]
    out["app_usage"] = r.u8()
    out["friendly_name"] = r.string()
    out["endorsed"] = [r.string() for _ in range(r.u8())]
    out["extensions"] = [r.string() for _ in range(r.short())]
    r.end()
    return out


def protection_info(sks, handle):
    r = sks.call(spec.GET_KEY_PROTECTION_INFO, int32(handle))
    names = [("status", r.u8), ("puk_format", r.u8), ("puk_retry_limit", r.short),
             ("puk_error_count", r.short), ("user_defined", r.boolean),
             ("user_modifiable", r.boolean), ("format", r.u8), ("retry_limit", r.short),
             ("grouping", r.u8), ("patterns", r.u8), ("min_length", r.short),
             ("max_length", r.short), ("input_method", r.u8), ("pin_error_count", r.short),
             ("pin_caching", r.boolean), ("biometric", r.u8), ("export", r.u8),
             ("delete", r.u8), ("key_backup", r.u8)]
    out = {name: read() for name, read in names}
    r.end()
    return out


def get_extension(sks, handle, ext_type):
    r = sks.call(spec.GET_EXTENSION, int32(handle) + string(ext_type))
    out = (r.u8(), r.string(), r.blob())
    r.end()
    return out


def crypto_call(sks, method, handle, alg, auth, data, data_as_blob=False, mode=None):
    args = int32(handle) + string(alg)
    if mode is not None:
        args += boolean(mode)
    args += array(b"") + array(auth) + (blob(data) if data_as_blob else array(data))
    r = sks.call(method, args)
    out = r.blob() if method == spec.SYMMETRIC_KEY_ENCRYPT else r.array()
    r.end()
    return out


def simple_call(sks, method, *parts):
    r = sks.call(method, b"".join(parts))
    r.end()


def enumerate_keys(sks):
    out, h = {}, 0
    while True:
        r = sks.call(spec.ENUMERATE_KEYS, int32(h))
        h = r.int32()
        owner = r.int32()
        r.end()
        if h == 0:
            if owner != 0:
                raise Discrepancy("enumerateKeys: ProvisioningHandle must be 0 at the end "
                                  f"(seed enumerateKeys), observed {owner}")
            return out
        out[h] = owner


def enumerate_sessions(sks, open_state):
    out, h = {}, 0
    while True:
        r = sks.call(spec.ENUMERATE_PROVISIONING_SESSIONS, int32(h) + boolean(open_state))
        h = r.int32()
        fields = (r.string(), r.boolean(), r.array(), r.int32(), r.int32(), r.string(),
                  r.string(), r.string())
        r.end()
        if h == 0:
            if fields != ("", False, b"", 0, 0, "", "", ""):
                raise Discrepancy("enumerateProvisioningSessions: the outputs must be zero at "
                                  f"the end (seed enumerateProvisioningSessions), observed {fields}")
            return out
        out[h] = fields


def public_key_of(cert_der):
    return x509.load_der_x509_certificate(cert_der).public_key()


# --- the scenarios ----------------------------------------------------------------------------

class Run:
    def __init__(self, issuer):
        self.issuer = issuer
        self.sks = issuer.sks
        self.c = issuer.checks
        self.sessions = 0

    def note(self, text):
        print(f"independent issuer: {text}", flush=True)

    def session(self, privacy, kmk, limit, label):
        self.sessions += 1
        return self.issuer.session(privacy, kmk, limit, label)

    def check_stored_session(self, s, open_state):
        sessions = enumerate_sessions(self.sks, open_state)
        self.c.true(f"session {s.handle} is listed as {'open' if open_state else 'closed'}",
                    s.handle in sessions)
        self.c.equal(f"enumerateProvisioningSessions({s.handle}) stored values",
                     (spec.ALG_SESSION, s.privacy, s.kmk, s.client_time, s.life_time,
                      s.server_session_id, s.client_session_id, s.issuer_uri),
                     sessions[s.handle])

    def device_info(self):
        i, c = self.issuer, self.c
        c.equal("getDeviceInfo APILevel", 100, i.api_level)
        c.true("device certificate path is non-empty", len(i.device_certs) >= 1)
        for alg in (spec.ALG_SESSION, spec.ALG_KEY, spec.ALG_EC_P256, spec.ALG_RSA1024,
                    spec.ALG_RSA2048, spec.ALG_ECDSA_SHA256, spec.ALG_RSA_SHA256,
                    spec.ALG_HMAC_SHA256, spec.ALG_AES256_CBC, spec.ALG_RSA_PKCS1,
                    spec.ALG_ECDH_RAW, spec.ALG_NONE):
            c.true(f"getDeviceInfo lists {alg}", alg in i.algorithms)
        c.true("CryptoDataSize >= 16384", i.crypto_data_size >= 16384)
        c.true("VendorName is 1..128 characters", 1 <= len(i.vendor_name) <= 128)
        c.true("VendorDescription is 1..1000 characters",
               1 <= len(i.vendor_description) <= 1000)
        c.true("ExtensionDataSize >= 65536", i.extension_data_size >= 65536)

    # --- E2ES session A: PUK, user-defined and issuer-set PINs, all key kinds -------------------
    def session_a(self):
        c, sks = self.c, self.sks
        kmk = ec.generate_private_key(ec.SECP256R1())
        s = self.session(False, kmk, 200, "e2es-a")
        s.sign_data(b"provisioning message")
        puk = s.create_puk_policy("PUK.1", b"123456", fmt=0, retry_limit=3)
        pin_user = s.create_pin_policy("PIN.1", puk, user_defined=True, user_modifiable=True,
                                       grouping=1, patterns=0x05)
        pin_issuer = s.create_pin_policy("PIN.2", None, user_defined=False,
                                         user_modifiable=False, fmt=1, grouping=0)
        k1 = s.create_key("Key.1", spec.ALG_EC_P256, pin_user, b"1357", export=1, delete=2,
                          app_usage=0, friendly="Signing key", endorsed=[spec.ALG_ECDSA_SHA256],
                          server_seed=os.urandom(32))
        k2 = s.create_key("Key.2", spec.ALG_RSA1024, pin_user, b"1357", app_usage=2,
                          endorsed=sorted([spec.ALG_RSA_SHA256, spec.ALG_RSA_PKCS1]))
        k3 = s.create_key("Key.3", spec.ALG_EC_P256, pin_issuer, b"AB12C9", export=1,
                          app_usage=3, endorsed=[spec.ALG_HMAC_SHA256])
        k4 = s.create_key("Key.4", spec.ALG_EC_P256, None, app_usage=1)
        k5 = s.create_key("Key.5", spec.ALG_EC_P256, None, app_usage=1,
                          endorsed=[spec.ALG_ECDH_RAW])
        for k in (k1, k2, k3, k5):
            s.set_certificate_path(k)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        s.set_certificate_path(k4, public_key=rsa_key.public_key())
        s.import_private_key(k4, rsa_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8,
                                                       NoEncryption()))
        hmac_secret = os.urandom(32)
        s.import_symmetric_key(k3, hmac_secret)
        s.add_extension(k3, EXT_PLAIN, spec.SUBTYPE_EXTENSION, b"plain extension data")
        secret_ext = os.urandom(100)
        s.add_extension(k3, EXT_ENCRYPTED, spec.SUBTYPE_ENCRYPTED, secret_ext)
        bag = [("Counter", True, "0"), ("Digits", False, "8")]
        s.add_extension(k3, HOTP, spec.SUBTYPE_PROPERTY_BAG, property_bag(bag))
        s.add_extension(k3, LOGO, spec.SUBTYPE_LOGOTYPE, PNG, qualifier="image/png")
        c.equal("getKeyHandle(Key.2)", k2.handle, s.get_key_handle("Key.2"))
        self.check_stored_session(s, True)
        s.close()
        self.check_stored_session(s, False)
        c.true("SessionKeyLimit units used <= limit", s.crypto.units <= s.key_limit)

        # Stored results.
        keys = enumerate_keys(sks)
        for k in (k1, k2, k3, k4, k5):
            c.equal(f"enumerateKeys: {k.id} belongs to session A", s.handle, keys.get(k.handle))
        a1 = key_attributes(sks, k1.handle)
        c.equal("Key.1 attributes", {"symmetric_key_length": 0, "certs": k1.certs,
                                     "app_usage": 0, "friendly_name": "Signing key",
                                     "endorsed": [spec.ALG_ECDSA_SHA256], "extensions": []}, a1)
        a3 = key_attributes(sks, k3.handle)
        c.equal("Key.3 SymmetricKeyLength", 32, a3["symmetric_key_length"])
        c.equal("Key.3 extension types", sorted([EXT_PLAIN, EXT_ENCRYPTED, HOTP, LOGO]),
                sorted(a3["extensions"]))
        c.equal("Key.2 endorsed algorithms", sorted([spec.ALG_RSA_SHA256, spec.ALG_RSA_PKCS1]),
                key_attributes(sks, k2.handle)["endorsed"])
        p1 = protection_info(sks, k1.handle)
        c.equal("Key.1 protection info", {
            "status": spec.PIN_PROTECTED | spec.PUK_PROTECTED, "puk_format": 0,
            "puk_retry_limit": 3, "puk_error_count": 0, "user_defined": True,
            "user_modifiable": True, "format": 0, "retry_limit": 3, "grouping": 1,
            "patterns": 0x05, "min_length": 4, "max_length": 8, "input_method": 3,
            "pin_error_count": 0, "pin_caching": False, "biometric": 0, "export": 1,
            "delete": 2, "key_backup": 0}, p1)
        p3 = protection_info(sks, k3.handle)
        c.equal("Key.3 protection (issuer-set PIN, no PUK, imported)",
                (spec.PIN_PROTECTED, False, False, 1, spec.KEYBACKUP_SERVER),
                (p3["status"], p3["user_defined"], p3["user_modifiable"], p3["format"],
                 p3["key_backup"]))
        c.equal("Key.4 KeyBackup after importPrivateKey", spec.KEYBACKUP_SERVER,
                protection_info(sks, k4.handle)["key_backup"])
        c.equal("Key.5 protection info (no PIN: fields that do not apply are zero)", {
            "status": 0, "puk_format": 0, "puk_retry_limit": 0, "puk_error_count": 0,
            "user_defined": False, "user_modifiable": False, "format": 0, "retry_limit": 0,
            "grouping": 0, "patterns": 0, "min_length": 0, "max_length": 0, "input_method": 0,
            "pin_error_count": 0, "pin_caching": False, "biometric": 0, "export": 0,
            "delete": 0, "key_backup": 0}, protection_info(sks, k5.handle))
        c.equal("Key.3 PUK fields (no PUK) are zero", (0, 0, 0),
                (p3["puk_format"], p3["puk_retry_limit"], p3["puk_error_count"]))

        # Extensions as stored.
        c.equal("getExtension(plain)", (0, "", b"plain extension data"),
                get_extension(sks, k3.handle, EXT_PLAIN))
        c.equal("getExtension(encrypted) is the decrypted data (layouts 5)",
                (1, "", secret_ext), get_extension(sks, k3.handle, EXT_ENCRYPTED))
        c.equal("getExtension(logotype)", (3, "image/png", PNG),
                get_extension(sks, k3.handle, LOGO))
        c.equal("getExtension(property bag)", (2, "", property_bag(bag)),
                get_extension(sks, k3.handle, HOTP))
        simple_call(sks, spec.SET_PROPERTY, int32(k3.handle), string(HOTP), string("Counter"),
                    string("17"))
        c.equal("property bag after setProperty(Counter=17)",
                (2, "", property_bag([("Counter", True, "17"), ("Digits", False, "8")])),
                get_extension(sks, k3.handle, HOTP))
        c.fails("setProperty on a read-only property", spec.ERROR_NOT_ALLOWED,
                lambda: simple_call(sks, spec.SET_PROPERTY, int32(k3.handle), string(HOTP),
                                    string("Digits"), string("6")))

        # Cryptographic results, verified against the certified public keys.
        digest = hashlib.sha256(b"independent issuer").digest()
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, k1.handle, spec.ALG_ECDSA_SHA256, b"1357",
                          digest)
        public_key_of(k1.ee).verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        c.passed += 1
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, k2.handle, spec.ALG_RSA_SHA256, b"1357",
                          digest)
        public_key_of(k2.ee).verify(sig, digest, padding.PKCS1v15(),
                                    utils.Prehashed(hashes.SHA256()))
        c.passed += 1
        secret = os.urandom(24)
        ct = public_key_of(k2.ee).encrypt(secret, padding.PKCS1v15())
        c.equal("asymmetricKeyDecrypt rsa-1_5", secret,
                crypto_call(sks, spec.ASYMMETRIC_KEY_DECRYPT, k2.handle, spec.ALG_RSA_PKCS1,
                            b"1357", ct))
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, k4.handle, spec.ALG_RSA_SHA256, b"",
                          digest)
        rsa_key.public_key().verify(sig, digest, padding.PKCS1v15(),
                                    utils.Prehashed(hashes.SHA256()))
        c.passed += 1
        peer = ec.generate_private_key(ec.SECP256R1())
        c.equal("keyAgreement ecdh.raw = Z (layouts 2.3)",
                peer.exchange(ec.ECDH(), public_key_of(k5.ee)),
                crypto_call(sks, spec.KEY_AGREEMENT, k5.handle, spec.ALG_ECDH_RAW, b"",
                            spec.spki(peer.public_key())))
        msg = b"HOTP counter 0000"
        c.equal("performHMAC with the imported (encrypted) symmetric key",
                std_hmac.new(hmac_secret, msg, hashlib.sha256).digest(),
                crypto_call(sks, spec.PERFORM_HMAC, k3.handle, spec.ALG_HMAC_SHA256, b"AB12C9",
                            msg, data_as_blob=True))
        exported = load_der_private_key(self._export(k4.handle, b""), None)
        c.equal("exportKey returns the imported PKCS#8 key", rsa_key.private_numbers(),
                exported.private_numbers())
        c.equal("KeyBackup after exportKey", spec.KEYBACKUP_SERVER | spec.KEYBACKUP_LOCAL,
                protection_info(sks, k4.handle)["key_backup"])

        # Lock Key.1 with wrong PINs: the shared group (Key.2) locks with it (layouts 8.4, 8.10).
        for _ in range(3):
            c.fails("signHashedData with a wrong PIN", spec.ERROR_AUTHORIZATION,
                    lambda: crypto_call(sks, spec.SIGN_HASHED_DATA, k1.handle,
                                        spec.ALG_ECDSA_SHA256, b"9999", digest))
        for k in (k1, k2):
            p = protection_info(sks, k.handle)
            c.equal(f"{k.id} locked: status and error count",
                    (spec.PIN_PROTECTED | spec.PUK_PROTECTED | spec.PIN_BLOCKED, 3),
                    (p["status"], p["pin_error_count"]))
        c.fails("the correct PIN on a locked key", spec.ERROR_AUTHORIZATION,
                lambda: crypto_call(sks, spec.SIGN_HASHED_DATA, k2.handle, spec.ALG_RSA_SHA256,
                                    b"1357", digest))
        c.fails("unlockKey with a wrong PUK", spec.ERROR_AUTHORIZATION,
                lambda: simple_call(sks, spec.UNLOCK_KEY, int32(k2.handle), array(b"654321")))
        c.equal("PUK error count after a wrong PUK", 1,
                protection_info(sks, k1.handle)["puk_error_count"])
        return s, kmk

    def _export(self, handle, auth):
        r = self.sks.call(spec.EXPORT_KEY, int32(handle) + array(auth))
        key = r.array()
        r.end()
        return key

    # --- E2ES session B: postUnlock, postUpdate, postClone, postDelete on session A ----------
    def session_b(self, a, kmk_a):
        c, sks = self.c, self.sks
        k1, k2, k4, k5 = (a.keys[n] for n in ("Key.1", "Key.2", "Key.4", "Key.5"))
        kmk_b = ec.generate_private_key(ec.SECP256R1())
        s = self.session(False, kmk_b, 100, "e2es-b")
        n1 = s.create_key("New.1", spec.ALG_EC_P256, None, app_usage=1, friendly="Updated",
                          endorsed=[spec.ALG_ECDSA_SHA256])
        n2 = s.create_key("New.2", spec.ALG_EC_P256, None, app_usage=0)
        s.set_certificate_path(n1)
        s.set_certificate_path(n2)
        s.post_delete_or_unlock(spec.POST_UNLOCK_KEY, "postUnlockKey", k1.handle, k1.ee, kmk_a)
        s.post_update_or_clone(spec.POST_UPDATE_KEY, "postUpdateKey", n1, k5.handle, k5.ee,
                               kmk_a)
        s.post_update_or_clone(spec.POST_CLONE_KEY_PROTECTION, "postCloneKeyProtection", n2,
                               k1.handle, k1.ee, kmk_a)
        s.post_delete_or_unlock(spec.POST_DELETE_KEY, "postDeleteKey", k4.handle, k4.ee, kmk_a)
        s.close()
        c.true("SessionKeyLimit units used <= limit", s.crypto.units <= s.key_limit)

        for k in (k1, k2):
            p = protection_info(sks, k.handle)
            c.equal(f"{k.id} after postUnlockKey: status, PIN and PUK error counts",
                    (spec.PIN_PROTECTED | spec.PUK_PROTECTED, 0, 0),
                    (p["status"], p["pin_error_count"], p["puk_error_count"]))
        c.fails("postDeleteKey target is gone", spec.ERROR_NO_KEY,
                lambda: key_attributes(sks, k4.handle))
        c.fails("postUpdateKey: the new key's own handle is gone", spec.ERROR_NO_KEY,
                lambda: key_attributes(sks, n1.handle))
        a5 = key_attributes(sks, k5.handle)
        c.equal("postUpdateKey: the target handle carries the new key",
                (n1.certs, "Updated", [spec.ALG_ECDSA_SHA256]),
                (a5["certs"], a5["friendly_name"], a5["endorsed"]))
        peer_digest = hashlib.sha256(b"updated").digest()
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, k5.handle, spec.ALG_ECDSA_SHA256, b"",
                          peer_digest)
        public_key_of(n1.ee).verify(sig, peer_digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        c.passed += 1
        p = protection_info(sks, n2.handle)
        c.equal("postCloneKeyProtection: New.2 is linked to PIN.1/PUK.1",
                (spec.PIN_PROTECTED | spec.PUK_PROTECTED, 3, 1, 0x05),
                (p["status"], p["retry_limit"], p["grouping"], p["patterns"]))
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, n2.handle, spec.ALG_ECDSA_SHA256, b"1357",
                          peer_digest)
        public_key_of(n2.ee).verify(sig, peer_digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        c.passed += 1
        keys = enumerate_keys(sks)
        for h in (k1.handle, k2.handle, a.keys["Key.3"].handle, k5.handle, n2.handle):
            c.equal(f"key {h} is owned by session B after the transfer", s.handle, keys.get(h))
        c.true("session A is deleted after the ownership transfer",
               a.handle not in enumerate_sessions(sks, False))

        # PUK operations on the transferred keys (layouts 8.10).
        c.fails("unlockKey with a wrong PUK", spec.ERROR_AUTHORIZATION,
                lambda: simple_call(sks, spec.UNLOCK_KEY, int32(k1.handle), array(b"000000")))
        c.equal("PUK error count after one wrong PUK", 1,
                protection_info(sks, k2.handle)["puk_error_count"])
        simple_call(sks, spec.SET_PIN, int32(k1.handle), array(b"123456"), array(b"2468"))
        simple_call(sks, spec.CHANGE_PIN, int32(k2.handle), array(b"2468"), array(b"9753"))
        for k in (k1, k2, n2):
            p = protection_info(sks, k.handle)
            c.equal(f"{k.id} after setPIN/changePIN: PIN and PUK error counts", (0, 0),
                    (p["pin_error_count"], p["puk_error_count"]))
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, n2.handle, spec.ALG_ECDSA_SHA256, b"9753",
                          peer_digest)
        public_key_of(n2.ee).verify(sig, peer_digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        c.passed += 1
        try:
            simple_call(sks, spec.CHANGE_PIN, int32(k1.handle), array(b"9753"), array(b"3456"))
        except SksError:
            c.passed += 1
        else:
            raise Discrepancy("changePIN accepted 3456 under the sequence pattern (layouts 8.3)")
        crypto_call(sks, spec.SIGN_HASHED_DATA, k1.handle, spec.ALG_ECDSA_SHA256, b"9753",
                    peer_digest)
        c.passed += 1

        # Export with PIN protection; delete with PUK protection, where a PIN counts as a PUK
        # error (layouts 8.10).
        n = load_der_private_key(self._export(k1.handle, b"9753"), None)
        c.equal("exportKey (pin protection) returns Key.1's private key",
                public_key_of(k1.ee).public_numbers(), n.public_key().public_numbers())
        c.fails("deleteKey (puk protection) with the PIN", spec.ERROR_AUTHORIZATION,
                lambda: simple_call(sks, spec.DELETE_KEY, int32(k1.handle), array(b"9753")))
        c.equal("the PIN given for a puk-protected delete counts as a PUK error", 1,
                protection_info(sks, k1.handle)["puk_error_count"])
        simple_call(sks, spec.DELETE_KEY, int32(k1.handle), array(b"123456"))
        c.fails("deleteKey removed Key.1", spec.ERROR_NO_KEY,
                lambda: key_attributes(sks, k1.handle))
        c.equal("Key.2 (same PIN group) is still there, PUK count reset", 0,
                protection_info(sks, k2.handle)["puk_error_count"])

    # --- PEP sessions C and D: symmetric keys, RSA key-management key -----------------------
    def session_c_d(self):
        c, sks = self.c, self.sks
        kmk_c = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # Units: 2 keys x 2 + 2 certificates + 1 import x 2 + close 2 = 10 (layouts 4.4).
        s = self.session(True, kmk_c, 10, "pep-c")
        sym = s.create_key("Sym.1", spec.ALG_EC_P256, None, app_usage=2,
                           endorsed=[spec.ALG_AES256_CBC])
        plain = s.create_key("Plain.1", spec.ALG_EC_P256, None, app_usage=1)
        s.set_certificate_path(sym)
        s.set_certificate_path(plain)
        aes_key = os.urandom(32)
        s.import_symmetric_key(sym, aes_key)
        s.close()
        c.equal("SessionKeyLimit units used in session C", 10, s.crypto.units)
        self.check_stored_session(s, False)

        data = os.urandom(40)
        out = crypto_call(sks, spec.SYMMETRIC_KEY_ENCRYPT, sym.handle, spec.ALG_AES256_CBC, b"",
                          data, data_as_blob=True, mode=True)
        dec = Cipher(algorithms.AES(aes_key), modes.CBC(out[:16])).decryptor()
        unpad = sympad.PKCS7(128).unpadder()
        c.equal("symmetricKeyEncrypt aes256-cbc (IV prepended)", data,
                unpad.update(dec.update(out[16:]) + dec.finalize()) + unpad.finalize())
        iv = os.urandom(16)
        pad = sympad.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
        ct = iv + enc.update(pad.update(data) + pad.finalize()) + enc.finalize()
        c.equal("symmetricKeyEncrypt aes256-cbc decryption", data,
                crypto_call(sks, spec.SYMMETRIC_KEY_ENCRYPT, sym.handle, spec.ALG_AES256_CBC,
                            b"", ct, data_as_blob=True, mode=False))
        c.equal("exportKey of a symmetric key", aes_key, self._export(sym.handle, b""))

        # An E2ES session may not manage PEP keys (layouts 7, check 1): the session aborts.
        e = self.session(False, None, 20, "e2es-mismatch")
        c.fails("postDeleteKey across PrivacyEnabled modes", spec.ERROR_OPTION,
                lambda: e.post_delete_or_unlock(spec.POST_DELETE_KEY, "postDeleteKey",
                                                plain.handle, plain.ee, kmk_c))
        c.true("the mismatching session was aborted",
               e.handle not in enumerate_sessions(sks, True))

        d = self.session(True, None, 20, "pep-d")
        new = d.create_key("New.3", spec.ALG_EC_P256, None, app_usage=2)
        d.set_certificate_path(new)
        d.post_update_or_clone(spec.POST_UPDATE_KEY, "postUpdateKey", new, sym.handle, sym.ee,
                               kmk_c)
        d.post_delete_or_unlock(spec.POST_DELETE_KEY, "postDeleteKey", plain.handle, plain.ee,
                                kmk_c)
        d.close()
        a = key_attributes(sks, sym.handle)
        c.equal("PEP postUpdateKey: the target handle carries the new asymmetric key",
                (new.certs, 0), (a["certs"], a["symmetric_key_length"]))
        c.fails("PEP postDeleteKey target is gone", spec.ERROR_NO_KEY,
                lambda: key_attributes(sks, plain.handle))

    # --- SessionKeyLimit accounting (layouts 4.4, reference suite test 47) -------------------
    def session_key_limits(self):
        c, sks = self.c, self.sks
        for user_defined, limit, works in ((True, 6, True), (True, 5, False),
                                           (False, 7, True), (False, 6, False)):
            s = self.session(True, None, limit, f"limit-{limit}")
            policy = s.create_pin_policy("PIN.L", None, user_defined=user_defined, grouping=0)
            k = s.create_key("Key.L", spec.ALG_EC_P256, policy, b"4711")
            s.set_certificate_path(k)
            what = (f"{'user-defined' if user_defined else 'issuer-set'} PIN, "
                    f"SessionKeyLimit {limit}")
            if works:
                s.close()
                c.equal(f"{what}: units", limit, s.crypto.units)
            else:
                c.fails(f"{what}: close exceeds the limit", spec.ERROR_OPTION, s.close)
                c.true(f"{what}: the session was aborted",
                       s.handle not in enumerate_sessions(sks, True))
                c.fails(f"{what}: its key is gone", spec.ERROR_NO_KEY,
                        lambda: key_attributes(sks, k.handle))

    # --- optional key algorithms: RSA with KeyParameters, P-384 (layouts 6.6, 10 item 15) ---
    def optional_key_algorithms(self):
        c, sks = self.c, self.sks
        s = self.session(False, None, 20, "optional")
        rsa_exp = s.create_key("Key.E", spec.ALG_RSA1024_EXP, None, key_parameters=b"\x11",
                               endorsed=[spec.ALG_RSA_SHA256])
        p384 = s.create_key("Key.P", spec.ALG_EC_P384, None)
        s.set_certificate_path(rsa_exp)
        s.set_certificate_path(p384)
        s.close()
        digest = hashlib.sha256(b"exponent 17").digest()
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, rsa_exp.handle, spec.ALG_RSA_SHA256, b"",
                          digest)
        public_key_of(rsa_exp.ee).verify(sig, digest, padding.PKCS1v15(),
                                         utils.Prehashed(hashes.SHA256()))
        c.passed += 1
        digest = hashlib.sha384(b"p-384").digest()
        sig = crypto_call(sks, spec.SIGN_HASHED_DATA, p384.handle, spec.ALG_ECDSA_SHA384, b"",
                          digest)
        public_key_of(p384.ee).verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA384())))
        c.passed += 1
        # getKeyHandle with an unknown ID aborts the session (layouts 8.8).
        g = self.session(True, None, 5, "unknown-id")
        try:
            g.get_key_handle("No.Such.Key")
        except SksError:
            c.passed += 1
        else:
            raise Discrepancy("getKeyHandle returned a handle for an unknown ID (layouts 8.8)")
        c.true("getKeyHandle(unknown ID) aborted the session",
               g.handle not in enumerate_sessions(sks, True))

    # --- PIN grouping and pattern rules at createKeyEntry (layouts 8.3, 8.4) ----------------
    def pin_rules(self):
        c, sks = self.c, self.sks
        # (grouping, patterns, format, [(PIN, AppUsage) of earlier keys], (PIN, AppUsage), ok)
        cases = [
            (2, 0, 0, [(b"1357", 0)], (b"1357", 1), False),  # signature vs other class
            (2, 0, 0, [(b"1357", 1)], (b"1357", 2), True),
            (2, 0, 0, [(b"1357", 0)], (b"2468", 1), True),
            (3, 0, 0, [(b"1357", 1)], (b"1357", 2), False),  # unique: per AppUsage
            (3, 0, 0, [(b"1357", 1)], (b"1357", 1), True),
            (3, 0, 0, [(b"1357", 1)], (b"2468", 1), False),
            (0, 0x04, 0, [], (b"8765", 1), False),  # sequence
            (0, 0x10, 1, [], (b"AB34", 1), True),  # missing-group, alphanumeric
            (0, 0x10, 2, [], (b"2aZ.", 1), True),  # missing-group, string
            (0, 0x10, 2, [], (b"2aZA", 1), False),
        ]
        for grouping, patterns, fmt, earlier, (pin, usage), ok in cases:
            s = self.session(True, None, 50, "pin-rules")
            pol = s.create_pin_policy("PIN.R", None, grouping=grouping, patterns=patterns,
                                      fmt=fmt)
            for n, (p, u) in enumerate(earlier):
                s.create_key(f"Key.{n}", spec.ALG_EC_P256, pol, p, app_usage=u)
            what = (f"grouping {grouping}, patterns 0x{patterns:02X}, format {fmt}: PIN {pin!r} "
                    f"(AppUsage {usage}) after {earlier}")
            if ok:
                s.create_key("Key.N", spec.ALG_EC_P256, pol, pin, app_usage=usage)
                simple_call(sks, spec.ABORT_PROVISIONING_SESSION, int32(s.handle))
                c.passed += 1
            else:
                c.fails(f"{what} is refused", spec.ERROR_OPTION,
                        lambda: s.create_key("Key.N", spec.ALG_EC_P256, pol, pin,
                                             app_usage=usage))
                c.true(f"{what}: the session was aborted",
                       s.handle not in enumerate_sessions(sks, True))

    # --- a tampered MAC aborts the session (layouts 4.1, 8.9) ------------------------------
    def tampered_mac(self):
        c, sks = self.c, self.sks
        s = self.session(False, None, 20, "tampered")
        k = s.create_key("Key.T", spec.ALG_EC_P256, None)
        s.set_certificate_path(k)
        s.close_with_tampered_mac()
        c.true("the session with a tampered MAC was aborted",
               s.handle not in enumerate_sessions(sks, True))
        c.fails("the aborted session's key is gone", spec.ERROR_NO_KEY,
                lambda: key_attributes(sks, k.handle))

        # abortProvisioningSession removes the session and what it created (layouts 8.8).
        s = self.session(True, None, 20, "aborted")
        k = s.create_key("Key.A", spec.ALG_EC_P256, None)
        simple_call(sks, spec.ABORT_PROVISIONING_SESSION, int32(s.handle))
        c.true("abortProvisioningSession removed the session",
               s.handle not in enumerate_sessions(sks, True))
        c.fails("abortProvisioningSession removed its key", spec.ERROR_NO_KEY,
                lambda: key_attributes(sks, k.handle))
        c.fails("abortProvisioningSession on a closed handle", spec.ERROR_NO_SESSION,
                lambda: simple_call(sks, spec.ABORT_PROVISIONING_SESSION, int32(s.handle)))

    def all(self):
        self.device_info()
        a, kmk_a = self.session_a()
        self.note(f"session A (E2ES) done, {self.c.passed} checks")
        self.session_b(a, kmk_a)
        self.note(f"session B (E2ES post-operations) done, {self.c.passed} checks")
        self.session_c_d()
        self.note(f"sessions C, D (PEP) done, {self.c.passed} checks")
        self.session_key_limits()
        self.optional_key_algorithms()
        self.pin_rules()
        self.tampered_mac()
