"""CoAP-EAP host checks: the device's OSCORE Master Secret/Salt derivation (lib/coapeap) equals the controller's
(hourglass.noob_controller, on `cryptography`) for any MSK and CS, and both equal RFC 5869 HKDF-Expand written out
here; the vectors in host_tests/device/case_coapeap.py are the controller's."""
from __future__ import annotations

import hashlib
import hmac
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from hourglass import mpvm
from hourglass.noob_controller import oscore_secrets as host_secrets

sys.path.insert(0, str(mpvm.LIB / "coapeap"))
sys.path.insert(0, str(mpvm.LIB / "crypto"))
from coapeap import oscore_secrets as device_secrets  # noqa: E402


def hkdf_expand(prk: bytes, info: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes((i,)), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.binary(max_size=40))
def test_device_and_controller_derive_the_same(msk, cs):
    want = (hkdf_expand(msk, cs + b"COAP-EAP OSCORE MASTER SECRET", 16),
            hkdf_expand(msk, cs + b"COAP-EAP OSCORE MASTER SALT", 8))
    assert host_secrets(msk, cs) == want == device_secrets(msk, cs)


def test_case_vectors_are_the_controllers():
    assert host_secrets(bytes(range(64)), bytes.fromhex("81008100")) == (
        bytes.fromhex("ceadf1c3cbfe1dc3b3c5eaa689a7fc35"), bytes.fromhex("a598782be40101d4"))
