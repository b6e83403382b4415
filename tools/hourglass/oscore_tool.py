"""`hourglass oscore`: make an OSCORE (RFC 8613) security context pair for a board and the host.

Fresh random key material (Master Secret, Master Salt) and the two Sender IDs, optionally an ID Context. The
board's half goes into the "oscore" member of its config JSON (`--device-config`, created or updated; the other
members are kept), which the firmware reads with `oscore.config.context()`:

    {"oscore": {"secret": HEX, "salt": HEX, "sender_id": HEX, "recipient_id": HEX, "id_context": HEX}}

The host's half is an aiocoap security context directory (`--host-dir`: settings.json, secret.json readable only
by the user) and, with `--uri`, an entry in an aiocoap credentials file (`--credentials`, default
credentials.json next to the directory; other entries are kept), so `aiocoap-client --credentials FILE URI`
talks to the board at once. A pair is made once: existing halves are refused unless `--force`, which also drops
the host's sequence.json (its counters belonged to the old keys).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path

from hourglass.common import UserError

ALGORITHM = "AES-CCM-16-64-128"  # COSE alg 10, the only AEAD lib/oscore implements
ID_MAX = 7  # Sender/Recipient ID bytes with a 13-byte nonce (RFC 8613 section 5.2)


def _hex_bytes(what: str, value: str | None, limit: int) -> bytes | None:
    if value is None:
        return None
    try:
        b = bytes.fromhex(value)
    except ValueError:
        raise UserError(f"{what} must be hex, got {value!r}") from None
    if len(b) > limit:
        raise UserError(f"{what} is {len(b)} bytes, at most {limit}")
    return b


def _read_json_object(path: Path, what: str) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{what} {path} is not readable JSON: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} is not a JSON object")
    return data


def _write_json(path: Path, data: dict, private: bool = False) -> None:
    """Write atomically (temp file, then rename); private files are created 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def make_pair(device_id: bytes, host_id: bytes, id_context: bytes | None, secret_len: int = 16,
              salt_len: int = 8) -> tuple[dict, dict, dict]:
    """(device config member, host settings.json, host secret.json) for one fresh context pair."""
    if device_id == host_id:
        raise UserError("the device and host IDs must differ")
    secret = secrets.token_bytes(secret_len)
    salt = secrets.token_bytes(salt_len)
    device = {"secret": secret.hex(), "salt": salt.hex(), "sender_id": device_id.hex(),
              "recipient_id": host_id.hex()}
    settings = {"sender-id_hex": host_id.hex(), "recipient-id_hex": device_id.hex(), "algorithm": ALGORITHM}
    secret_json = {"secret_hex": secret.hex(), "salt_hex": salt.hex()}
    if id_context is not None:
        device["id_context"] = id_context.hex()
        settings["id-context_hex"] = id_context.hex()
    return device, settings, secret_json


def cmd_oscore(args) -> int:
    device_id = _hex_bytes("--device-id", args.device_id, ID_MAX)
    host_id = _hex_bytes("--host-id", args.host_id, ID_MAX)
    id_context = _hex_bytes("--id-context", args.id_context, 255)
    if args.random_id_context:
        if id_context is not None:
            raise UserError("give --id-context or --random-id-context, not both")
        id_context = secrets.token_bytes(8)
    if not 16 <= args.secret_bytes <= 64:
        raise UserError("--secret-bytes must be 16..64")
    config_path = Path(args.device_config)
    host_dir = Path(args.host_dir)
    creds_path = Path(args.credentials) if args.credentials else host_dir.resolve().parent / "credentials.json"
    if args.uri is not None:
        if not args.uri.startswith(("coap://", "coap+tcp://", "coap+ws://")):
            raise UserError(f"--uri must be a coap:// URI, got {args.uri!r}")
        if creds_path.suffix != ".json":
            raise UserError(f"--credentials must end in .json (aiocoap-client reads it by suffix): {creds_path}")

    config = _read_json_object(config_path, "device config")
    creds = _read_json_object(creds_path, "credentials file") if args.uri is not None else {}
    if not args.force:
        if "oscore" in config:
            raise UserError(f"{config_path} already has an oscore context (--force replaces it)")
        taken = [n for n in ("settings.json", "secret.json") if (host_dir / n).exists()]
        if taken:
            raise UserError(f"{host_dir} already holds a context ({', '.join(taken)}; --force replaces it)")
    if host_dir.exists() and not host_dir.is_dir():
        raise UserError(f"--host-dir {host_dir} is not a directory")

    device, settings, secret_json = make_pair(device_id, host_id, id_context, args.secret_bytes)
    config["oscore"] = device
    host_dir.mkdir(parents=True, exist_ok=True)
    (host_dir / "sequence.json").unlink(missing_ok=True)
    _write_json(host_dir / "secret.json", secret_json, private=True)
    _write_json(host_dir / "settings.json", settings)
    _write_json(config_path, config, private=True)
    print(f"device half: {config_path} (oscore: sender_id {device_id.hex() or '(empty)'}, "
          f"recipient_id {host_id.hex() or '(empty)'}{', id_context ' + id_context.hex() if id_context else ''})")
    print(f"host half: {host_dir}/ (aiocoap security context)")
    if args.uri is not None:
        pattern = args.uri.rstrip("/") + "/*"
        creds[pattern] = {"oscore": {"basedir": str(host_dir.resolve()) + "/"}}
        _write_json(creds_path, creds)
        print(f"credentials: {creds_path} maps {pattern}")
        print(f"try: aiocoap-client --credentials {creds_path} {args.uri.rstrip('/')}/.well-known/core")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("oscore", help="make an OSCORE context pair: the board's config and aiocoap's files",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device-config", required=True, metavar="PATH",
                   help="the board's config JSON to create or update (its \"oscore\" member)")
    p.add_argument("--host-dir", required=True, metavar="DIR", help="aiocoap security context directory to write")
    p.add_argument("--uri", help="the board's base URI (coap://HOST[:PORT]): adds it to the credentials file")
    p.add_argument("--credentials", metavar="FILE",
                   help="aiocoap credentials JSON to create or update (default: credentials.json next to DIR)")
    p.add_argument("--device-id", default="01", help="the board's Sender ID, hex (default 01)")
    p.add_argument("--host-id", default="02", help="the host's Sender ID, hex (default 02)")
    p.add_argument("--id-context", help="ID Context, hex (default: none)")
    p.add_argument("--random-id-context", action="store_true", help="a random 8-byte ID Context")
    p.add_argument("--secret-bytes", type=int, default=16, help="Master Secret length (default 16)")
    p.add_argument("--force", action="store_true", help="replace an existing context on either side")
    p.set_defaults(func=cmd_oscore)
