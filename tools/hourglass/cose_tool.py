"""`hourglass cose`: create and verify COSE_Sign1, COSE_Mac0 and COSE_Encrypt0 on the host with `hourglass keys` files.

COSE structures come from `pycose` where it has the algorithm (ES256, EdDSA, HMAC, AES-CCM). pycose 1.1.0 has no
ESP256 (-9), Ed25519 (-19) or HSS-LMS (-46), so for those the Sig_structure is built with cbor2 (RFC 9052
section 4.4) and signed with `cryptography` / `pyhsslms`. Algorithm numbers are the device code's
(lib/cose/cose/algs.py). Signing with an HSS-LMS key rewrites its key file first (see hourglass.keys).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hourglass import keys
from hourglass.common import UserError

algs = keys.algs


# --- messages ---------------------------------------------------------------------------------------------

def _pycose_key(key: dict):
    from pycose.keys import CoseKey
    return CoseKey.from_dict({k: v for k, v in key.items() if k != keys.HSS_PRIVATE_STATE})


def _thaw(x):
    # cbor2 6 decodes containers inside tags as tuples/frozendicts, which pycose 1.1.0 rejects
    if isinstance(x, (list, tuple)):
        return [_thaw(v) for v in x]
    if isinstance(x, dict) or type(x).__name__ == "frozendict":
        return {k: _thaw(v) for k, v in x.items()}
    return x


def _headers(alg: int, key: dict, include_kid: bool) -> tuple[dict, dict]:
    phdr = {1: alg}
    uhdr = {4: key[2]} if include_kid and 2 in key else {}
    return phdr, uhdr


def _sign_raw(alg: int, key: dict, tbs: bytes, key_path: Path | None) -> bytes:
    """Signature over the Sig_structure for the algorithms pycose lacks."""
    if alg in (algs.ES256, algs.ESP256):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        priv = ec.derive_private_key(int.from_bytes(key[-4], "big"), ec.SECP256R1())
        r, s = decode_dss_signature(priv.sign(tbs, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg in (algs.EDDSA, algs.ED25519):
        from cryptography.hazmat.primitives.asymmetric import ed25519
        return ed25519.Ed25519PrivateKey.from_private_bytes(key[-4]).sign(tbs)
    if alg == algs.HSS_LMS:
        import cbor2
        priv = keys.hss_private(key)
        if priv.is_exhausted():
            raise UserError("HSS key is exhausted: no one-time signatures left")
        sig = priv.sign(tbs)
        # persist the advanced state before the signature leaves this process
        key[keys.HSS_PRIVATE_STATE] = priv.serialize()
        if key_path is None:
            raise UserError("HSS signing needs the key file, to advance its state")
        keys.write_private(key_path, cbor2.dumps(key, canonical=True))
        return sig
    raise UserError(f"alg {alg} is not a signature algorithm")


def sign1(key: dict, payload: bytes, alg: int | None = None, detached: bool = False, external_aad: bytes = b"",
          include_kid: bool = True, key_path: Path | None = None) -> bytes:
    import cbor2
    alg = alg if alg is not None else key.get(3)
    if alg not in algs.SIGNATURE_ALGS:
        raise UserError(f"not a signature algorithm: {alg}")
    if not keys.is_private(key):
        raise UserError("signing needs a private key")
    phdr, uhdr = _headers(alg, key, include_kid)
    if alg in (algs.ES256, algs.EDDSA):
        from pycose.messages import Sign1Message
        msg = Sign1Message(phdr=phdr, uhdr=uhdr, payload=payload, external_aad=external_aad)
        msg.key = _pycose_key(key)
        arr = _thaw(cbor2.loads(msg.encode()).value)
    else:
        pb = cbor2.dumps(phdr)
        tbs = cbor2.dumps(["Signature1", pb, external_aad, payload])
        arr = [pb, uhdr, payload, _sign_raw(alg, key, tbs, key_path)]
    if detached:
        arr[2] = None
    return cbor2.dumps(cbor2.CBORTag(18, arr))


def mac0(key: dict, payload: bytes, alg: int | None = None, detached: bool = False, external_aad: bytes = b"",
         include_kid: bool = True) -> bytes:
    import cbor2
    from pycose.messages import Mac0Message
    alg = alg if alg is not None else key.get(3)
    if alg not in (algs.HMAC_256_64, algs.HMAC_256_256):
        raise UserError(f"not a MAC algorithm: {alg}")
    phdr, uhdr = _headers(alg, key, include_kid)
    msg = Mac0Message(phdr=phdr, uhdr=uhdr, payload=payload, external_aad=external_aad)
    msg.key = _pycose_key(key)
    arr = _thaw(cbor2.loads(msg.encode()).value)
    if detached:
        arr[2] = None
    return cbor2.dumps(cbor2.CBORTag(17, arr))


def encrypt0(key: dict, plaintext: bytes, iv: bytes | None = None, external_aad: bytes = b"",
             include_kid: bool = True) -> bytes:
    from pycose.messages import Enc0Message
    alg = key.get(3, algs.AES_CCM_16_64_128)
    if alg != algs.AES_CCM_16_64_128:
        raise UserError("Encrypt0 here is AES-CCM-16-64-128 (alg 10)")
    phdr, uhdr = _headers(alg, key, include_kid)
    uhdr[5] = iv if iv is not None else os.urandom(13)
    msg = Enc0Message(phdr=phdr, uhdr=uhdr, payload=plaintext, external_aad=external_aad)
    msg.key = _pycose_key(key)
    return msg.encode()


def verify1(key: dict, data: bytes, payload: bytes | None = None, external_aad: bytes = b"") -> bytes:
    """Check a COSE_Sign1 or COSE_Mac0 with one key; return the payload or raise UserError."""
    import cbor2
    try:
        obj = cbor2.loads(data)
    except cbor2.CBORDecodeError as e:
        raise UserError(f"not a COSE message (CBOR: {e})") from e
    tag = obj.tag if isinstance(obj, cbor2.CBORTag) else None
    arr = _thaw(obj.value if tag is not None else obj)
    if not isinstance(arr, list) or len(arr) != 4 or not isinstance(arr[1], dict):
        raise UserError("not a COSE_Sign1/COSE_Mac0 array")
    body = arr[2] if arr[2] is not None else payload
    if body is None:
        raise UserError("detached payload: give --payload")
    phdr = cbor2.loads(arr[0]) if arr[0] else {}
    alg = phdr.get(1, arr[1].get(1))
    if tag == 17 or alg in (algs.HMAC_256_64, algs.HMAC_256_256):
        from pycose.messages import Mac0Message
        msg = Mac0Message.from_cose_obj([arr[0], arr[1], body, arr[3]], True)
        msg.key, msg.external_aad = _pycose_key(key), external_aad
        if not msg.verify_tag():
            raise UserError("MAC does not verify")
        return body
    tbs = cbor2.dumps(["Signature1", arr[0], external_aad, body])
    sig = arr[3]
    from cryptography.exceptions import InvalidSignature
    try:
        if alg in (algs.ES256, algs.ESP256):
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
            if len(sig) != 64:
                raise UserError("ES256 signature must be 64 bytes")
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keys.public_raw(key))
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        elif alg in (algs.EDDSA, algs.ED25519):
            from cryptography.hazmat.primitives.asymmetric import ed25519
            ed25519.Ed25519PublicKey.from_public_bytes(keys.public_raw(key)).verify(sig, tbs)
        elif alg == algs.HSS_LMS:
            from pyhsslms import pyhsslms as hsslms
            if not hsslms.HssPublicKey.deserialize(keys.public_raw(key)).verify(tbs, sig):
                raise InvalidSignature()
        else:
            raise UserError(f"unsupported algorithm {alg}")
    except InvalidSignature as e:
        raise UserError("signature does not verify") from e
    return body


# --- command line ----------------------------------------------------------------------------------------

def read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {name}: {e.strerror}") from e


def parse_hex(s: str) -> bytes:
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {s!r}") from None


def cmd_sign1(args) -> int:
    key = keys.load_key(args.key)
    out = sign1(key, read_input(args.payload), args.alg, args.detached, args.aad, not args.no_kid,
                key_path=Path(args.key))
    keys.write_output(out, args.out, args.hex)
    return 0


def cmd_mac0(args) -> int:
    out = mac0(keys.load_key(args.key), read_input(args.payload), args.alg, args.detached, args.aad,
               not args.no_kid)
    keys.write_output(out, args.out, args.hex)
    return 0


def cmd_encrypt0(args) -> int:
    out = encrypt0(keys.load_key(args.key), read_input(args.plaintext), args.iv, args.aad, not args.no_kid)
    keys.write_output(out, args.out, args.hex)
    return 0


def cmd_verify(args) -> int:
    payload = read_input(args.payload) if args.payload else None
    body = verify1(keys.load_key(args.key), read_input(args.message), payload, args.aad)
    print(f"OK: {len(body)}-byte payload verifies", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    cp = subparsers.add_parser("cose", help="create and verify COSE_Sign1 / COSE_Mac0 / COSE_Encrypt0",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cs = cp.add_subparsers(dest="cose_command", metavar="ACTION", required=True)

    def common(sp, data_name):
        sp.add_argument("-k", "--key", required=True, help="COSE_Key file")
        sp.add_argument(data_name, help="input file, or - for stdin")
        sp.add_argument("--aad", type=parse_hex, default=b"", help="external AAD (hex)")
        sp.add_argument("--no-kid", action="store_true", help="leave the kid header out")
        sp.add_argument("-o", "--out", help="output file (default stdout)")
        sp.add_argument("--hex", action="store_true", help="print hex instead of binary")

    s = cs.add_parser("sign1", help="COSE_Sign1 (ES256, ESP256, EdDSA, Ed25519, HSS-LMS)")
    common(s, "payload")
    s.add_argument("--alg", type=keys.parse_alg, help="override the key's alg")
    s.add_argument("--detached", action="store_true", help="leave the payload out (nil)")
    s.set_defaults(func=cmd_sign1)
    m = cs.add_parser("mac0", help="COSE_Mac0 (HMAC 256/64, HMAC 256/256)")
    common(m, "payload")
    m.add_argument("--alg", type=keys.parse_alg)
    m.add_argument("--detached", action="store_true")
    m.set_defaults(func=cmd_mac0)
    e = cs.add_parser("encrypt0", help="COSE_Encrypt0 with AES-CCM-16-64-128")
    common(e, "plaintext")
    e.add_argument("--iv", type=parse_hex, help="13-byte IV (hex); random by default")
    e.set_defaults(func=cmd_encrypt0)
    v = cs.add_parser("verify", help="check a COSE_Sign1 or COSE_Mac0; exit 0 if valid, 1 if not")
    v.add_argument("-k", "--key", required=True)
    v.add_argument("message")
    v.add_argument("--payload", help="detached payload file")
    v.add_argument("--aad", type=parse_hex, default=b"")
    v.set_defaults(func=cmd_verify)
