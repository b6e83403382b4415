# SUIT over the air on the device: the update client on the board's one CoAP endpoint.
#
#   up = Updater(ep, make_processor, store, b"dev-1", ("192.0.2.1", 5683), FileSpool("/flash"))
#   up.serve()                      # /suit/trigger (push) and /suit/state on the endpoint
#   await up.boot(health)           # first boot after an update: health check, confirm or roll back
#   asyncio.create_task(up.poll_forever("/suit/m/app", 3600_000))   # or poll
#
# An update runs in the background: the envelope is authenticated (the trigger answers 2.04 only then), every
# payload URI its payload-fetch/install sequences name is downloaded block by block (Block2, RFC 7959) into a
# spool - a file, or straight into the next ESP32 OTA partition - resuming from the last good block when the
# ETag is the same, then the processor runs with a driver that reads the spool, so the digest is computed over
# the bytes as they are stored. After the commit the board restarts into the new image (OTA: set_boot, hard
# reset; bundle: soft reset) and boot() decides with the app's health check: confirm
# (mark_app_valid_cancel_rollback, or drop the bundle's old files) or undo (the bootloader rolls the image back;
# the bundle's old files are put back). Each outcome is reported to the server (POST /suit/report, CBOR).
# Through OSCORE when the endpoint has a client context (ep.transform = oscore.transform.Oscore(client=ctx)):
# every request of an update (manifest, blocks, reports) goes through the endpoint's transform.
#
# Heap: the steady state holds this module and the endpoint only; the trigger's handler and authentication are
# suit.ota_check, the update run suit.ota_run, the install and the boot verdict suit.ota_boot (what only those
# share: suit.ota_common), each imported when needed and released after (release()). With
# install_at_boot=True the install itself waits for a restart: the download ends with a soft reset, and the
# app's first lines (suit.ota_boot.install_pending, before the endpoint and the app are imported) run the
# processor on a nearly empty heap, so the processor and the CoAP stack are never on the heap together. With
# fetch_at_boot=True too, the download also starts after a restart: the trigger answers once the envelope is
# authenticated, the board soft-resets, and Updater.boot() runs the download in the background on a clean heap
# (the check's modules leave their interned names and holes behind); a reset during it resumes it at boot.
import os

import cbor
from suit import const

_CONTENT = const(69)

# stored records (lib/store names; the update's own are in suit.ota_common)
_PENDING = "suit-pend"   # an update not yet confirmed: {0: kind, 1: seq, 2: digest, 3: slot label, 4: phase,
#                          5: why it failed, 6: [[uri, size, stored]], 7: {phase: ms}, 8: the install's report,
#                          9: boots its verdict took, 10: boots its download ran out of memory in}
_STATE = "suit-state"    # {component name: [digest, seq]}: what runs, confirmed
_LAST = "suit-last"      # the last outcome: {1: seq, 2: ok, 3: reason, 4: message}
# (and "suit-out", suit.ota_report's outbox: the reports the server has not taken yet)

# phases (/suit/state key 6; _PENDING key 4; the others are in suit.ota_common)
IDLE = "idle"
FETCH = "fetch"


def _release(*names):
    import sys
    for name in names:
        sys.modules.pop(name, None)
        dot = name.rfind(".")
        parent = sys.modules.get(name[:dot]) if dot > 0 else None
        if parent is not None and name[dot + 1:] in parent.__dict__:
            delattr(parent, name[dot + 1:])


async def _sleep_ms(ms):
    import asyncio
    await asyncio.sleep(ms / 1000)


def _restart(kind):
    import machine
    if kind == "hard":
        machine.reset()
    else:
        machine.soft_reset()


def pending_phase(store):
    """The phase of the update that waits at this boot (FETCH: its download, FETCHED: its install, RESTART:
    its verdict, ...), or None."""
    raw = store.get(_PENDING)
    return cbor.loads(raw).get(4) if raw else None


def install_pending(store, make_processor, spool, restart=None):
    """The install at boot (Updater(install_at_boot=True)): the app's first lines call it, before they import
    the endpoint. When a download waits for its install, the processor runs and the board restarts (OTA:
    hard, into the new image; bundle: soft); Updater.boot() reports the outcome. Returns None when nothing
    waited (everything it imported is dropped again), else "installed" or "failed". spool may be a function
    that makes the spool: it is called only when an install waits (the spool's module stays out of a boot that
    installs nothing)."""
    if store.get(_PENDING) is None:
        return None
    if callable(spool):
        spool = spool()
    import sys
    before = set(sys.modules)
    from suit.ota_boot import install_pending as run
    try:
        return run(store, make_processor, spool, restart)
    finally:
        run = None
        if sys.implementation.name == "micropython":
            _release(*[n for n in list(sys.modules) if n not in before])
        import gc
        gc.collect()


class Updater:
    """ep: the board's coap Endpoint; make_processor(): a suit.processor.Processor whose driver is the
    platform's (suit.bundle.BundleDriver or suit.esp32ota.OtaDriver), made when an update runs;
    store: the lib/store FileStore the processor keeps its sequence number in; device_id: bytes;
    server: the update server's remote (host, port), or coap.serial.REMOTE through the gateway;
    spool: suit.spool.FileSpool or suit.esp32ota.PartitionSpool; kind: "bundle" (soft reset) or "ota"
    (set_boot, hard reset); anchors(): the trust anchors, to authenticate a trigger without making a
    processor (optional); szx: Block2 size exponent (16 << szx bytes per block; default the endpoint's);
    retries: attempts per block; restart(kind): how the board restarts ("soft" or "hard"; default
    machine.soft_reset/reset); install_at_boot: run the install after a soft reset (see above); fetch_at_boot
    (with install_at_boot): run the download after a soft reset too; make_driver():
    the platform driver alone, for the boot verdict's finish or restore (optional; far less heap than a whole
    processor)."""

    def __init__(self, ep, make_processor, store, device_id, server, spool, kind="bundle", szx=None, retries=8,
                 backoff_ms=500, restart=None, max_envelope=8192, on_phase=None, seq_name="suit-seq", anchors=None,
                 install_at_boot=False, make_driver=None, fetch_at_boot=False):
        self.ep = ep
        self.anchors = anchors
        self.make_processor = make_processor
        self.seq_name = seq_name
        self.store = store
        self.device_id = device_id
        self.server = server
        self.spool = spool
        self.kind = kind
        self.szx = ep.szx if szx is None else szx
        self.retries = retries
        self.backoff_ms = backoff_ms
        self.restart = restart or _restart
        self.max_envelope = max_envelope
        self.on_phase = on_phase
        self.install_at_boot = install_at_boot
        self.fetch_at_boot = fetch_at_boot and install_at_boot
        self.make_driver = make_driver
        self.phase = IDLE
        self.done = 0
        self.total = 0
        self.task = None
        self.etag = None  # the polled manifest's
        self._resident = ()

    # ---------------------------------------------------------------- resources

    def release(self):
        """Drop every module imported since serve() (an update's processor, COSE, crypto, drivers)."""
        import sys
        import gc
        if sys.implementation.name == "micropython":  # (CPython has the memory, and its imports may be shared)
            _release(*[n for n in list(sys.modules) if n not in self._resident])
        gc.collect()

    def serve(self):
        import sys
        self.ep.route("/suit/trigger", post=self._trigger, max_body=self.max_envelope)
        self.ep.route("/suit/state", get=self._state)
        # after the routes: the endpoint's server role (coap.serve) stays, or the next route would load a second
        # copy of it beside the one the endpoint holds
        self._resident = set(sys.modules)
        return self

    def set_phase(self, phase):
        self.phase = phase
        if self.on_phase is not None:
            self.on_phase(phase)

    def _trigger(self, req):
        # the handler's code (suit.ota_check.trigger) is loaded per trigger, not held while the board serves
        from coap.msg import Message
        if self.task is not None:
            return Message(code=163, payload=b"busy: an update is running")  # 5.03
        try:
            from suit.ota_check import trigger
            return trigger(self, req)
        except MemoryError:
            if self.task is None:
                self.release()
            return Message(code=160, payload=b"out of memory")  # 5.00

    def _state(self, req):
        from coap.msg import Message
        return Message(code=_CONTENT, payload=cbor.dumps(self.state())).add(12, 60)  # application/cbor

    def state(self):
        """The /suit/state map: 1 components {name: [digest, seq]}, 2 active slot, 3 inactive slot,
        4 last outcome, 5 [bytes done, total] during an update, 6 phase, 7 stored sequence number."""
        st = self.store.get(_STATE)
        last = self.store.get(_LAST)
        s = {1: cbor.loads(st) if st else {}, 4: cbor.loads(last) if last else None, 6: self.phase,
             7: self.stored_sequence_number()}
        if self.kind == "ota":
            run = self.spool.running
            s[2] = run.info()[4]
            s[3] = run.get_next_update().info()[4]
        if self.phase != IDLE:
            s[5] = [self.done, self.total]
        return s

    # ---------------------------------------------------------------- the update (suit.ota_run)

    def stored_sequence_number(self):
        """The processor's anti-rollback record (8 bytes, big-endian, under seq_name), read without it."""
        b = self.store.get(self.seq_name)
        return int.from_bytes(b, "big") if b else None

    def start_uri(self, uri):
        """Update in the background from the envelope at a manifest URI (False: an update is running)."""
        if self.task is not None:
            return False
        import asyncio
        from suit.ota_run import run_uri
        self.task = asyncio.create_task(run_uri(self, uri))
        return True

    # ---------------------------------------------------------------- poll

    async def poll_once(self, path):
        """GET the manifest (If-None-Match the last ETag); update when its sequence number is newer.
        Returns "same", "old", "updating", "busy" or an error text."""
        if self.task is not None:
            return "busy"
        from suit.ota_run import poll_once
        try:
            return await poll_once(self, path)
        finally:
            if self.task is None:
                self.release()

    async def poll_forever(self, path, interval_ms, jitter_ms=None):
        """Poll every interval_ms plus a random 0..jitter_ms (default interval/10), so a fleet spreads out."""
        if jitter_ms is None:
            jitter_ms = interval_ms // 10
        while True:
            try:
                await self.poll_once(path)
            except Exception as e:
                if isinstance(e, MemoryError):
                    import gc
                    gc.collect()
            j = int.from_bytes(os.urandom(2), "big") * jitter_ms // 65536 if jitter_ms else 0
            await _sleep_ms(interval_ms + j)

    # ---------------------------------------------------------------- boot: install, confirm or undo

    async def boot(self, health, deadline_ms=30000):
        """At every boot, before anything else touches the update state. health: an async callable -> bool
        (the app's services started and the update server answers). Returns None (nothing pending),
        "installed" (it restarts), "confirmed", "failed", "rolled back" or "restored" (the last three were
        reported as failures); None also when a download resumes in the background (fetch_at_boot, or a reset
        during one). The code lives in suit.ota_boot, imported only when an update waits. Reports an earlier
        boot could not deliver go again in the background (suit.ota_report.resend)."""
        if self.store.get("suit-out") is not None:  # (no global name for it: the serving heap is tight)
            from suit.ota_report import resend
            resend(self)
        if self.store.get(_PENDING) is None:
            # a power cut in a commit: the processor finishes or undoes it (an in-place spool's commit is the
            # OTA set_boot(), which nothing interrupts: its module is not even loaded)
            if not self.spool.in_place and self.spool.interrupted():
                self.make_processor().recover()
                self.release()
            return None
        from suit.ota_boot import boot
        try:
            return await boot(self, health, deadline_ms)
        finally:
            if self.task is None:  # (a download resumed at boot keeps its modules until it ends)
                self.release()
