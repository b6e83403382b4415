# The push trigger (POST /suit/trigger, suit.ota.Updater) and the authentication of an update before it runs
# (Updater.check): the envelope against the trust anchors, its sequence number against the stored one, and the
# payload URIs its sequences name. Imported per trigger and released right after the check, before the download
# (suit.ota_run) is imported: the two are never on the heap together with the COSE and crypto modules the check
# needs, and a board that serves does not hold the handler's code.
import cbor
from suit import SuitError, const

_CHANGED = const(68)


def trigger(up, req):
    """The /suit/trigger handler: an envelope (authenticated before the answer) or a manifest URI; the update
    runs in the background. 2.04, or 4.00/4.01 (not authentic, not newer); Updater._trigger answers 5.03 (busy)
    and 5.00 (out of memory)."""
    from coap.msg import Message
    data = req.payload  # the Block1 body: checked and stored as it is (a copy would be one more large piece)
    if not data:
        return Message(code=128, payload=b"an envelope or a manifest URI")
    if data[0] != 0xD8 and data[0] >> 5 != 5:  # neither tag 107 nor a map: a manifest URI (text)
        try:
            uri = bytes(data).decode()
        except UnicodeError:
            return Message(code=128, payload=b"neither an envelope nor a URI")
        up.start_uri(uri)
        return Message(code=_CHANGED)
    try:
        info = checked(up, data)
    except SuitError as e:
        up.release()
        return Message(code=129 if e.reason == 4 else 128, payload=str(e).encode())
    if type(data) is memoryview:  # a view into a datagram: the background run keeps its own copy
        data = bytes(data)
    import asyncio
    from suit.ota_run import run
    up.task = asyncio.create_task(run(up, data, info))
    return Message(code=_CHANGED)


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


def checked(up, data):
    """Authenticate an envelope for an Updater; returns (digest, seq, uris) or raises SuitError. What serving
    loaded since Updater.serve() (error texts, the upload's assembler, parsers imported where they are used) goes
    first: the COSE and crypto modules come in one piece after another, on a clean heap; they go after."""
    up.release()  # (this module too leaves sys.modules: the code running keeps it, nothing loads it twice)
    try:
        return check(up, data)
    finally:
        up.release()


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
            p = up.make_processor()
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
