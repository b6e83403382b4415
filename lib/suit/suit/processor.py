# The SUIT command interpreter (draft-ietf-suit-manifest-37 sections 6 and 8.4): one handler per command
# number, parameters kept as memoryviews into the manifest, payloads streamed in fixed chunks through the
# running SHA-256 (and the decryptor) into the driver's staged slot. Staged images become active only in
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

from cbor import CBORDecodeError, Decoder  # Decoder once: each cbor.Decoder is an import
from crypto.util import ct_equal
from suit import SuitError, const
from suit import envelope as _env

_CONDITION_FAILED = const(10)
_OPERATION_FAILED = const(11)
_UNAUTHORISED = const(4)
_CBOR_PARSE = const(1)
_COMMAND_UNSUPPORTED = const(5)
_PARAMETER_UNSUPPORTED = const(8)
_VALIDATE = const(7)
_LOAD = const(8)
_INVOKE = const(9)
_PAYLOAD_FETCH = const(16)
_INSTALL = const(20)
_SHARED_SEQUENCE = const(4)

# conditions
_C_VENDOR_ID = const(1)
_C_CLASS_ID = const(2)
_C_IMAGE_MATCH = const(3)
_C_COMPONENT_SLOT = const(5)
_C_CHECK_CONTENT = const(6)
_C_ABORT = const(14)
_C_DEVICE_ID = const(24)
# directives
_D_SET_COMPONENT_INDEX = const(12)
_D_TRY_EACH = const(15)
_D_WRITE = const(18)
_D_SET_PARAMETERS = const(19)
_D_OVERRIDE_PARAMETERS = const(20)
_D_FETCH = const(21)
_D_COPY = const(22)
_D_INVOKE = const(23)
_D_SWAP = const(31)
_D_RUN_SEQUENCE = const(32)
# parameters
_P_VENDOR_ID = const(1)
_P_CLASS_ID = const(2)
_P_IMAGE_DIGEST = const(3)
_P_COMPONENT_SLOT = const(5)
_P_STRICT_ORDER = const(12)
_P_SOFT_FAILURE = const(13)
_P_IMAGE_SIZE = const(14)
_P_CONTENT = const(18)
_P_ENCRYPTION_INFO = const(19)
_P_URI = const(21)
_P_SOURCE_COMPONENT = const(22)
_P_INVOKE_ARGS = const(23)
_P_DEVICE_ID = const(24)

_BSTR_PARAMS = (_P_VENDOR_ID, _P_CLASS_ID, _P_IMAGE_DIGEST, _P_CONTENT, _P_ENCRYPTION_INFO, _P_INVOKE_ARGS,
                _P_DEVICE_ID)
_UINT_PARAMS = (_P_COMPONENT_SLOT, _P_IMAGE_SIZE, _P_SOURCE_COMPONENT)
_BOOL_PARAMS = (_P_STRICT_ORDER, _P_SOFT_FAILURE)
_REP_SUCCESS = const(1)  # suit-send-record-success
_REP_FAILURE = const(2)  # suit-send-record-failure
_MAX_DEPTH = const(6)  # nested run-sequence / try-each
_MAX_RECORDS = const(16)


class Result:
    """What a run produced: ok, reason (suit.REASONS index), message, record of the failure, the CBOR report,
    the sequence number, and the executed commands when tracing ((section, offset, command, component))."""

    def __init__(self):
        self.ok = False
        self.reason = 0
        self.message = ""
        self.record = None
        self.report = None
        self.sequence_number = None
        self.digest = None
        self.installed = False
        self.trace = None

    def __repr__(self):
        return "<suit.Result %s>" % ("ok" if self.ok else "%d %s" % (self.reason, self.message))


class Processor:
    """One device's SUIT processor. trust_anchors: CoseKey/KeySet/list for sign1/mac0 verify; store: a
    lib/store FileStore for the anti-rollback sequence number; decryption_keys: A128KW key-encryption keys."""

    def __init__(self, driver, trust_anchors, store=None, decryption_keys=None, max_envelope=16384,
                 max_components=8, chunk_size=4096, seq_name="suit-seq", trace=False):
        self.driver = driver
        self.trust_anchors = trust_anchors
        self.store = store
        self.decryption_keys = decryption_keys
        self.max_envelope = max_envelope
        self.max_components = max_components
        self.chunk_size = chunk_size
        self.seq_name = seq_name
        self.tracing = trace
        self._buf = None

    # ------------------------------------------------------------------ anti-rollback state

    def stored_sequence_number(self):
        if self.store is None:
            return None
        b = self.store.get(self.seq_name)
        return int.from_bytes(b, "big") if b else None

    def _store_sequence_number(self, seq):
        if self.store is not None:
            old = self.stored_sequence_number()
            if old is None or seq > old:
                self.store.put(self.seq_name, seq.to_bytes(8, "big"))

    def recover(self):
        """At boot: let the driver finish (or undo) a commit a power cut interrupted, then store its sequence
        number. Returns the recovered sequence number, or None when there was nothing to finish."""
        seq = self.driver.recover()
        if seq is not None:
            self._store_sequence_number(seq)
            self.driver.finish()
        return seq

    # ------------------------------------------------------------------ entry points

    def update(self, envelope, invoke=False):
        """Install: authenticate, check the sequence number, run payload-fetch, install and validate, commit,
        store the sequence number; then load and invoke when invoke=True. Returns a Result (never raises a
        SuitError; a PowerCut from a fault injector goes through)."""
        return self._process(envelope, True, invoke)

    def boot(self, envelope):
        """Secure boot with the installed manifest: validate, load, invoke (sequence number at least the
        stored one)."""
        return self._process(envelope, False, True)

    def _process(self, envelope, install, invoke):
        res = Result()
        if self.tracing:
            res.trace = []
        self._res = res
        self._m = None
        self._records = []
        self._section = 0
        staged = False
        # the chunk buffer first, while the free heap is still in one piece: allocated after authentication it
        # needs a 4 KiB hole among what parsing left, which on the VM raised the smallest heap an install runs in
        self._buf = bytearray(self.chunk_size) if install else None
        try:
            try:
                env = _env.Envelope(envelope, self.max_envelope)
                res.digest = env.authenticate(self.trust_anchors)
                m = _env.Manifest(env, self.max_components)
                self._env = env
                self._m = m
                res.sequence_number = m.sequence_number
                stored = self.stored_sequence_number()
                if stored is not None:
                    if install and m.sequence_number <= stored:
                        raise SuitError(_UNAUTHORISED, (48, m.sequence_number, stored))
                    if not install and m.sequence_number < stored:
                        raise SuitError(_UNAUTHORISED, (49, m.sequence_number, stored))
                self._written = {}
                if install:
                    ran = False
                    for key in (_PAYLOAD_FETCH, _INSTALL):
                        if key in m.sequences:
                            ran = True
                            staged = True
                            self._run_section(key)
                    if _VALIDATE in m.sequences:
                        self._run_section(_VALIDATE)
                    self._buf = None  # the streaming is over: the commit and the report need the heap
                    if ran:
                        staged = False  # from here on a failure must not undo the commit: recover() ends it
                        self.driver.commit(m.sequence_number)
                        self._store_sequence_number(m.sequence_number)
                        self.driver.finish()
                        res.installed = True
                elif _VALIDATE in m.sequences:
                    self._run_section(_VALIDATE)
                if invoke:
                    for key in (_LOAD, _INVOKE):
                        if key in m.sequences:
                            self._run_section(key)
                res.ok = True
            except SuitError as e:
                res.reason = e.reason
                res.message = e.args[0]
                res.record = e.record
            except MemoryError:
                res.reason = _OPERATION_FAILED
                res.message = "out of memory"
            except OSError as e:
                res.reason = _OPERATION_FAILED
                res.message = "storage error: %s" % e
            if staged:
                self.driver.abort()
            res.report = self._report(res)
        finally:
            self._env = None
            self._m = None
            self._written = None
            self._buf = None
            self._records = None
            self._res = None
        try:
            self.driver.report(res.report)
        except OSError:
            pass
        return res

    def _report(self, res):
        from suit.report import encode
        uri = self._m.reference_uri if self._m is not None else None
        return encode(uri, res.digest, self._records, res)

    # ------------------------------------------------------------------ sequences

    def _run_section(self, key):
        m = self._m
        n = len(m.components)
        self._params = [{} for _ in range(n)]
        self._current = [0]
        if m.shared is not None:
            self._section = _SHARED_SEQUENCE
            self._run(m.shared, 0, False)
        self._section = key
        self._run(m.sequences[key], 0, False)

    def _run(self, seq, depth, soft):
        """Run one command sequence; True when it completes, False when a condition failed and soft is set."""
        if depth > _MAX_DEPTH:
            raise SuitError(_CBOR_PARSE, (38, _MAX_DEPTH))
        try:
            d = Decoder(seq)
            try:
                n = d.read_array_header()
                if n is None or n % 2:
                    raise SuitError(_CBOR_PARSE, 42)
                for _ in range(n // 2):
                    off = d.pos
                    cmd = d.read_int()
                    self._command(cmd, d, off, depth)
                _env.expect_end(d, "a command sequence")
            except CBORDecodeError as e:
                raise SuitError(_CBOR_PARSE, (43, e))
        except SuitError as e:
            if soft and e.reason == _CONDITION_FAILED:
                return False
            raise
        return True

    def _record(self, off, idx, params=None):
        return [[], self._section, off, idx, params or {}]

    def _note(self, policy, off, idx, params=None):
        if policy & _REP_SUCCESS and len(self._records) < _MAX_RECORDS:
            self._records.append(self._record(off, idx, params))

    def _fail(self, reason, message, policy, off, idx):
        rec = self._record(off, idx)
        if policy & _REP_FAILURE and len(self._records) < _MAX_RECORDS:
            self._records.append(rec)
        raise SuitError(reason, message, rec)

    def _command(self, cmd, d, off, depth):
        tracing = self.tracing
        if cmd in (_C_VENDOR_ID, _C_CLASS_ID, _C_DEVICE_ID, _C_IMAGE_MATCH, _C_COMPONENT_SLOT, _C_CHECK_CONTENT,
                   _C_ABORT):
            policy = d.read_uint()
            for idx in self._current:
                if tracing:
                    self._res.trace.append((self._section, off, cmd, idx))
                self._condition(cmd, idx, policy, off)
        elif cmd == _D_SET_COMPONENT_INDEX:
            if tracing:
                self._res.trace.append((self._section, off, cmd, None))
            from suit.commands import set_index
            set_index(self, d)
        elif cmd == _D_OVERRIDE_PARAMETERS or cmd == _D_SET_PARAMETERS:
            if tracing:
                self._res.trace.append((self._section, off, cmd, None))
            self._parameters(d, cmd == _D_OVERRIDE_PARAMETERS)
        elif cmd == _D_TRY_EACH or cmd == _D_RUN_SEQUENCE:
            if tracing:
                self._res.trace.append((self._section, off, cmd, None))
            from suit.commands import sequence
            sequence(self, cmd, d, off, depth)
        elif cmd in (_D_FETCH, _D_COPY, _D_WRITE, _D_INVOKE, _D_SWAP):
            policy = d.read_uint()
            for idx in self._current:
                if tracing:
                    self._res.trace.append((self._section, off, cmd, idx))
                self._directive(cmd, idx, policy, off)
        else:
            raise SuitError(_COMMAND_UNSUPPORTED, (52, cmd), self._record(off, None))

    def _parameters(self, d, override):
        n = _env.read_map_keys(d, "parameters")
        seen = []
        for _ in range(n):
            key = d.read_int()
            if key in seen:
                raise SuitError(_CBOR_PARSE, (40, key))
            seen.append(key)
            if key in _BSTR_PARAMS:
                value = d.read_bytes()
            elif key in _UINT_PARAMS:
                value = d.read_uint()
            elif key in _BOOL_PARAMS:
                value = d.decode()
                if type(value) is not bool:
                    raise SuitError(_CBOR_PARSE, (53, key))
            elif key == _P_URI:
                value = d.read_text()
            else:
                raise SuitError(_PARAMETER_UNSUPPORTED, (54, key))
            for idx in self._current:
                p = self._params[idx]
                if override or key not in p:
                    p[key] = value

    # ------------------------------------------------------------------ conditions

    def _param(self, idx, key, policy, off):
        v = self._params[idx].get(key)
        if v is None:
            self._fail(_CONDITION_FAILED if key != _P_URI else _OPERATION_FAILED,
                       (39, key, idx),
                       policy, off, idx)
        return v

    def _condition(self, cmd, idx, policy, off):
        if cmd == _C_VENDOR_ID or cmd == _C_CLASS_ID or cmd == _C_DEVICE_ID:
            want = self._param(idx, cmd, policy, off)
            have = self.driver.identity(cmd)
            if have is None or bytes(want) != bytes(have):
                self._fail(_CONDITION_FAILED, (41, cmd), policy, off, idx)
            self._note(policy, off, idx)
        elif cmd == _C_IMAGE_MATCH:
            enc = self._param(idx, _P_IMAGE_DIGEST, policy, off)
            want = _env.parse_digest(enc)[1]
            digest, size = self._digest_of(idx)
            want_size = self._params[idx].get(_P_IMAGE_SIZE)
            if digest is None:
                self._fail(_CONDITION_FAILED, (44, idx), policy, off, idx)
            if not ct_equal(digest, want) or (want_size is not None and size != want_size):
                self._fail(_CONDITION_FAILED, (45, idx, "" if want_size is None or size == want_size else " and size"),
                           policy, off, idx)
            # the digest matched: the record carries the manifest's encoding of it, as is
            self._note(policy, off, idx, {_P_IMAGE_DIGEST: bytes(enc), _P_IMAGE_SIZE: size})
        else:
            from suit.commands import condition
            condition(self, cmd, idx, policy, off)

    def _chunk(self):
        if self._buf is None:
            self._buf = bytearray(self.chunk_size)
        return memoryview(self._buf)

    def _digest_of(self, idx):
        w = self._written.get(idx)
        if w is not None:
            return w
        r = self.driver.open_read(self._m.components[idx])
        if r is None:
            return None, 0
        h = sha256()
        total = 0
        mv = self._chunk()
        try:
            while True:
                n = r.readinto(mv)
                if not n:
                    break
                h.update(mv if n == len(mv) else mv[0:n])
                total += n
        finally:
            r.close()
        w = (h.digest(), total)
        self._written[idx] = w
        return w

    # ------------------------------------------------------------------ directives

    def _directive(self, cmd, idx, policy, off):
        if cmd == _D_FETCH:
            uri = self._param(idx, _P_URI, policy, off)
            if uri.startswith("#"):
                reader = self._env.payload_reader(uri[1:]) if uri[1:] else None
                if reader is None:
                    reader = self._env.payload_reader(uri)
                if reader is None:
                    self._fail(_OPERATION_FAILED, (46, uri), policy, off, idx)
            else:
                try:
                    reader = self.driver.fetch(uri)
                except OSError as e:
                    self._fail(_OPERATION_FAILED, (50, uri, e), policy, off, idx)
        else:
            from suit.commands import directive
            reader = directive(self, cmd, idx, policy, off)
            if reader is None:
                return
        self._pump(reader, idx, self._m.components[idx], self._params[idx], policy, off)
        self._note(policy, off, idx)

    def _pump(self, reader, idx, cid, p, policy, off):
        """Stream reader into the component's staged slot: decrypt, hash, write, one chunk at a time."""
        limit = p.get(_P_IMAGE_SIZE)
        dec = None
        info = p.get(_P_ENCRYPTION_INFO)
        if info is not None:
            from suit.encryption import decryptor
            dec = decryptor(info, self.decryption_keys)
        h = sha256()
        total = 0
        mv = self._chunk()
        writer = None
        try:
            try:
                writer = self.driver.stage(cid, p.get(_P_COMPONENT_SLOT), limit)
                while True:
                    n = reader.readinto(mv)
                    if not n:
                        break
                    data = mv if n == len(mv) else mv[0:n]  # a whole chunk: no new memoryview
                    if dec is not None:
                        data = dec.update(data)
                    total += len(data)
                    if limit is not None and total > limit:
                        self._fail(_OPERATION_FAILED, (51, idx, limit), policy, off, idx)
                    if len(data):
                        h.update(data)
                        writer.write(data)
                if dec is not None:
                    dec.finish()
                writer.close()
                writer = None
            except OSError as e:
                self._fail(_OPERATION_FAILED, (47, idx, e), policy, off, idx)
            except SuitError as e:
                if e.record is None:
                    e.record = self._record(off, idx)
                raise
        finally:
            reader.close()
            if writer is not None:
                try:
                    writer.close()
                except OSError:
                    pass
        self._written[idx] = (h.digest(), total)
