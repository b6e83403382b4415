"""`hourglass keys` and `hourglass cose`: key generation and COSE creation/verification on the host.

Keys are COSE_Key files (CBOR). Private key files are written with mode 0600 and their secret parameters are
never printed. Primitives come from `cryptography` (P-256, Ed25519, HMAC, AES-CCM, AES key wrap) and
`pyhsslms` (HSS/LMS); COSE structures from `pycose` where it has the algorithm (ES256, EdDSA, HMAC, AES-CCM,
A128KW). pycose 1.1.0 has no ESP256 (-9), Ed25519 (-19) or HSS-LMS (-46), so for those the Sig_structure is
built with cbor2 (RFC 9052 section 4.4) and signed with the same libraries.

HSS/LMS private keys are stateful: every signature advances the key, and the key file is rewritten (atomically)
before the signature is written out, so a crash can waste a one-time key but never reuse one.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

# COSE algorithm identifiers and COSE_Key labels (RFC 9052/9053, RFC 8778, RFC 9864)
ES256, ESP256, EDDSA, ED25519, HSS_LMS = -7, -9, -8, -19, -46
HMAC_256_64, HMAC_256_256, AES_CCM_16_64_128, A128KW = 4, 5, 10, -3
KTY_OKP, KTY_EC2, KTY_SYMMETRIC, KTY_HSS_LMS = 1, 2, 4, 5
CRV_P256, CRV_ED25519 = 1, 6
HSS_PRIVATE_STATE = -65537  # private-use COSE_Key label: pyhsslms's serialized private key

ALG_NAMES = {"ES256": ES256, "ESP256": ESP256, "EdDSA": EDDSA, "Ed25519": ED25519, "HSS-LMS": HSS_LMS,
             "HMAC256/64": HMAC_256_64, "HMAC256": HMAC_256_256, "AES-CCM-16-64-128": AES_CCM_16_64_128,
             "A128KW": A128KW}
ALG_BY_ID = {v: k for k, v in ALG_NAMES.items()}
SIGN_ALGS = (ES256, ESP256, EDDSA, ED25519, HSS_LMS)
SECRET_LABELS = {-4: "d", HSS_PRIVATE_STATE: "HSS private state"}  # plus -1 (k) for symmetric keys

LMS_TYPES = {5: "lms_sha256_m32_h5", 10: "lms_sha256_m32_h10", 15: "lms_sha256_m32_h15",
             20: "lms_sha256_m32_h20", 25: "lms_sha256_m32_h25"}
LMOTS_TYPES = {1: "lmots_sha256_n32_w1", 2: "lmots_sha256_n32_w2", 4: "lmots_sha256_n32_w4",
               8: "lmots_sha256_n32_w8"}


class ToolError(Exception):
    pass


# --- key files -------------------------------------------------------------------------------------------

def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600 (replace, never truncate-then-write)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_key(path: Path) -> dict:
    import cbor2
    try:
        m = cbor2.loads(Path(path).read_bytes())
    except (OSError, cbor2.CBORDecodeError) as e:
        raise ToolError(f"cannot read COSE_Key {path}: {e}") from e
    if not isinstance(m, dict) or 1 not in m:
        raise ToolError(f"{path} is not a COSE_Key map")
    return dict(m)


def is_private(key: dict) -> bool:
    if key[1] == KTY_SYMMETRIC:
        return True
    return -4 in key or HSS_PRIVATE_STATE in key


def public_of(key: dict) -> dict:
    """The public COSE_Key: the same map without secret parameters."""
    if key[1] == KTY_SYMMETRIC:
        raise ToolError("a symmetric key has no public part")
    return {k: v for k, v in key.items() if k not in SECRET_LABELS}


def describe(key: dict) -> str:
    """One line about a key with no secret in it."""
    kty = {KTY_OKP: "OKP", KTY_EC2: "EC2", KTY_SYMMETRIC: "Symmetric", KTY_HSS_LMS: "HSS-LMS"}.get(key[1], key[1])
    parts = [f"kty={kty}", f"alg={ALG_BY_ID.get(key.get(3), key.get(3))}"]
    if 2 in key:
        kid = key[2]
        parts.append(f"kid={kid.decode() if kid.isascii() and kid.decode().isprintable() else kid.hex()}")
    if key[1] == KTY_SYMMETRIC:
        parts.append(f"bits={len(key[-1]) * 8}")
    else:
        parts.append(f"public-sha256={hashlib.sha256(public_raw(key)).hexdigest()[:16]}")
    if HSS_PRIVATE_STATE in key:
        parts.append(f"signatures-left={_hss_private(key).remaining()}")
    parts.append("private" if is_private(key) else "public")
    return " ".join(parts)


def public_raw(key: dict) -> bytes:
    """Raw public key as the device primitives take it: P-256 65-byte uncompressed, Ed25519 32, HSS 60."""
    if key[1] == KTY_EC2:
        return b"\x04" + key[-2] + key[-3]
    if key[1] == KTY_OKP:
        return key[-2]
    if key[1] == KTY_HSS_LMS:
        return key[-1]
    raise ToolError("a symmetric key has no public part")


def generate(alg: int, kid: bytes | None, levels: int = 2, height: int = 10, w: int = 4) -> dict:
    key: dict = {3: alg}
    if kid is not None:
        key[2] = kid
    if alg in (ES256, ESP256):
        from cryptography.hazmat.primitives.asymmetric import ec
        priv = ec.generate_private_key(ec.SECP256R1())
        nums = priv.private_numbers()
        key.update({1: KTY_EC2, -1: CRV_P256, -2: nums.public_numbers.x.to_bytes(32, "big"),
                    -3: nums.public_numbers.y.to_bytes(32, "big"), -4: nums.private_value.to_bytes(32, "big")})
    elif alg in (EDDSA, ED25519):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        priv = ed25519.Ed25519PrivateKey.generate()
        raw = serialization.Encoding.Raw
        key.update({1: KTY_OKP, -1: CRV_ED25519,
                    -2: priv.public_key().public_bytes(raw, serialization.PublicFormat.Raw),
                    -4: priv.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())})
    elif alg == HSS_LMS:
        priv = _hss_generate(levels, height, w)
        key.update({1: KTY_HSS_LMS, -1: priv.publicKey().serialize(), HSS_PRIVATE_STATE: priv.serialize()})
    elif alg in (HMAC_256_64, HMAC_256_256):
        key.update({1: KTY_SYMMETRIC, -1: os.urandom(32)})
    elif alg in (AES_CCM_16_64_128, A128KW):
        key.update({1: KTY_SYMMETRIC, -1: os.urandom(16)})
    else:
        raise ToolError(f"cannot generate keys for alg {alg}")
    return key


def _hss_generate(levels: int, height: int, w: int):
    """pyhsslms HSS key, one tree per level with a progress bar (a height-20 tree takes minutes)."""
    from pyhsslms import pyhsslms as hsslms
    from tqdm import tqdm
    if not 1 <= levels <= 8:
        raise ToolError("HSS levels must be 1..8")
    if height not in LMS_TYPES or w not in LMOTS_TYPES:
        raise ToolError(f"LMS height must be one of {sorted(LMS_TYPES)}, Winternitz w one of {sorted(LMOTS_TYPES)}")
    lms_type = getattr(hsslms, LMS_TYPES[height])
    ots_type = getattr(hsslms, LMOTS_TYPES[w])
    seed = os.urandom(32)
    prvs, sigs = [], []
    for _ in tqdm(range(levels), desc="HSS trees", unit="level", file=sys.stderr, disable=levels == 1):
        prvs.append(hsslms.LmsPrivateKey(lms_type=lms_type, lmots_type=ots_type, SEED=seed))
        if len(prvs) > 1:
            sigs.append(prvs[-2].sign(prvs[-1].publicKey().serialize()))
    return hsslms.HssPrivateKey(levels=levels, lms_type=lms_type, lmots_type=ots_type, SEED=seed,
                                prvs=prvs, sigs=sigs)


def _hss_private(key: dict):
    from pyhsslms import pyhsslms as hsslms
    return hsslms.HssPrivateKey.deserialize(key[HSS_PRIVATE_STATE])


def public_pem(key: dict) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    if key[1] == KTY_EC2:
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_raw(key))
    elif key[1] == KTY_OKP:
        pub = ed25519.Ed25519PublicKey.from_public_bytes(public_raw(key))
    else:
        raise ToolError("PEM export is for P-256 and Ed25519 keys")
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- COSE ------------------------------------------------------------------------------------------------

def _pycose_key(key: dict):
    from pycose.keys import CoseKey
    return CoseKey.from_dict({k: v for k, v in key.items() if k != HSS_PRIVATE_STATE})


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
    if alg in (ES256, ESP256):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        priv = ec.derive_private_key(int.from_bytes(key[-4], "big"), ec.SECP256R1())
        r, s = decode_dss_signature(priv.sign(tbs, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg in (EDDSA, ED25519):
        from cryptography.hazmat.primitives.asymmetric import ed25519
        return ed25519.Ed25519PrivateKey.from_private_bytes(key[-4]).sign(tbs)
    if alg == HSS_LMS:
        import cbor2
        priv = _hss_private(key)
        if priv.is_exhausted():
            raise ToolError("HSS key is exhausted: no one-time signatures left")
        sig = priv.sign(tbs)
        # persist the advanced state before the signature leaves this process
        key[HSS_PRIVATE_STATE] = priv.serialize()
        if key_path is None:
            raise ToolError("HSS signing needs the key file, to advance its state")
        write_private(key_path, cbor2.dumps(key, canonical=True))
        return sig
    raise ToolError(f"alg {alg} is not a signature algorithm")


def sign1(key: dict, payload: bytes, alg: int | None = None, detached: bool = False, external_aad: bytes = b"",
          include_kid: bool = True, key_path: Path | None = None) -> bytes:
    import cbor2
    alg = alg if alg is not None else key.get(3)
    if alg not in SIGN_ALGS:
        raise ToolError(f"not a signature algorithm: {alg}")
    if not is_private(key):
        raise ToolError("signing needs a private key")
    phdr, uhdr = _headers(alg, key, include_kid)
    if alg in (ES256, EDDSA):
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
    if alg not in (HMAC_256_64, HMAC_256_256):
        raise ToolError(f"not a MAC algorithm: {alg}")
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
    alg = key.get(3, AES_CCM_16_64_128)
    if alg != AES_CCM_16_64_128:
        raise ToolError("Encrypt0 here is AES-CCM-16-64-128 (alg 10)")
    phdr, uhdr = _headers(alg, key, include_kid)
    uhdr[5] = iv if iv is not None else os.urandom(13)
    msg = Enc0Message(phdr=phdr, uhdr=uhdr, payload=plaintext, external_aad=external_aad)
    msg.key = _pycose_key(key)
    return msg.encode()


def verify1(key: dict, data: bytes, payload: bytes | None = None, external_aad: bytes = b"") -> bytes:
    """Check a COSE_Sign1 or COSE_Mac0 with one key; return the payload or raise ToolError."""
    import cbor2
    obj = cbor2.loads(data)
    tag = obj.tag if isinstance(obj, cbor2.CBORTag) else None
    arr = _thaw(obj.value if tag is not None else obj)
    if not isinstance(arr, list) or len(arr) != 4:
        raise ToolError("not a COSE_Sign1/COSE_Mac0 array")
    body = arr[2] if arr[2] is not None else payload
    if body is None:
        raise ToolError("detached payload: give --payload")
    phdr = cbor2.loads(arr[0]) if arr[0] else {}
    alg = phdr.get(1, arr[1].get(1))
    if tag == 17 or alg in (HMAC_256_64, HMAC_256_256):
        from pycose.messages import Mac0Message
        msg = Mac0Message.from_cose_obj([arr[0], arr[1], body, arr[3]], True)
        msg.key, msg.external_aad = _pycose_key(key), external_aad
        if not msg.verify_tag():
            raise ToolError("MAC does not verify")
        return body
    tbs = cbor2.dumps(["Signature1", arr[0], external_aad, body])
    sig = arr[3]
    from cryptography.exceptions import InvalidSignature
    try:
        if alg in (ES256, ESP256):
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
            if len(sig) != 64:
                raise ToolError("ES256 signature must be 64 bytes")
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_raw(key))
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        elif alg in (EDDSA, ED25519):
            from cryptography.hazmat.primitives.asymmetric import ed25519
            ed25519.Ed25519PublicKey.from_public_bytes(public_raw(key)).verify(sig, tbs)
        elif alg == HSS_LMS:
            from pyhsslms import pyhsslms as hsslms
            if not hsslms.HssPublicKey.deserialize(public_raw(key)).verify(tbs, sig):
                raise InvalidSignature()
        else:
            raise ToolError(f"unsupported algorithm {alg}")
    except InvalidSignature as e:
        raise ToolError("signature does not verify") from e
    return body


# --- command line ----------------------------------------------------------------------------------------

def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as e:
        raise ToolError(f"cannot read {name}: {e}") from e


def _write_output(data: bytes, out: str | None, hex_out: bool) -> None:
    if out and out != "-":
        Path(out).write_bytes(data)
        print(f"wrote {out} ({len(data)} bytes)", file=sys.stderr)
    elif hex_out or sys.stdout.isatty():
        print(data.hex())
    else:
        sys.stdout.buffer.write(data)


def _alg(name: str) -> int:
    if name in ALG_NAMES:
        return ALG_NAMES[name]
    try:
        return int(name)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown algorithm {name!r}; one of {', '.join(ALG_NAMES)}") from None


def _hex(s: str) -> bytes:
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {s!r}") from None


def cmd_generate(args) -> int:
    import cbor2
    kid = args.kid.encode() if args.kid is not None else None
    key = generate(args.alg, kid, args.levels, args.height, args.w)
    base = Path(args.out)
    priv_path = base.with_name(base.name + ".key")
    write_private(priv_path, cbor2.dumps(key, canonical=True))
    print(f"wrote {priv_path} (private, mode 0600): {describe(key)}", file=sys.stderr)
    if key[1] != KTY_SYMMETRIC:
        pub_path = base.with_name(base.name + ".pub")
        pub_path.write_bytes(cbor2.dumps(public_of(key), canonical=True))
        print(f"wrote {pub_path}", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    print(describe(load_key(args.key)))
    return 0


def cmd_public(args) -> int:
    import cbor2
    key = load_key(args.key)
    if args.format == "cose":
        data = cbor2.dumps(public_of(key), canonical=True)
    elif args.format == "raw":
        data = public_raw(key)
    else:
        data = public_pem(key)
    if args.format == "pem" and not args.out:
        sys.stdout.write(data.decode())
    else:
        _write_output(data, args.out, args.hex)
    return 0


def cmd_sign1(args) -> int:
    key = load_key(args.key)
    out = sign1(key, _read_input(args.payload), args.alg, args.detached, args.aad, not args.no_kid,
                key_path=Path(args.key))
    _write_output(out, args.out, args.hex)
    return 0


def cmd_mac0(args) -> int:
    out = mac0(load_key(args.key), _read_input(args.payload), args.alg, args.detached, args.aad, not args.no_kid)
    _write_output(out, args.out, args.hex)
    return 0


def cmd_encrypt0(args) -> int:
    out = encrypt0(load_key(args.key), _read_input(args.plaintext), args.iv, args.aad, not args.no_kid)
    _write_output(out, args.out, args.hex)
    return 0


def cmd_verify(args) -> int:
    payload = _read_input(args.payload) if args.payload else None
    try:
        body = verify1(load_key(args.key), _read_input(args.message), payload, args.aad)
    except ToolError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"OK: {len(body)}-byte payload verifies", file=sys.stderr)
    return 0


def _run(fn):
    def handler(args) -> int:
        try:
            return fn(args)
        except ToolError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return handler


def register(subparsers) -> None:
    kp = subparsers.add_parser("keys", help="generate and inspect COSE keys (P-256, Ed25519, HSS-LMS, symmetric)",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ks = kp.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    g = ks.add_parser("generate", help="new key pair: OUT.key (private COSE_Key, 0600) and OUT.pub")
    g.add_argument("alg", type=_alg, help=f"one of {', '.join(ALG_NAMES)}")
    g.add_argument("-o", "--out", required=True, help="file name base")
    g.add_argument("--kid", help="key id (text)")
    g.add_argument("--levels", type=int, default=2, help="HSS levels (default 2)")
    g.add_argument("--height", type=int, default=10, choices=sorted(LMS_TYPES), help="LMS tree height (default 10)")
    g.add_argument("--w", type=int, default=4, choices=sorted(LMOTS_TYPES), help="LM-OTS Winternitz w (default 4)")
    g.set_defaults(func=_run(cmd_generate))
    i = ks.add_parser("info", help="describe a key file (never prints secrets)")
    i.add_argument("key")
    i.set_defaults(func=_run(cmd_info))
    p = ks.add_parser("public", help="export the public key")
    p.add_argument("key")
    p.add_argument("--format", choices=("cose", "raw", "pem"), default="cose")
    p.add_argument("-o", "--out")
    p.add_argument("--hex", action="store_true", help="print hex instead of binary")
    p.set_defaults(func=_run(cmd_public))

    cp = subparsers.add_parser("cose", help="create and verify COSE_Sign1 / COSE_Mac0 / COSE_Encrypt0",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cs = cp.add_subparsers(dest="cose_command", metavar="ACTION", required=True)

    def common(sp, data_name):
        sp.add_argument("-k", "--key", required=True, help="COSE_Key file")
        sp.add_argument(data_name, help="input file, or - for stdin")
        sp.add_argument("--aad", type=_hex, default=b"", help="external AAD (hex)")
        sp.add_argument("--no-kid", action="store_true", help="leave the kid header out")
        sp.add_argument("-o", "--out", help="output file (default stdout)")
        sp.add_argument("--hex", action="store_true", help="print hex instead of binary")

    s = cs.add_parser("sign1", help="COSE_Sign1 (ES256, ESP256, EdDSA, Ed25519, HSS-LMS)")
    common(s, "payload")
    s.add_argument("--alg", type=_alg, help="override the key's alg")
    s.add_argument("--detached", action="store_true", help="leave the payload out (nil)")
    s.set_defaults(func=_run(cmd_sign1))
    m = cs.add_parser("mac0", help="COSE_Mac0 (HMAC 256/64, HMAC 256/256)")
    common(m, "payload")
    m.add_argument("--alg", type=_alg)
    m.add_argument("--detached", action="store_true")
    m.set_defaults(func=_run(cmd_mac0))
    e = cs.add_parser("encrypt0", help="COSE_Encrypt0 with AES-CCM-16-64-128")
    common(e, "plaintext")
    e.add_argument("--iv", type=_hex, help="13-byte IV (hex); random by default")
    e.set_defaults(func=_run(cmd_encrypt0))
    v = cs.add_parser("verify", help="check a COSE_Sign1 or COSE_Mac0; exit 0 if valid, 1 if not")
    v.add_argument("-k", "--key", required=True)
    v.add_argument("message")
    v.add_argument("--payload", help="detached payload file")
    v.add_argument("--aad", type=_hex, default=b"")
    v.set_defaults(func=_run(cmd_verify))
