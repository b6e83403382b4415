"""`hourglass keys`: generate and inspect COSE_Key files on the host (`hourglass cose` signs with them).

Keys are COSE_Key files (CBOR). Private key files are written with mode 0600 and their secret parameters are
never printed. Primitives come from `cryptography` (P-256, Ed25519) and `pyhsslms` (HSS/LMS). The COSE
algorithm numbers and key types are the device code's own (lib/cose/cose/algs.py), imported here.

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

from hourglass.common import UserError, device_module

algs = device_module("cose.algs")
HSS_PRIVATE_STATE = -65537  # private-use COSE_Key label: pyhsslms's serialized private key

# Algorithm names as the command line takes them.
ALG_NAMES = {"ES256": algs.ES256, "ESP256": algs.ESP256, "EdDSA": algs.EDDSA, "Ed25519": algs.ED25519,
             "HSS-LMS": algs.HSS_LMS, "HMAC256/64": algs.HMAC_256_64, "HMAC256": algs.HMAC_256_256,
             "AES-CCM-16-64-128": algs.AES_CCM_16_64_128, "A128KW": algs.A128KW}
ALG_BY_ID = {v: k for k, v in ALG_NAMES.items()}
SECRET_LABELS = {-4: "d", HSS_PRIVATE_STATE: "HSS private state"}  # plus -1 (k) for symmetric keys

LMS_TYPES = {5: "lms_sha256_m32_h5", 10: "lms_sha256_m32_h10", 15: "lms_sha256_m32_h15",
             20: "lms_sha256_m32_h20", 25: "lms_sha256_m32_h25"}
LMOTS_TYPES = {1: "lmots_sha256_n32_w1", 2: "lmots_sha256_n32_w2", 4: "lmots_sha256_n32_w4",
               8: "lmots_sha256_n32_w8"}


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
        raise UserError(f"cannot read COSE_Key {path}: {e}") from e
    if not isinstance(m, dict) or 1 not in m:
        raise UserError(f"{path} is not a COSE_Key map")
    return dict(m)


def is_private(key: dict) -> bool:
    if key[1] == algs.KTY_SYMMETRIC:
        return True
    return -4 in key or HSS_PRIVATE_STATE in key


def public_of(key: dict) -> dict:
    """The public COSE_Key: the same map without secret parameters."""
    if key[1] == algs.KTY_SYMMETRIC:
        raise UserError("a symmetric key has no public part")
    return {k: v for k, v in key.items() if k not in SECRET_LABELS}


def describe(key: dict) -> str:
    """One line about a key with no secret in it."""
    kty = {algs.KTY_OKP: "OKP", algs.KTY_EC2: "EC2", algs.KTY_SYMMETRIC: "Symmetric",
           algs.KTY_HSS_LMS: "HSS-LMS"}.get(key[1], key[1])
    parts = [f"kty={kty}", f"alg={ALG_BY_ID.get(key.get(3), key.get(3))}"]
    if 2 in key:
        kid = key[2]
        parts.append(f"kid={kid.decode() if kid.isascii() and kid.decode().isprintable() else kid.hex()}")
    if key[1] == algs.KTY_SYMMETRIC:
        parts.append(f"bits={len(key[-1]) * 8}")
    else:
        parts.append(f"public-sha256={hashlib.sha256(public_raw(key)).hexdigest()[:16]}")
    if HSS_PRIVATE_STATE in key:
        parts.append(f"signatures-left={hss_private(key).remaining()}")
    parts.append("private" if is_private(key) else "public")
    return " ".join(parts)


def public_raw(key: dict) -> bytes:
    """Raw public key as the device primitives take it: P-256 65-byte uncompressed, Ed25519 32, HSS 60."""
    if key[1] == algs.KTY_EC2:
        return b"\x04" + key[-2] + key[-3]
    if key[1] == algs.KTY_OKP:
        return key[-2]
    if key[1] == algs.KTY_HSS_LMS:
        return key[-1]
    raise UserError("a symmetric key has no public part")


def generate(alg: int, kid: bytes | None, levels: int = 2, height: int = 10, w: int = 4) -> dict:
    key: dict = {3: alg}
    if kid is not None:
        key[2] = kid
    if alg in (algs.ES256, algs.ESP256):
        from cryptography.hazmat.primitives.asymmetric import ec
        priv = ec.generate_private_key(ec.SECP256R1())
        nums = priv.private_numbers()
        key.update({1: algs.KTY_EC2, -1: algs.CRV_P256, -2: nums.public_numbers.x.to_bytes(32, "big"),
                    -3: nums.public_numbers.y.to_bytes(32, "big"), -4: nums.private_value.to_bytes(32, "big")})
    elif alg in (algs.EDDSA, algs.ED25519):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        priv = ed25519.Ed25519PrivateKey.generate()
        raw = serialization.Encoding.Raw
        key.update({1: algs.KTY_OKP, -1: algs.CRV_ED25519,
                    -2: priv.public_key().public_bytes(raw, serialization.PublicFormat.Raw),
                    -4: priv.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())})
    elif alg == algs.HSS_LMS:
        priv = _hss_generate(levels, height, w)
        key.update({1: algs.KTY_HSS_LMS, -1: priv.publicKey().serialize(), HSS_PRIVATE_STATE: priv.serialize()})
    elif alg in (algs.HMAC_256_64, algs.HMAC_256_256):
        key.update({1: algs.KTY_SYMMETRIC, -1: os.urandom(32)})
    elif alg in (algs.AES_CCM_16_64_128, algs.A128KW):
        key.update({1: algs.KTY_SYMMETRIC, -1: os.urandom(16)})
    else:
        raise UserError(f"cannot generate keys for alg {alg}")
    return key


def _hss_generate(levels: int, height: int, w: int):
    """pyhsslms HSS key, one tree per level with a progress bar (a height-20 tree takes minutes)."""
    from pyhsslms import pyhsslms as hsslms
    from tqdm import tqdm
    if not 1 <= levels <= 8:
        raise UserError("HSS levels must be 1..8")
    if height not in LMS_TYPES or w not in LMOTS_TYPES:
        raise UserError(f"LMS height must be one of {sorted(LMS_TYPES)}, Winternitz w one of {sorted(LMOTS_TYPES)}")
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


def hss_private(key: dict):
    from pyhsslms import pyhsslms as hsslms
    return hsslms.HssPrivateKey.deserialize(key[HSS_PRIVATE_STATE])


def public_pem(key: dict) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    if key[1] == algs.KTY_EC2:
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_raw(key))
    elif key[1] == algs.KTY_OKP:
        pub = ed25519.Ed25519PublicKey.from_public_bytes(public_raw(key))
    else:
        raise UserError("PEM export is for P-256 and Ed25519 keys")
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- command line ----------------------------------------------------------------------------------------

def write_output(data: bytes, out: str | None, hex_out: bool) -> None:
    """To the file `out`, else hex on a terminal (or with --hex), else raw bytes on stdout."""
    if out and out != "-":
        Path(out).write_bytes(data)
        print(f"wrote {out} ({len(data)} bytes)", file=sys.stderr)
    elif hex_out or sys.stdout.isatty():
        print(data.hex())
    else:
        sys.stdout.buffer.write(data)


def parse_alg(name: str) -> int:
    """An algorithm by its name on the command line, or by its COSE number."""
    if name in ALG_NAMES:
        return ALG_NAMES[name]
    try:
        return int(name)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown algorithm {name!r}; one of {', '.join(ALG_NAMES)}") from None


def cmd_generate(args) -> int:
    import cbor2
    kid = args.kid.encode() if args.kid is not None else None
    key = generate(args.alg, kid, args.levels, args.height, args.w)
    base = Path(args.out)
    priv_path = base.with_name(base.name + ".key")
    write_private(priv_path, cbor2.dumps(key, canonical=True))
    print(f"wrote {priv_path} (private, mode 0600): {describe(key)}", file=sys.stderr)
    if key[1] != algs.KTY_SYMMETRIC:
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
        write_output(data, args.out, args.hex)
    return 0


def register(subparsers) -> None:
    kp = subparsers.add_parser("keys", help="generate and inspect COSE keys (P-256, Ed25519, HSS-LMS, symmetric)",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ks = kp.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    g = ks.add_parser("generate", help="new key pair: OUT.key (private COSE_Key, 0600) and OUT.pub")
    g.add_argument("alg", type=parse_alg, help=f"one of {', '.join(ALG_NAMES)}")
    g.add_argument("-o", "--out", required=True, help="file name base")
    g.add_argument("--kid", help="key id (text)")
    g.add_argument("--levels", type=int, default=2, help="HSS levels (default 2)")
    g.add_argument("--height", type=int, default=10, choices=sorted(LMS_TYPES), help="LMS tree height (default 10)")
    g.add_argument("--w", type=int, default=4, choices=sorted(LMOTS_TYPES), help="LM-OTS Winternitz w (default 4)")
    g.set_defaults(func=cmd_generate)
    i = ks.add_parser("info", help="describe a key file (never prints secrets)")
    i.add_argument("key")
    i.set_defaults(func=cmd_info)
    p = ks.add_parser("public", help="export the public key")
    p.add_argument("key")
    p.add_argument("--format", choices=("cose", "raw", "pem"), default="cose")
    p.add_argument("-o", "--out")
    p.add_argument("--hex", action="store_true", help="print hex instead of binary")
    p.set_defaults(func=cmd_public)
