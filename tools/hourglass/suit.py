"""`hourglass suit`: SUIT envelopes (draft-ietf-suit-manifest-37) for lib/suit, built and checked on the host.

  hourglass suit build DESC.toml -k KEY [-k KEY ...] -o OUT.suit   a signed envelope from a readable description
  hourglass suit inspect ENVELOPE [-k KEY]                        every key's meaning, the digest, the auth result
  hourglass suit keys KEY.pub [...] -o anchors.cbor               a COSE_KeySet of trust anchors for the device

Keys are COSE_Key files from `hourglass keys generate` (ES256, ESP256, Ed25519, EdDSA, HSS-LMS, HMAC256; A128KW
for payload encryption). Signing is `cryptography` / `pyhsslms` / `pycose` through hourglass.keys; CBOR is cbor2.

The description (TOML or JSON):

    sequence-number = 2
    vendor-id = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"   # a UUID, or hex
    class-id = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
    reference-uri = "coap://updates.example/app"          # optional
    text = "What this update does"                        # optional, goes in the text member (23)
    sever = ["install", "text"]                           # optional: members carried outside the manifest
    [[component]]
    id = ["lib", "app.py"]                                # text parts; "hex:00ff" for a binary part
    file = "build/app.py"                                 # the payload; its digest and size go in the manifest
    # directory = "build/pkg"                             #   or a directory: the component is that directory
    #                                                     #   (id gets a trailing empty part), see pack_directory
    uri = "coap://updates.example/app.py"                 # fetched by the device; or
    integrated = true                                     #   carried in the envelope as "#<name>"
    slots = [0, 1]                                        # optional A/B: try-each over component-slot
    encrypt = "A128GCM"                                   # optional: A128GCM or A128CTR, key from --kek
    invoke = true                                         # optional: an invoke sequence for it

Paths in the description are relative to its own folder. Encrypted detached payloads are written next to the
envelope as OUT.<component index>.enc (the file the device fetches).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from hourglass.common import UserError

TAG_ENVELOPE = 107
SHA256 = -16
SEVERABLE = {"payload-fetch": 16, "install": 20, "text": 23}
CONTENT_ALGS = {"A128GCM": 1, "A256GCM": 3, "A128CTR": -65534, "A256CTR": -65532}
A128KW = -3

MANIFEST_KEYS = {1: "manifest-version", 2: "manifest-sequence-number", 3: "common", 4: "reference-uri",
                 5: "manifest-component-id", 7: "validate", 8: "load", 9: "invoke", 16: "payload-fetch",
                 20: "install", 23: "text", 24: "uninstall"}
ENVELOPE_KEYS = {2: "authentication-wrapper", 3: "manifest", 16: "payload-fetch", 20: "install", 23: "text"}
COMMON_KEYS = {2: "components", 4: "shared-sequence"}
COMMANDS = {1: "condition-vendor-identifier", 2: "condition-class-identifier", 3: "condition-image-match",
            5: "condition-component-slot", 6: "condition-check-content", 14: "condition-abort",
            24: "condition-device-identifier", 12: "directive-set-component-index", 15: "directive-try-each",
            18: "directive-write", 19: "directive-set-parameters", 20: "directive-override-parameters",
            21: "directive-fetch", 22: "directive-copy", 23: "directive-invoke", 31: "directive-swap",
            32: "directive-run-sequence"}
PARAMETERS = {1: "vendor-identifier", 2: "class-identifier", 3: "image-digest", 5: "component-slot",
              12: "strict-order", 13: "soft-failure", 14: "image-size", 18: "content", 19: "encryption-info",
              21: "uri", 22: "source-component", 23: "invoke-args", 24: "device-identifier"}
COSE_ALGS = {-7: "ES256", -9: "ESP256", -8: "EdDSA", -19: "Ed25519", -46: "HSS-LMS", 5: "HMAC 256/256",
             4: "HMAC 256/64", 1: "A128GCM", 3: "A256GCM", -65534: "A128CTR", -65532: "A256CTR", -3: "A128KW",
             -16: "SHA-256"}


# --- description -----------------------------------------------------------------------------------------

def load_description(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e}") from e
    try:
        if path.suffix == ".json":
            return json.loads(text)
        import tomllib
        return tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: {e}") from e


def _id_bytes(value: str, what: str) -> bytes:
    try:
        if "-" in value:
            return uuid.UUID(value).bytes
        return bytes.fromhex(value)
    except ValueError:
        raise UserError(f"{what} {value!r} is neither a UUID nor hex") from None


def _component_id(parts) -> list[bytes]:
    if not isinstance(parts, list) or not parts:
        raise UserError("component id must be a non-empty list of strings")
    out = []
    for p in parts:
        if not isinstance(p, str):
            raise UserError(f"component id part {p!r} is not a string")
        out.append(bytes.fromhex(p[4:]) if p.startswith("hex:") else p.encode())
    return out


NAME_CHARS = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")
MAX_DIR_FILES = 64  # what lib/suit/suit/bundle_dir.py accepts
MAX_DIR_PATH = 96


def pack_directory(root: Path) -> bytes:
    """A directory component's image, as suit.bundle_dir unpacks it: for each file under root, in byte order
    of the paths, its relative path (text, "/"-separated) and its content (bytes), a CBOR sequence (RFC 8742) in
    preferred serialization. Empty directories and anything but regular files cannot be carried."""
    import cbor2
    if not root.is_dir():
        raise UserError(f"{root} is not a directory")
    entries = []
    for p in root.rglob("*"):
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            raise UserError(f"{p}: only regular files and directories can go in a directory component")
        if p.is_file():
            rel = p.relative_to(root).as_posix().encode()
            if len(rel) > MAX_DIR_PATH or any(not part or part in (b".", b"..") or not set(part) <= NAME_CHARS
                                               for part in rel.split(b"/")):
                raise UserError(f"{p}: path {rel.decode()!r} is longer than {MAX_DIR_PATH} bytes or has "
                                "characters the device refuses (letters, digits and -_.+ only)")
            entries.append((rel, p))
    if len(entries) > MAX_DIR_FILES:
        raise UserError(f"{root}: {len(entries)} files (the device takes {MAX_DIR_FILES})")
    return b"".join(cbor2.dumps(rel.decode()) + cbor2.dumps(p.read_bytes()) for rel, p in sorted(entries))


def _digest(data: bytes) -> bytes:
    import cbor2
    return cbor2.dumps([SHA256, hashlib.sha256(data).digest()])


# --- encryption ------------------------------------------------------------------------------------------

def encrypt_payload(plaintext: bytes, alg_name: str, kek: dict) -> tuple[bytes, bytes]:
    """(ciphertext, encoded COSE_Encrypt with a detached ciphertext and one A128KW recipient)."""
    import cbor2
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap
    if alg_name not in CONTENT_ALGS:
        raise UserError(f"unknown content encryption {alg_name!r}; one of {', '.join(CONTENT_ALGS)}")
    if kek.get(1) != 4 or len(kek.get(-1, b"")) != 16:
        raise UserError("--kek must be a 16-byte symmetric COSE_Key (hourglass keys generate A128KW)")
    alg = CONTENT_ALGS[alg_name]
    cek = os.urandom(32 if alg in (3, -65532) else 16)
    protected = cbor2.dumps({1: alg})
    if alg in (1, 3):
        iv = os.urandom(12)
        aad = cbor2.dumps(["Encrypt", protected, b""])
        ct = AESGCM(cek).encrypt(iv, plaintext, aad)
    else:
        iv = os.urandom(16)
        enc = Cipher(algorithms.AES(cek), modes.CTR(iv)).encryptor()
        ct = enc.update(plaintext) + enc.finalize()
    recipient_hdr = {1: A128KW}
    if 2 in kek:
        recipient_hdr[4] = kek[2]
    info = cbor2.dumps(cbor2.CBORTag(96, [protected, {5: iv}, None,
                                           [[b"", recipient_hdr, aes_key_wrap(kek[-1], cek)]]]))
    return ct, info


# --- building --------------------------------------------------------------------------------------------

def _seq(*pairs) -> list:
    out: list = []
    for cmd, arg in pairs:
        out += [cmd, arg]
    return out


def build_envelope(desc: dict, keys: list[tuple[dict, Path | None]], base: Path, kek: dict | None = None,
                   out: Path | None = None) -> bytes:
    """The signed envelope for a description (see the module doc). keys: (COSE_Key, its file) pairs."""
    import cbor2
    from hourglass import cose_tool
    from hourglass.keys import algs
    comps = desc.get("component")
    if not isinstance(comps, list) or not comps:
        raise UserError("the description needs at least one [[component]]")
    seq_no = desc.get("sequence-number")
    if not isinstance(seq_no, int) or seq_no < 0:
        raise UserError("sequence-number must be a non-negative integer")
    vendor = _id_bytes(desc["vendor-id"], "vendor-id") if "vendor-id" in desc else None
    klass = _id_bytes(desc["class-id"], "class-id") if "class-id" in desc else None
    multi = len(comps) > 1
    ids, shared, install, validate, invoke = [], [], [], [], []
    payloads: dict[str, bytes] = {}
    for i, c in enumerate(comps):
        ids.append(_component_id(c.get("id")))
        if ("file" in c) == ("directory" in c):
            raise UserError(f"component {i} needs a file or a directory (one of them)")
        if "directory" in c:
            data = pack_directory(base / c["directory"])
            ids[-1].append(b"")  # a trailing empty part: the component is the directory
        else:
            if not ids[-1][-1]:
                raise UserError(f"component {i}: an id ending in an empty part names a directory (use directory =)")
            try:
                data = (base / c["file"]).read_bytes()
            except OSError as e:
                raise UserError(f"component {i}: {e}") from e
        select = [(12, i)] if multi else []
        params = {3: _digest(data), 14: len(data)}
        if vendor is not None:
            params[1] = vendor
        if klass is not None:
            params[2] = klass
        shared += _seq(*select, (20, params))
        if vendor is not None:
            shared += [1, 15]
        if klass is not None:
            shared += [2, 15]
        fetched = data
        fetch_params: dict = {}
        if c.get("encrypt"):
            if kek is None:
                raise UserError(f"component {i} is encrypted: give --kek")
            fetched, fetch_params[19] = encrypt_payload(data, c["encrypt"], kek)
        if c.get("integrated"):
            name = "#%d" % i
            payloads[name] = fetched
            fetch_params[21] = name
        elif "uri" in c:
            fetch_params[21] = c["uri"]
            if c.get("encrypt"):
                if out is None:
                    raise UserError("an encrypted detached payload needs -o (it is written next to it)")
                out.with_name(f"{out.name}.{i}.enc").write_bytes(fetched)
        else:
            raise UserError(f"component {i} needs a uri or integrated = true")
        slots = c.get("slots")
        body = _seq((20, fetch_params), (21, 2), (3, 15))
        if slots:
            alternatives = [cbor2.dumps(_seq((20, {5: s}), (5, 15)) + body) for s in slots]
            install += _seq(*select, (15, alternatives))
        else:
            install += _seq(*select) + body
        validate += _seq(*select, (3, 15))
        if c.get("invoke"):
            invoke += _seq(*select, (23, 2))
    common = {2: ids, 4: cbor2.dumps(shared)}
    manifest: dict = {1: 1, 2: seq_no, 3: cbor2.dumps(common)}
    if "reference-uri" in desc:
        manifest[4] = desc["reference-uri"]
    manifest[7] = cbor2.dumps(validate)
    if invoke:
        manifest[9] = cbor2.dumps(invoke)
    members = {20: cbor2.dumps(install)}
    if "text" in desc:
        members[23] = cbor2.dumps({"en": {1: desc["text"]}})
    sever = desc.get("sever", [])
    severed_keys = set()
    for name in sever:
        if name not in SEVERABLE or SEVERABLE[name] not in members:
            present = ", ".join(k for k, v in SEVERABLE.items() if v in members)
            raise UserError(f"cannot sever {name!r}: one of {present}")
        severed_keys.add(SEVERABLE[name])
    envelope_members = {}
    for key, member in members.items():
        if key in severed_keys:
            manifest[key] = cbor2.loads(_digest(cbor2.dumps(member)))
            envelope_members[key] = member
        else:
            manifest[key] = member
    manifest_bstr = cbor2.dumps(dict(sorted(manifest.items())))
    digest = _digest(cbor2.dumps(manifest_bstr))
    if not keys:
        raise UserError("give at least one signing or MAC key (-k)")
    blocks = []
    for key, path in keys:
        alg = key.get(3)
        if alg in algs.SIGNATURE_ALGS:
            blocks.append(cose_tool.sign1(key, digest, detached=True, key_path=path))
        elif alg in algs.MAC_ALGS:
            blocks.append(cose_tool.mac0(key, digest, detached=True))
        else:
            raise UserError(f"key {path} (alg {alg}) cannot authenticate a manifest")
    envelope = {2: cbor2.dumps([digest] + blocks), 3: manifest_bstr}
    for key in sorted(envelope_members):
        envelope[key] = envelope_members[key]
    envelope.update(payloads)
    return cbor2.dumps(cbor2.CBORTag(TAG_ENVELOPE, envelope))


# --- inspecting ------------------------------------------------------------------------------------------

def _diag(x) -> str:
    if isinstance(x, bytes):
        return "h'" + x.hex() + "'"
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, bool):
        return "true" if x else "false"
    if x is None:
        return "null"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_diag(v) for v in x) + "]"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{_diag(k)}: {_diag(v)}" for k, v in x.items()) + "}"
    tag = getattr(x, "tag", None)
    if tag is not None:
        return f"{tag}({_diag(x.value)})"
    return repr(x)


def _sequence_lines(data: bytes, indent: str) -> list[str]:
    import cbor2
    seq = cbor2.loads(data)
    lines = []
    for i in range(0, len(seq) - 1, 2):
        cmd, arg = seq[i], seq[i + 1]
        name = COMMANDS.get(cmd, f"unknown command {cmd}")
        if cmd in (20, 19) and isinstance(arg, Mapping):
            lines.append(f"{indent}{cmd} / {name} /")
            for k, v in arg.items():
                shown = _diag(cbor2.loads(v)) if k in (3, 19) and isinstance(v, bytes) else _diag(v)
                lines.append(f"{indent}    {k} / {PARAMETERS.get(k, 'unknown parameter')} / {shown}")
        elif cmd == 15 and isinstance(arg, (list, tuple)):
            lines.append(f"{indent}{cmd} / {name} /")
            for alt in arg:
                lines.append(f"{indent}  alternative:")
                lines += _sequence_lines(alt, indent + "    ") if alt is not None else [f"{indent}    null"]
        elif cmd == 32 and isinstance(arg, bytes):
            lines.append(f"{indent}{cmd} / {name} /")
            lines += _sequence_lines(arg, indent + "    ")
        else:
            lines.append(f"{indent}{cmd} / {name} / {_diag(arg)}")
    return lines


def inspect_envelope(data: bytes, key: dict | None = None) -> tuple[list[str], bool | None]:
    """Annotated lines and the authentication result (None without a key)."""
    import cbor2
    from hourglass import cose_tool
    from hourglass.keys import algs
    try:
        obj = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError) as e:
        raise UserError(f"not CBOR: {e}") from e
    env = obj.value if isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_ENVELOPE else obj
    if not isinstance(env, Mapping) or 3 not in env or 2 not in env:
        raise UserError("not a SUIT envelope (no manifest or authentication wrapper)")
    lines = ["107(" if isinstance(obj, cbor2.CBORTag) else "(untagged envelope)"]
    manifest_bstr = env[3]
    digest_hex = hashlib.sha256(cbor2.dumps(manifest_bstr)).hexdigest()
    auth = cbor2.loads(env[2])
    lines.append(f"  2 / authentication-wrapper / digest {_diag(cbor2.loads(auth[0]))}")
    result = None
    for blk in auth[1:]:
        b = cbor2.loads(blk)
        phdr = cbor2.loads(b.value[0]) if b.value[0] else {}
        alg = phdr.get(1)
        kind = {18: "COSE_Sign1", 17: "COSE_Mac0"}.get(b.tag, f"tag {b.tag}")
        status = ""
        if key is not None:
            ok = False
            if (b.tag == 17) == (key.get(1) == algs.KTY_SYMMETRIC):  # a MAC key for Mac0, a public key for Sign1
                from pycose.exceptions import CoseException
                try:
                    cose_tool.verify1(key, blk, payload=auth[0])
                    ok = True
                except (UserError, CoseException, ValueError):
                    ok = False
            result = bool(result) or ok
            status = " verifies with the key" if ok else " does not verify with the key"
        lines.append(f"    {kind} {COSE_ALGS.get(alg, alg)} kid={_diag(b.value[1].get(4))}{status}")
    computed_ok = cbor2.loads(auth[0])[1].hex() == digest_hex
    lines.append(f"  3 / manifest / sha256 {digest_hex} ({'matches' if computed_ok else 'DOES NOT match'}"
                 " the authenticated digest)")
    m = cbor2.loads(manifest_bstr)
    for k, v in m.items():
        name = MANIFEST_KEYS.get(k, "unknown member")
        if k == 3:
            lines.append(f"    {k} / {name} /")
            common = cbor2.loads(v)
            for ck, cv in common.items():
                if ck == 4:
                    lines.append(f"        {ck} / {COMMON_KEYS[ck]} /")
                    lines += _sequence_lines(cv, "            ")
                else:
                    lines.append(f"        {ck} / {COMMON_KEYS.get(ck, 'unknown')} / {_diag(cv)}")
        elif k in (7, 8, 9, 16, 20) and isinstance(v, bytes):
            lines.append(f"    {k} / {name} /")
            lines += _sequence_lines(v, "        ")
        elif k in (16, 20, 23) and isinstance(v, (list, tuple)):
            lines.append(f"    {k} / {name} / severed, digest {_diag(v)}")
        elif k == 23:
            lines.append(f"    {k} / {name} / {_diag(cbor2.loads(v))}")
        else:
            lines.append(f"    {k} / {name} / {_diag(v)}")
    for k, v in env.items():
        if k in (2, 3):
            continue
        if isinstance(k, str):
            lines.append(f"  {json.dumps(k)} / integrated payload / {len(v)} bytes, sha256 "
                         f"{hashlib.sha256(v).hexdigest()}")
        else:
            lines.append(f"  {k} / {ENVELOPE_KEYS.get(k, 'unknown member')} (severed member) / "
                         f"sha256 {hashlib.sha256(cbor2.dumps(v)).hexdigest()}")
            if k in (16, 20):
                lines += _sequence_lines(v, "      ")
            elif k == 23:
                lines.append(f"      {_diag(cbor2.loads(v))}")
    lines.append(")")
    return lines, result


# --- command line ----------------------------------------------------------------------------------------

def _load_key(path: str) -> dict:
    from hourglass import keys
    return keys.load_key(Path(path))


def cmd_build(args) -> int:
    desc_path = Path(args.description)
    desc = load_description(desc_path)
    keys = [(_load_key(k), Path(k)) for k in args.key]
    kek = _load_key(args.kek) if args.kek else None
    out = Path(args.out)
    data = build_envelope(desc, keys, desc_path.parent, kek, out)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes, sequence number {desc['sequence-number']})", file=sys.stderr)
    return 0


def cmd_inspect(args) -> int:
    try:
        data = Path(args.envelope).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {args.envelope}: {e}") from e
    key = _load_key(args.key) if args.key else None
    lines, ok = inspect_envelope(data, key)
    print("\n".join(lines))
    if ok is False:
        raise UserError("no authentication block verifies with the key")
    return 0


def cmd_keys(args) -> int:
    import cbor2
    from hourglass import keys
    anchors = []
    for path in args.key:
        key = _load_key(path)
        anchors.append(key if key.get(1) == keys.algs.KTY_SYMMETRIC else keys.public_of(key))
    Path(args.out).write_bytes(cbor2.dumps(anchors, canonical=True))
    print(f"wrote {args.out} ({len(anchors)} trust anchors)", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("suit", help="build, inspect and provision SUIT envelopes",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="suit_command", metavar="ACTION", required=True)
    b = sp.add_parser("build", help="a signed envelope from a TOML/JSON description")
    b.add_argument("description")
    b.add_argument("-k", "--key", action="append", required=True,
                   help="signing or HMAC COSE_Key (repeat for several authentication blocks)")
    b.add_argument("--kek", help="A128KW COSE_Key for encrypted components")
    b.add_argument("-o", "--out", required=True)
    b.set_defaults(func=cmd_build)
    i = sp.add_parser("inspect", help="diagnostic notation with meanings, the digest, the auth result")
    i.add_argument("envelope")
    i.add_argument("-k", "--key", help="check the authentication blocks with this COSE_Key")
    i.set_defaults(func=cmd_inspect)
    k = sp.add_parser("keys", help="a COSE_KeySet of trust anchors (public parts; HMAC keys whole)")
    k.add_argument("key", nargs="+")
    k.add_argument("-o", "--out", required=True)
    k.set_defaults(func=cmd_keys)
    from hourglass import suit_server  # serve, push, status, report

    suit_server.register(sp)
