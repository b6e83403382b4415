# The commands a plain install does not run, split out of suit.processor so that it does not load them:
# set-component-index (several components), try-each and run-sequence, the conditions component-slot,
# check-content and abort, the directives write, copy, swap and invoke; and the rarer half of image-match: an
# image not written in this run, read back (boot()'s validate).
# Each handler takes the Processor running the manifest and works through its state and helpers (the same
# package: this is the processor's own code). command() is the one entry point suit.processor names: every name
# it imports is one more interned string on the board, for as long as it runs.
from suit import SuitError, const
_CBOR_PARSE = const(1)
_COMPONENT_UNSUPPORTED = const(6)
_CONDITION_FAILED = const(10)
_OPERATION_FAILED = const(11)

_C_IMAGE_MATCH = const(3)
_C_COMPONENT_SLOT = const(5)
_C_CHECK_CONTENT = const(6)
_C_ABORT = const(14)
_D_SET_COMPONENT_INDEX = const(12)
_D_TRY_EACH = const(15)
_D_WRITE = const(18)
_D_COPY = const(22)
_D_INVOKE = const(23)
_P_COMPONENT_SLOT = const(5)
_P_SOFT_FAILURE = const(13)
_P_CONTENT = const(18)
_P_ENCRYPTION_INFO = const(19)
_P_SOURCE_COMPONENT = const(22)
_P_INVOKE_ARGS = const(23)


def _stored_sequence_number(p):
    if p.store is None:
        return None
    b = p.store.get(p.name)
    return int.from_bytes(b, "big") if b else None


def _recover(p):
    """At boot: let the driver finish (or undo) a commit a power cut interrupted, then store its sequence
    number. Returns the recovered sequence number, or None when there was nothing to finish."""
    seq = p.driver.recover()
    if seq is not None:
        old = _stored_sequence_number(p)
        if p.store is not None and (old is None or seq > old):
            p.store.put(p.name, seq.to_bytes(8, "big"))
        p.driver.finish()
    return seq


def _boot(p, data):
    """Secure boot with the installed manifest: validate, load, invoke (sequence number at least the stored
    one)."""
    return p.update(data, True, False)


def _structure(p, cmd, d, off, depth):
    """set-component-index, try-each, run-sequence."""
    if cmd == _D_SET_COMPONENT_INDEX:
        _set_index(p, d)
    else:
        _sequence(p, cmd, d, off, depth)


def _set_index(p, d):
    """set-component-index: a uint, true (all) or an array of them."""
    n = len(p.manifest.components)
    major = d.peek_major()
    if major == 7:
        v = d.decode()
        if v is not True:
            raise SuitError(_CBOR_PARSE, "set-component-index takes a uint, true or an array")
        p.indices = list(range(n))
        return
    if major == 4:
        count = d.read_array_header()
        if count is None or count > n:
            raise SuitError(_COMPONENT_UNSUPPORTED, "bad component index array")
        cur = [d.read_uint() for _ in range(count)]
    else:
        cur = [d.read_uint()]
    for i in cur:
        if i >= n:
            raise SuitError(_COMPONENT_UNSUPPORTED, "component index %d of %d components" % (i, n))
    p.indices = cur


def _run(p, seq, depth, soft):
    """Processor p's run of command sequence seq: True, or False when a condition failed and soft is set."""
    try:
        p._run(seq, depth)
    except SuitError as e:
        if soft and e.reason == _CONDITION_FAILED:
            return False
        raise
    return True


def _sequence(p, cmd, d, off, depth):
    """try-each or run-sequence."""
    soft_default = cmd == _D_TRY_EACH  # each try-each alternative runs with soft-failure unless turned off
    soft = p.args[p.indices[0]].get(_P_SOFT_FAILURE, soft_default) if p.indices else soft_default
    if cmd != _D_TRY_EACH:
        _run(p, d.read_bytes(), depth + 1, soft)
        return
    count = d.read_array_header()
    if count is None or count < 2:
        raise SuitError(_CBOR_PARSE, "try-each needs at least two sequences")
    done = False
    for _ in range(count):
        if d.peek_major() == 7:  # a trailing nil: succeed when nothing else did
            if d.decode() is not None:
                raise SuitError(_CBOR_PARSE, "try-each takes sequences (bstr) and nil")
            done = True
            continue
        seq = d.read_bytes()
        if not done:
            done = _run(p, seq, depth + 1, soft)
    if not done:
        p.record(0, off, None, None, _CONDITION_FAILED, "no try-each alternative succeeded")


def _read_back(p, idx, policy, off):
    """(digest, size) of component idx's image as the driver reads it back (image-match after no write)."""
    from hashlib import sha256
    r = p.driver.open_read(p.manifest.components[idx])
    if r is None:
        p.record(policy, off, idx, None, _CONDITION_FAILED, (44, idx))
    h = sha256()
    size = 0
    mv = p.chunk()
    try:
        while True:
            k = r.readinto(mv)
            if not k:
                break
            h.update(mv if k == len(mv) else mv[0:k])
            size += k
    finally:
        r.close()
    w = p.done[idx] = (h.digest(), size)
    return w


def _param(p, idx, key, policy, off):
    v = p.args[idx].get(key)
    if v is None:
        p.record(policy, off, idx, None, _CONDITION_FAILED, (39, key, idx))
    return v


def command(p, cmd, idx=None, policy=0, off=0, d=None, depth=0):
    """What Processor p does outside its inline loop, by cmd:
    - the conditions component-slot, abort, check-content and the directives invoke and swap (done here:
      returns None), write and copy (returns the reader the processor streams into the component);
    - set-component-index, try-each, run-sequence (d: the Decoder at the argument, depth: the nesting);
    - image-match of an image not written in this run: its (digest, size) read back;
    - -1: the decryptor of component idx's payload;
    - a method name (str): the Processor method an install does not call (p.__getattr__), or AttributeError."""
    if type(cmd) is str:
        f = {"stored_sequence_number": _stored_sequence_number, "recover": _recover, "boot": _boot}.get(cmd)
        if f is None:
            raise AttributeError(cmd)
        return lambda *args: f(p, *args)
    if d is not None:
        return _structure(p, cmd, d, off, depth)
    if cmd == _C_IMAGE_MATCH:
        return _read_back(p, idx, policy, off)
    if cmd == -1:
        from suit.encryption import decryptor
        return decryptor(p.args[idx].get(_P_ENCRYPTION_INFO), p.decryption_keys)
    if cmd == _C_ABORT:
        p.record(policy, off, idx, None, _CONDITION_FAILED, "abort")
    cid = p.manifest.components[idx]
    if cmd == _C_COMPONENT_SLOT:
        slot = _param(p, idx, _P_COMPONENT_SLOT, policy, off)
        if not p.driver.slot_matches(cid, slot):
            p.record(policy, off, idx, None, _CONDITION_FAILED, "component %d slot %d is not the one to use"
                    % (idx, slot))
    elif cmd == _C_CHECK_CONTENT:
        if not _content_equals(p, cid, _param(p, idx, _P_CONTENT, policy, off)):
            p.record(policy, off, idx, None, _CONDITION_FAILED, "component %d content differs" % idx)
    else:
        return _directive(p, cmd, idx, policy, off)
    p.record(policy, off, idx)


def _content_equals(p, cid, want):
    r = p.driver.open_read(cid)
    if r is None:
        return False
    mv = p.chunk()
    pos = 0
    try:
        while True:
            n = r.readinto(mv)
            if not n:
                break
            if pos + n > len(want) or mv[0:n] != want[pos:pos + n]:
                return False
            pos += n
    finally:
        r.close()
    return pos == len(want)


def _directive(p, cmd, idx, policy, off):
    m = p.manifest
    cid = m.components[idx]
    if cmd == _D_INVOKE:
        try:
            p.driver.invoke(cid, p.args[idx].get(_P_INVOKE_ARGS))
        except OSError as e:
            p.record(policy, off, idx, None, _OPERATION_FAILED, "invoke failed: %s" % e)
        p.record(policy, off, idx)
        return None
    if cmd == _D_WRITE:
        from suit.spool import MemReader
        return MemReader(_param(p, idx, _P_CONTENT, policy, off))
    src = _param(p, idx, _P_SOURCE_COMPONENT, policy, off)
    if src >= len(m.components) or src == idx:
        p.record(policy, off, idx, None, _COMPONENT_UNSUPPORTED, "bad source component %d" % src)
    if cmd == _D_COPY:
        reader = p.driver.open_read(m.components[src])
        if reader is None:
            p.record(policy, off, idx, None, _OPERATION_FAILED, "source component %d is empty" % src)
        return reader
    # swap
    p.driver.swap(cid, m.components[src])
    w = p.done
    a, b = w.pop(idx, None), w.pop(src, None)
    if b is not None:
        w[idx] = b
    if a is not None:
        w[src] = a
    p.record(policy, off, idx)
    return None
