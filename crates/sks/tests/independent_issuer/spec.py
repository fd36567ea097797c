"""SKS 1.00 constants and the issuer-side cryptography, written from the byte-layout
document (SKS-1.00-byte-layouts.md, cited as "layouts") and the SKS API text.
"""

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes, padding as sympad
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from .wire import array, boolean, int32, short, string

KG2 = "http://xmlns.webpki.org/keygen2/1.0#algorithm."
ALG_SESSION = KG2 + "sks.s1"
ALG_KEY = KG2 + "sks.k1"
ALG_NONE = KG2 + "none"
ALG_EC_P256 = KG2 + "ec.p256"
ALG_RSA1024 = KG2 + "rsa1024"
ALG_RSA2048 = KG2 + "rsa2048"
ALG_RSA1024_EXP = KG2 + "rsa1024.exp"
ALG_EC_P384 = KG2 + "ec.p384"
ALG_ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ALG_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALG_HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
ALG_AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
ALG_RSA_PKCS1 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
ALG_ECDH_RAW = KG2 + "ecdh.raw"

DEVICE_ID_PEP = b"Anonymous"
NOT_APPLICABLE = "#N/A"
DEVICE_PIN = "#Device PIN"

# Method IDs (seed section 7.4).
GET_DEVICE_INFO = 1
CREATE_PROVISIONING_SESSION = 2
CLOSE_PROVISIONING_SESSION = 3
ENUMERATE_PROVISIONING_SESSIONS = 4
ABORT_PROVISIONING_SESSION = 5
SIGN_PROVISIONING_SESSION_DATA = 6
CREATE_PUK_POLICY = 7
CREATE_PIN_POLICY = 8
CREATE_KEY_ENTRY = 9
GET_KEY_HANDLE = 10
SET_CERTIFICATE_PATH = 11
IMPORT_SYMMETRIC_KEY = 12
IMPORT_PRIVATE_KEY = 13
ADD_EXTENSION = 14
POST_DELETE_KEY = 50
POST_UNLOCK_KEY = 51
POST_UPDATE_KEY = 52
POST_CLONE_KEY_PROTECTION = 53
ENUMERATE_KEYS = 70
GET_KEY_ATTRIBUTES = 71
GET_KEY_PROTECTION_INFO = 72
GET_EXTENSION = 73
SET_PROPERTY = 74
DELETE_KEY = 80
EXPORT_KEY = 81
UNLOCK_KEY = 82
CHANGE_PIN = 83
SET_PIN = 84
SIGN_HASHED_DATA = 100
ASYMMETRIC_KEY_DECRYPT = 101
KEY_AGREEMENT = 102
PERFORM_HMAC = 103
SYMMETRIC_KEY_ENCRYPT = 104

# Error codes (layouts 9.2).
ERROR_AUTHORIZATION = 0x01
ERROR_NOT_ALLOWED = 0x02
ERROR_MAC = 0x04
ERROR_NO_SESSION = 0x06
ERROR_NO_KEY = 0x07
ERROR_OPTION = 0x09

# ProtectionStatus bits (layouts 9.8), KeyBackup bits (9.9).
PIN_PROTECTED = 0x01
PUK_PROTECTED = 0x02
PIN_BLOCKED = 0x04
KEYBACKUP_SERVER = 0x01
KEYBACKUP_LOCAL = 0x02

SUBTYPE_EXTENSION = 0x00
SUBTYPE_ENCRYPTED = 0x01
SUBTYPE_PROPERTY_BAG = 0x02
SUBTYPE_LOGOTYPE = 0x03


def hmac_sha256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def spki(public_key):
    """X.509 SubjectPublicKeyInfo DER (layouts 1.4)."""
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def verify_signature(public_key, signature, message):
    """SHA256withRSA / SHA256withECDSA (DER) over `message` (layouts 3, 7): raises on failure."""
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    else:
        raise TypeError("unsupported public key type")


def sign_message(private_key, message):
    """SHA256withRSA / SHA256withECDSA (DER) over `message`, the scheme hashing it again."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def canonical_p256_spki(der):
    """True if `der` is the 91-octet named-curve P-256 SPKI of layouts 1.4."""
    prefix = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    return len(der) == 91 and der.startswith(prefix) and der[26] == 0x04


def id_syntax_ok(value):
    """Layouts 8.1: 1..32 chars, first `A-Za-z_`, then `A-Za-z0-9_.-`."""
    first = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
    rest = first | set("0123456789.-")
    return 1 <= len(value) <= 32 and value[0] in first and all(c in rest for c in value[1:])


class SessionCrypto:
    """The issuer's half of a provisioning session: SessionKey, the MAC sequence counter and
    the SessionKeyLimit units it has spent (layouts 2, 4, 5, 6, 7)."""

    def __init__(self, session_key, device_id):
        self.session_key = session_key
        self.device_id = device_id
        self.counter = 0
        self.units = 0

    @staticmethod
    def derive(z, client_session_id, server_session_id, issuer_uri, device_id):
        """Layouts 2.1 step 9: SessionKey = HMAC(Z, KDFData)."""
        kdf = (string(client_session_id) + string(server_session_id) + string(issuer_uri)
               + array(device_id))
        return hmac_sha256(z, kdf)

    def mac(self, method_name, data):
        """Layouts 4.1: MAC with the next counter value (post-increment)."""
        key = self.session_key + method_name.encode("ascii") + short(self.counter)
        self.counter += 1
        self.units += 1
        return hmac_sha256(key, data)

    def attestation(self, data):
        """Layouts 4.3: the SKS-made attestation with the next counter value."""
        key = self.session_key + b"Device Attestation" + short(self.counter)
        self.counter += 1
        self.units += 1
        return hmac_sha256(key, data)

    def encryption_key(self):
        """Layouts 5: one SessionKey operation per value the SKS decrypts."""
        self.units += 1
        return hmac_sha256(self.session_key, b"Encryption Key")

    def encrypt(self, plaintext):
        """Layouts 5: IV || AES-256-CBC(EncryptionKey, IV, PKCS#7(plaintext))."""
        iv = os.urandom(16)
        padder = sympad.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(algorithms.AES(self.encryption_key()), modes.CBC(iv)).encryptor()
        return iv + enc.update(padded) + enc.finalize()

    def external_signature(self, data):
        """Layouts 6.3: signProvisioningSessionData."""
        self.units += 1
        return hmac_sha256(self.session_key + b"External Signature", data)

    def target_key_reference(self, target_ee_cert, kmk_private):
        """Layouts 7: Authorization = Sign(KMK, HMAC(SessionKey || DeviceID, EE cert))."""
        self.units += 1
        tkr = hmac_sha256(self.session_key + self.device_id, target_ee_cert)
        return sign_message(kmk_private, tkr)


def session_attestation_data(privacy, server_ephemeral, client_ephemeral, kmk, client_time,
                             life_time, key_limit):
    """Layouts 3: AttData."""
    return (string(ALG_SESSION) + boolean(privacy) + array(server_ephemeral)
            + array(client_ephemeral) + array(kmk) + int32(client_time) + int32(life_time)
            + short(key_limit))


def ecdh_z(private_key, peer_spki):
    """Layouts 2.3: the 32-octet X coordinate of the shared point."""
    peer = load_der_public_key(peer_spki)
    return private_key.exchange(ec.ECDH(), peer)
