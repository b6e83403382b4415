# The SUIT command interpreter (draft-ietf-suit-manifest-37 sections 6 and 8.4): one loop over a sequence's
# commands with the common ones inline (the rest in suit.commands, loaded on first use), parameters kept as
# memoryviews into the manifest, payloads streamed in fixed chunks through the running SHA-256 (and the
# decryptor) into the driver's staged slot. Staged images become active only in
# driver.commit(), after payload-fetch, install and validate all passed; then the sequence number is stored.
#
# The driver is the platform (suit.bundle, suit.slots, suit.esp32ota implement it):
#   identity(param) -> bytes or None          vendor-id 1, class-id 2, device-id 24
#   slot_matches(cid, slot) -> bool           condition component-slot (which slot is free to install)
#   fetch(uri) -> reader                      reader.readinto(mv) -> n (0 at the end), reader.close()
#   stage(cid, slot, size) -> writer          writer.write(mv), writer.close(); replaces any earlier staging
#   open_read(cid) -> reader or None          the staged image if there is one, else the active one
#   swap(cid_a, cid_b), invoke(cid, args)
#   commit(seq), finish(), abort(), recover() -> seq or None, report(data)
from hashlib import sha256

from cbor import CBORDecodeError, Decoder, dumps  # Decoder once: each cbor.Decoder is an import
from suit import SuitError, const
from suit import envelope

# reasons (suit.reasons.REASONS)
_CBOR_PARSE = const(1)
_UNAUTHORISED = const(4)
_COMMAND_UNSUPPORTED = const(5)
_PARAMETER_UNSUPPORTED = const(8)
_CONDITION_FAILED = const(10)
_OPERATION_FAILED = const(11)
# sections
_SHARED_SEQUENCE = const(4)
_VALIDATE = const(7)
_LOAD = const(8)
_INVOKE = const(9)
_PAYLOAD_FETCH = const(16)
_INSTALL = const(20)
# commands: conditions vendor-id 1, class-id 2, image-match 3, component-slot 5, check-content 6, abort 14,
# device-id 24; directives set-component-index 12, try-each 15, write 18, set-parameters 19,
# override-parameters 20, fetch 21, copy 22, invoke 23, swap 31, run-sequence 32
_C_VENDOR_ID = const(1)
_C_CLASS_ID = const(2)
_C_IMAGE_MATCH = const(3)
_C_DEVICE_ID = const(24)
_D_SET_PARAMETERS = const(19)
_D_OVERRIDE_PARAMETERS = const(20)
_D_FETCH = const(21)
_WITH_POLICY = const(0x1E4406E)  # bit n: command n (or swap, 31) takes a reporting policy and runs per component
# parameters; bit n of a mask: parameter n has that type
_P_BSTR = const(0x18C000E)  # vendor 1, class 2, image-digest 3, content 18, encryption-info 19, invoke-args 23,
# device 24
_P_UINT = const(0x404020)  # component-slot 5, image-size 14, source-component 22
_P_BOOL = const(0x3000)  # strict-order 12, soft-failure 13
_P_IMAGE_DIGEST = const(3)
_P_COMPONENT_SLOT = const(5)
_P_IMAGE_SIZE = const(14)
_P_ENCRYPTION_INFO = const(19)
_P_URI = const(21)
_MAX_DEPTH = const(6)  # nested run-sequence / try-each
_MAX_RECORDS = const(16)


def _head(out, major, n):
    """Append a CBOR head (major type, argument 0 <= n < 2**32) to bytearray out, as cbor.dumps encodes it."""
    if n < 24:
        out.append(major << 5 | n)
    elif n < 0x100:
        out.append(major << 5 | 24)
        out.append(n)
    else:
        out.append(major << 5 | (25 if n < 0x10000 else 26))
        out += n.to_bytes(2 if n < 0x10000 else 4, "big")


class Result:
    """What a run produced (set by Processor.update): ok, reason (suit.reasons.REASONS index), message, record
    of the failure, the CBOR report, the sequence number, the digest, installed, and the executed commands when
    tracing ((section, offset, command, component))."""
    # what a run that learnt nothing reports: an instance holds only what its run set (each attribute stored
    # grows the instance's dict)
    ok = installed = False
    reason = 0
    message = ""
    record = report = sequence_number = digest = trace = None


class Processor:
    """One device's SUIT processor. trust_anchors: CoseKey/KeySet/list for sign1/mac0 verify; store: a
    lib/store FileStore for the anti-rollback sequence number, kept under `name`; decryption_keys: A128KW
    key-encryption keys; maxsize: the largest envelope taken (bytes). Attributes and arguments are named by
    names the VM has already interned where one fits: each new one is a string on the board. During an
    update (suit.commands works through them too): result (the Result), log (the report's records), phase (the
    section running), manifest, args (each component's parameters), indices (the current component indices),
    done (component index -> (digest, size) written or read back), buf (the chunk buffer)."""

    def __init__(self, driver, trust_anchors, store=None, decryption_keys=None, maxsize=16384,
                 max_components=8, chunk_size=4096, name="suit-seq", trace=False):
        self.driver = driver
        self.trust_anchors = trust_anchors
        self.store = store
        self.decryption_keys = decryption_keys
        self.maxsize = maxsize
        self.max_components = max_components
        self.chunk_size = chunk_size
        self.name = name
        self.trace = trace
        self.buf = None

    def chunk(self):
        """The chunk buffer, as a memoryview: chunk_size bytes, or the largest half, quarter, ... of it down to
        256 that the heap holds, so an install in a heap fragmented by what ran before it goes on in smaller
        chunks instead of failing (MemoryError only when not even 256 bytes are left in one piece)."""
        b = self.buf
        if b is None:
            n = self.chunk_size
            while b is None:
                try:
                    b = bytearray(n)
                except MemoryError:
                    if n <= 256:
                        raise
                    n >>= 1
            self.buf = b
        return memoryview(b)

    def __getattr__(self, name):
        # the methods an install does not call (stored_sequence_number, recover, boot): suit.commands' code
        from suit.commands import command
        return command(self, name)

    def update(self, data, invoke=False, install=True):
        """Install: authenticate, check the sequence number, run payload-fetch, install and validate, commit,
        store the sequence number; then load and invoke when invoke=True. Returns a Result (never raises a
        SuitError; a PowerCut from a fault injector goes through). install=False is boot()."""
        self.result = res = Result()
        if self.trace:
            res.trace = []
        m = None
        self.log = records = []
        self.phase = 0
        staged = False
        # the chunk buffer first, while the free heap is still in one piece: allocated after authentication it
        # needs a 4 KiB hole among what parsing left, which on the VM raised the smallest heap an install runs in
        self.buf = None
        if install:
            self.chunk()
        try:
            try:
                m = envelope.read(data, self.maxsize)
                res.digest = envelope.verify(m, self.trust_anchors)
                self.manifest = envelope.parse(m, self.max_components)
                seq = res.sequence_number = m.sequence_number
                store = self.store
                stored = store.get(self.name) if store is not None else None
                stored = int.from_bytes(stored, "big") if stored else None
                if stored is not None and (seq < stored or install and seq == stored):
                    raise SuitError(_UNAUTHORISED, (48 if install else 49, seq, stored))
                self.done = {}
                seqs = m.sequences
                staged = ran = install and (_PAYLOAD_FETCH in seqs or _INSTALL in seqs)
                # the sections in order; 0: the commit point of an install (after validate, before load). boot()
                # starts at validate; load and invoke run when invoke is set
                order = (_PAYLOAD_FETCH, _INSTALL, _VALIDATE, 0, _LOAD, _INVOKE)
                for key in order[0 if install else 2:6 if invoke else 4]:
                    if not key:
                        self.buf = None  # the streaming is over: the commit and the report need the heap
                        if ran:
                            staged = False  # from here on a failure must not undo the commit: recover() ends it
                            # the commit, the sequence number stored, the old images dropped
                            self.driver.commit(seq)
                            if store is not None:  # seq is newer than the stored one (checked above)
                                store.put(self.name, seq.to_bytes(8, "big"))
                            self.driver.finish()
                            res.installed = True
                    elif key in seqs:
                        self.args = params = []
                        for _ in m.components:
                            params.append({})
                        self.indices = [0]
                        if m.shared is not None:
                            self.phase = _SHARED_SEQUENCE
                            self._run(m.shared, 0)
                        self.phase = key
                        self._run(seqs[key], 0)
                res.ok = True
            except SuitError as e:
                res.reason = e.reason
                res.message = e.args[0]
                res.record = e.record
            except (MemoryError, OSError) as e:
                res.reason = _OPERATION_FAILED
                if type(e) is MemoryError:
                    res.message = "out of memory"
                else:
                    from suit._text import text
                    res.message = text((60, e))
            if staged:
                self.driver.abort()
            # the report (draft-ietf-suit-report-18): {99: [reference-uri, SUIT_Digest], 3: [records],
            # 4: true / {5: result-code, 6: failing record, 7: reason}}; the digest goes in as the encoded bytes
            # it is. The draft leaves the result-code's values to the processor: ours repeats the reason code.
            out = bytearray(b"\xa3\x18\x63\x82")
            uri = m.reference_uri if m is not None else None
            if uri is None:
                out.append(0x60)  # ""
            else:
                out += dumps(uri)
            if res.digest is None:
                out.append(0xF6)
            else:
                out += res.digest
            out.append(3)
            # the records as cbor.dumps encodes them, the usual shapes inline (one dumps of a record is ~80K VM
            # instructions): [[], section, offset, index, {key: uint or bstr}]; any other through dumps
            out.append(0x80 + len(records))  # at most _MAX_RECORDS
            for rec in records:
                info = rec[4]
                simple = not rec[0] and rec[3] is not None and len(info) < 24
                for key in info:
                    v = info[key]
                    if not (type(key) is int and 0 <= key < 24 and (type(v) is bytes and len(v) < 0x10000
                                                                     or type(v) is int and 0 <= v < 0x10000000)):
                        simple = False
                if not simple:
                    out += dumps(rec)
                    continue
                out += b"\x85\x80"
                for v in rec[1:4]:  # section, offset, component index
                    if v < 24:
                        out.append(v)
                    else:
                        _head(out, 0, v)
                out.append(0xA0 + len(info))
                for key in info:
                    v = info[key]
                    out.append(key)
                    if type(v) is int:
                        _head(out, 0, v)
                    elif len(v) < 256:  # a digest, an id: one- or two-byte head
                        if len(v) < 24:
                            out.append(0x40 + len(v))
                        else:
                            out.append(0x58)
                            out.append(len(v))
                        out += v
                    else:
                        _head(out, 2, len(v))
                        out += v
            out.append(4)
            if res.ok:
                out.append(0xF5)
            else:
                out += dumps({5: res.reason, 6: res.record, 7: res.reason})
            res.report = bytes(out)
        finally:
            self.manifest = self.done = self.buf = self.log = self.result = None
        try:
            self.driver.report(res.report)
        except OSError:
            pass
        return res

    def _run(self, data, depth):
        """Run one command sequence (data); a failure raises SuitError (suit.commands makes a failed condition
        False where soft-failure is set)."""
        if depth > _MAX_DEPTH:
            raise SuitError(_CBOR_PARSE, 38)
        trace = self.result.trace
        params = self.args
        # the usual encodings read inline at pos (command numbers, policies and parameter keys below 24, short
        # array and map heads, the parameters' values with short heads): a cbor.Decoder is made only for anything
        # else (and for the commands of suit.commands), as each of its reads is a few method calls
        buf = memoryview(data)
        end = len(buf)
        d = None
        try:
            pos = 1
            n = buf[0] - 0x80 if end and 0x80 <= buf[0] < 0x98 else -1
            if n < 0:
                d = Decoder(data)
                n = d.read_array_header()
                pos = d.pos
            if n is None or n % 2:
                raise SuitError(_CBOR_PARSE, 42)
            for _ in range(n // 2):
                off = pos
                cmd = buf[off] if off < end else 0xFF
                pos += 1
                if cmd > 23:
                    d = d or Decoder(data)
                    d.pos = off
                    cmd = d.read_int()
                    pos = d.pos
                if 0 < cmd < 25 and (_WITH_POLICY >> cmd) & 1 or cmd == 31:
                    policy = buf[pos] if pos < end else 0xFF
                    pos += 1
                    if policy > 23:
                        d = d or Decoder(data)
                        d.pos = pos - 1
                        policy = d.read_uint()
                        pos = d.pos
                    for idx in self.indices:
                        if trace is not None:
                            trace.append((self.phase, off, cmd, idx))
                        p = params[idx]
                        # the parameter each of the commands below needs: image-digest, uri or the id itself
                        key = _P_IMAGE_DIGEST if cmd == _C_IMAGE_MATCH else _P_URI if cmd == _D_FETCH else cmd
                        v = p.get(key)
                        if v is None and (key == _P_IMAGE_DIGEST or key == _P_URI or key == _C_VENDOR_ID
                                          or key == _C_CLASS_ID or key == _C_DEVICE_ID):
                            self.record(policy, off, idx, None, _OPERATION_FAILED if key == _P_URI
                                       else _CONDITION_FAILED, (39, key, idx))
                        if cmd == _C_IMAGE_MATCH:
                            w = self.done.get(idx)
                            if w is None:  # not written in this run: read the image back (suit.commands)
                                from suit.commands import command
                                w = command(self, cmd, idx, policy, off)
                            size = w[1]
                            want = p.get(_P_IMAGE_SIZE)
                            bad_size = want is not None and size != want
                            if bad_size or w[0] != envelope.parse_digest(v)[1]:  # a digest is public: no ct_equal
                                self.record(policy, off, idx, None, _CONDITION_FAILED, (45, idx, bad_size))
                            # the digest matched: the record carries the manifest's encoding of it, as is
                            self.record(policy, off, idx, {_P_IMAGE_DIGEST: bytes(v), _P_IMAGE_SIZE: size})
                            continue
                        if cmd == _C_VENDOR_ID or cmd == _C_CLASS_ID or cmd == _C_DEVICE_ID:
                            have = self.driver.identity(cmd)
                            if have is None or bytes(v) != bytes(have):
                                self.record(policy, off, idx, None, _CONDITION_FAILED, (41, cmd))
                            self.record(policy, off, idx)
                            continue
                        if cmd != _D_FETCH:
                            from suit.commands import command
                            r = command(self, cmd, idx, policy, off)  # write and copy return a reader
                            if r is None:
                                continue
                        elif v and ord(v[0]) == 0x23:  # "#name": an integrated payload
                            from suit.spool import payload_reader
                            r = payload_reader(self.manifest, v[1:]) if v[1:] else None  # with or without its "#"
                            if r is None:
                                r = payload_reader(self.manifest, v)
                            if r is None:
                                self.record(policy, off, idx, None, _OPERATION_FAILED, (46, v))
                        else:
                            try:
                                r = self.driver.fetch(v)
                            except OSError as e:
                                self.record(policy, off, idx, None, _OPERATION_FAILED, (50, v, e))
                        # stream r into the component's staged slot: decrypt, hash, write, one chunk at a time
                        limit = p.get(_P_IMAGE_SIZE)
                        dec = None
                        info = p.get(_P_ENCRYPTION_INFO)
                        if info is not None:  # the decryptor: suit.commands' command -1
                            from suit.commands import command
                            dec = command(self, -1, idx, policy, off)
                        h = sha256()
                        total = 0
                        mv = self.chunk()
                        writer = None
                        try:
                            try:
                                writer = self.driver.stage(self.manifest.components[idx], p.get(_P_COMPONENT_SLOT),
                                                           limit)
                                whole = len(mv)
                                while True:
                                    k = r.readinto(mv)
                                    if not k:
                                        break
                                    chunk = mv if k == whole else mv[0:k]  # a whole chunk: no new memoryview
                                    if dec is not None:
                                        chunk = dec.update(chunk)
                                        k = len(chunk)
                                    total += k
                                    if limit is not None and total > limit:
                                        self.record(policy, off, idx, None, _OPERATION_FAILED, (51, idx, limit))
                                    if k:
                                        h.update(chunk)
                                        writer.write(chunk)
                                if dec is not None:
                                    dec.finish()
                                writer.close()
                                writer = None
                            except OSError as e:
                                self.record(policy, off, idx, None, _OPERATION_FAILED, (47, idx, e))
                            except SuitError as e:
                                if e.record is None:  # the decryptor's
                                    e.record = [[], self.phase, off, idx, {}]
                                raise
                        finally:
                            r.close()
                            if writer is not None:
                                try:
                                    writer.close()
                                except OSError:
                                    pass
                        self.done[idx] = (h.digest(), total)
                        self.record(policy, off, idx)
                    continue
                if trace is not None and (cmd == _D_SET_PARAMETERS or cmd == _D_OVERRIDE_PARAMETERS or cmd == 12
                                          or cmd == 15 or cmd == 32):
                    trace.append((self.phase, off, cmd, None))
                if cmd == _D_SET_PARAMETERS or cmd == _D_OVERRIDE_PARAMETERS:
                    seen = 0
                    count = buf[pos] - 0xA0 if pos < end else -1
                    pos += 1
                    if not -1 < count < 24:
                        d = d or Decoder(data)
                        d.pos = pos - 1
                        count = envelope.read_map_header(d, 5)
                        pos = d.pos
                    for _ in range(count):
                        key = buf[pos] if pos < end else 0xFF
                        pos += 1
                        if key > 23:
                            d = d or Decoder(data)
                            d.pos = pos - 1
                            key = d.read_int()
                            pos = d.pos
                        bit = 1 << key if 0 < key < 32 else 0
                        if seen & bit:
                            raise SuitError(_CBOR_PARSE, (40, key))
                        seen |= bit
                        # a uint, bstr or text (the uri) with a head of one, two, three or five bytes, read here
                        v = None
                        b = buf[pos] if pos < end else 0xFF
                        major = b >> 5
                        arg = b & 0x1F
                        s = pos + 1 + (0 if arg < 24 else 1 << arg - 24 if arg < 27 else end)
                        if s <= end:
                            arg = arg if arg < 24 else int.from_bytes(buf[pos + 1:s], "big")
                            if major == 0 and bit & _P_UINT:
                                v = arg
                                pos = s
                            elif (major == 2 and bit & _P_BSTR or major == 3 and key == _P_URI) and s + arg <= end:
                                v = buf[s:s + arg]
                                if major == 3:
                                    try:
                                        v = str(v, "utf-8")
                                    except UnicodeError:  # the Decoder's error below
                                        v = None
                                if v is not None:
                                    pos = s + arg
                        if v is None:  # anything else: the Decoder reads it, or names what is wrong
                            d = d or Decoder(data)
                            d.pos = pos
                            if bit & _P_BSTR:
                                v = d.read_bytes()
                            elif bit & _P_UINT:
                                v = d.read_uint()
                            elif bit & _P_BOOL:
                                v = d.decode()
                                if type(v) is not bool:
                                    raise SuitError(_CBOR_PARSE, (53, key))
                            elif key == _P_URI:
                                v = d.read_text()
                            else:
                                raise SuitError(_PARAMETER_UNSUPPORTED, (54, key))
                            pos = d.pos
                        for idx in self.indices:
                            p = params[idx]
                            if cmd == _D_OVERRIDE_PARAMETERS or key not in p:
                                p[key] = v
                elif cmd == 12 or cmd == 15 or cmd == 32:  # set-component-index, try-each, run-sequence
                    from suit.commands import command
                    d = d or Decoder(data)
                    d.pos = pos
                    command(self, cmd, None, 0, off, d, depth)
                    pos = d.pos
                else:
                    self.record(0, off, None, None, _COMMAND_UNSUPPORTED, (52, cmd))
            if pos < end:
                raise SuitError(_CBOR_PARSE, (59, 6))
        except CBORDecodeError as e:
            raise SuitError(_CBOR_PARSE, (43, e))

    def record(self, flags, off, idx, info=None, reason=0, message=None):
        """Record a command's success (its reporting policy, flags, bit 1: send-record-success) or, given a
        reason, its failure (bit 2: send-record-failure), then raise SuitError with that record."""
        rec = None
        if flags & (2 if reason else 1) and len(self.log) < _MAX_RECORDS:
            rec = [[], self.phase, off, idx, info or {}]  # info: the parameters to report
            self.log.append(rec)
        if reason:
            raise SuitError(reason, message, rec or [[], self.phase, off, idx, {}])
