# Encrypted payloads (draft-ietf-suit-firmware-encryption): the encryption-info parameter is a COSE_Encrypt
# with a detached ciphertext whose content key is wrapped for the device with A128KW; the content is AES-GCM
# (A128GCM 1, A256GCM 3; Enc_structure "Encrypt", empty external AAD) or AES-CTR (A128CTR -65534, A256CTR
# -65532; a 16-byte IV as the first counter block, no integrity of its own: the image digest covers it).
# The decryptor works chunk by chunk; an AES-GCM tag is the ciphertext's last 16 bytes, held back until finish().
import cbor
from suit import SuitError, const
_CBOR_PARSE = const(1)
_ALG_UNSUPPORTED = const(3)
_UNAUTHORISED = const(4)

_TAG_ENCRYPT = const(96)
_A128GCM = const(1)
_A256GCM = const(3)
_A128CTR = const(-65534)
_A256CTR = const(-65532)
_GCM_TAG = const(16)
_KEY_LEN = {_A128GCM: 16, _A256GCM: 32, _A128CTR: 16, _A256CTR: 32}


class _CtrDecryptor:
    def __init__(self, ctr):
        self._ctr = ctr

    def update(self, data):
        self._ctr.update_into(data, data)  # in place: data is the processor's own chunk buffer
        return data

    def finish(self):
        pass


class _GcmDecryptor:
    def __init__(self, stream):
        self._s = stream
        self._tail = bytearray(_GCM_TAG)
        self._tl = 0
        self._out = None

    def update(self, data):
        n = len(data)
        total = self._tl + n
        tail = self._tail
        if total <= _GCM_TAG:
            tail[self._tl:total] = data
            self._tl = total
            return memoryview(tail)[0:0]
        emit = total - _GCM_TAG
        if self._out is None or len(self._out) < emit:
            self._out = bytearray(max(emit, 256))
        out = memoryview(self._out)
        k = min(self._tl, emit)
        out[0:k] = tail[0:k]
        out[k:emit] = data[0:emit - k]
        keep = bytes(tail[k:self._tl]) + bytes(data[emit - k:n])
        tail[0:_GCM_TAG] = keep
        self._tl = _GCM_TAG
        self._s.update_into(out[0:emit], out[0:emit])
        return out[0:emit]

    def finish(self):
        from crypto import InvalidTag
        if self._tl != _GCM_TAG:
            raise SuitError(_UNAUTHORISED, "encrypted payload shorter than its AES-GCM tag")
        try:
            self._s.finish(self._tail)
        except InvalidTag:
            raise SuitError(_UNAUTHORISED, "encrypted payload does not authenticate (AES-GCM tag)")


def decryptor(info, keys):
    """A decryptor for the encryption-info parameter (encoded COSE_Encrypt) with the device's KEKs."""
    import cose
    from cose import headers as _h
    from cose.encrypt import unwrap_cek
    from crypto import InvalidTag
    if keys is None:
        raise SuitError(_ALG_UNSUPPORTED, "encrypted payload, and this device has no decryption key")
    try:
        obj = cbor.loads(info, unique_keys=True)
    except cbor.CBORDecodeError as e:
        raise SuitError(_CBOR_PARSE, "encryption-info is not CBOR: %s" % e)
    if isinstance(obj, cbor.Tag):
        if obj.tag != _TAG_ENCRYPT:
            raise SuitError(_ALG_UNSUPPORTED, "encryption-info COSE tag %d (only COSE_Encrypt, 96)" % obj.tag)
        obj = obj.value
    if not isinstance(obj, list) or len(obj) != 4:
        raise SuitError(_CBOR_PARSE, "encryption-info must be a COSE_Encrypt")
    try:
        hdr = _h.Headers(obj[0], obj[1])
        alg = hdr.alg
        klen = _KEY_LEN.get(alg)
        if klen is None:
            raise SuitError(_ALG_UNSUPPORTED, "content encryption algorithm %r" % (alg,))
        if obj[2] is not None:
            raise SuitError(_CBOR_PARSE, "encryption-info must have a detached ciphertext (nil)")
        iv = hdr.get(_h.IV)
        try:
            cek = unwrap_cek(obj[3], keys)
        except cose.CoseUnsupported as e:
            raise SuitError(_ALG_UNSUPPORTED, "key wrap: %s" % e)
        except cose.CoseError:
            _refuse_recipients(obj[3])
            raise
        if len(cek) != klen:
            raise SuitError(_UNAUTHORISED, "content key of %d bytes for a %d-byte algorithm" % (len(cek), klen))
    except InvalidTag:
        raise SuitError(_UNAUTHORISED, "no decryption key unwraps the content key")
    except cose.CoseError as e:
        raise SuitError(_ALG_UNSUPPORTED, "encryption-info: %s" % e)
    from crypto import gcm
    if alg in (_A128GCM, _A256GCM):
        if not isinstance(iv, (bytes, bytearray)) or len(iv) != 12:
            raise SuitError(_CBOR_PARSE, "AES-GCM needs a 12-byte IV")
        from cose.encrypt0 import enc_structure
        g = gcm.AesGcm(cek)
        return _GcmDecryptor(g.decryptor(iv, enc_structure("Encrypt", hdr.protected_bytes, b"")))
    if not isinstance(iv, (bytes, bytearray)) or len(iv) != 16:
        raise SuitError(_CBOR_PARSE, "AES-CTR needs a 16-byte IV")
    from crypto import aes
    return _CtrDecryptor(gcm.Ctr(aes.new(cek), iv))


def _refuse_recipients(recipients):
    """No A128KW recipient: name what the manifest used instead (ECDH-ES is not supported here)."""
    algs = []
    for r in recipients if isinstance(recipients, list) else ():
        try:
            alg = cbor.loads(r[0]).get(1) if r[0] else None
            algs.append(r[1].get(1) if alg is None else alg)
        except (cbor.CBORDecodeError, AttributeError, IndexError, KeyError, TypeError):
            pass
    ecdh = [a for a in algs if type(a) is int and -34 <= a <= -25]
    if ecdh:
        raise SuitError(_ALG_UNSUPPORTED, "content key distribution by ECDH-ES (alg %d) is not supported, only "
                        "A128KW (-3)" % ecdh[0])
    raise SuitError(_ALG_UNSUPPORTED, "no A128KW recipient for the content key (recipient algs %r)" % (algs,))
