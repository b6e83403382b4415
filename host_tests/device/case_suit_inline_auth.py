# The envelopes our builder makes, one per algorithm (vectors/suit/built), authenticate through suit.envelope's
# inline readers: the general ones (suit.envelope_file, over cbor.Decoder and cose.headers) are not loaded.
# They cost an install's time and, on the OTA board, its heap: an HSS-LMS signature's two-byte bstr head sent
# it the general way, and its whole update needed 132k of VM heap against the board's 128k.
# A case file of its own: the VM runs it in a process that has not imported suit.envelope_file.
import sys

import hgtest
from cose.key import CoseKey
from suit.envelope import authenticate

MP_HEAP = "128k"

BUILT = hgtest.vector_path("suit/built/")


def _anchor(alg):
    try:
        f = open(BUILT + alg + ".pub", "rb")
    except OSError:
        f = open(BUILT + alg + ".key", "rb")
    with f:
        return CoseKey.decode(f.read())


def _authenticate_inline(alg):
    sys.modules.pop("suit.envelope_file", None)
    with open(BUILT + "alg_%s.suit" % alg, "rb") as f:
        data = f.read()
    m = authenticate(data, [_anchor(alg)])
    assert m.digest is not None and m.sequence_number > 0
    assert "suit.envelope_file" not in sys.modules, alg


def test_es256_and_esp256_authenticate_inline():
    _authenticate_inline("es256")
    _authenticate_inline("esp256")


def test_ed25519_and_eddsa_authenticate_inline():
    _authenticate_inline("ed25519")
    _authenticate_inline("eddsa")


def test_hss_lms_with_its_long_signature_authenticates_inline():
    _authenticate_inline("hss")


def test_hmac_authenticates_inline():
    _authenticate_inline("hmac")
