# Authenticating an update before it runs (suit.ota.Updater.check): the envelope against the trust anchors,
# its sequence number against the stored one, and the payload URIs its sequences name. Imported for the check
# and released right after, before the download (suit.ota_run) is imported: the two are never on the heap
# together with the COSE and crypto modules the check needs.
import cbor
from suit import SuitError


def payload_uris(manifest):
    """The remote payload URIs (and their image-size, or None) a Manifest's sequences set, in order."""
    out = []
    for seq in (manifest.shared, manifest.sequences.get(16), manifest.sequences.get(20)):
        if seq is not None:
            _scan(seq, out, 0)
    return [u for u in out if not u[0].startswith("#")]


def _scan(seq, out, depth):
    if depth > 6:
        raise SuitError(1, "command sequences nested too deep")
    d = cbor.Decoder(seq)
    n = d.read_array_header() or 0
    size = None
    for _ in range(n // 2):
        cmd = d.read_int()
        if cmd in (19, 20):  # set/override-parameters
            for _ in range(d.read_map_header() or 0):
                key = d.read_int()
                if key == 21:
                    out.append([d.read_text(), size])
                elif key == 14:
                    size = d.read_uint()
                    for u in out:
                        if u[1] is None:
                            u[1] = size
                else:
                    d.skip()
        elif cmd == 15:  # try-each
            for _ in range(d.read_array_header() or 0):
                if d.peek_major() == 2:
                    _scan(d.read_bytes(), out, depth + 1)
                else:
                    d.skip()
        elif cmd == 32:  # run-sequence
            _scan(d.read_bytes(), out, depth + 1)
        else:
            d.skip()
    seen = []
    for u in out:  # one download per URI
        if u[0] not in [s[0] for s in seen]:
            seen.append(u)
    out[:] = seen


def check(up, data):
    """Authenticate an envelope; returns (digest, seq, uris) or raises SuitError. The processor made for
    it is dropped with its modules: the download does not need them (the install makes a new one)."""
    import gc
    from suit.envelope import authenticate
    try:
        if up.anchors is not None:  # the trust anchors alone: far less heap than a whole processor
            p = None
            anchors = up.anchors()
        else:
            p = up.processor()
            anchors = p.trust_anchors
        gc.collect()
        # in place: the signature and the manifest's members are views into data, never copies
        m = authenticate(data, anchors, up.max_envelope, p.max_components if p else 8)
        digest = m.digest
        seq = m.sequence_number
        uris = payload_uris(m)
    finally:
        p = m = anchors = None
        up.release()
    stored = up.stored_sequence_number()
    if stored is not None and seq <= stored:
        raise SuitError(4, "sequence number %d is not newer than the installed %d" % (seq, stored))
    return digest, seq, uris
