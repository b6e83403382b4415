# The install and the first boot after an update (suit.ota.Updater). install(): the processor runs with a
# driver that reads the spool. install_pending(): the install at boot (Updater(install_at_boot=True)): the
# app's first lines call it, before the CoAP endpoint and the app are imported, so the processor has the heap
# to itself; then the board restarts into the new image. boot(): the app's health check decides within a
# deadline. OTA: confirmed -> mark_app_valid_cancel_rollback(); failed -> a hard reset without confirming, so
# the bootloader rolls the image back, and the old image, finding its own slot running, reports the rollback.
# Bundle: confirmed -> the old files go; failed -> the journal's moves are undone, then a soft reset.
# Imported only while an update waits for its install or verdict.
import cbor
from suit import const
from suit.ota import _LAST, _PENDING, _STATE, FETCH, _restart
from suit.ota_common import (_DL, _ENV, _SEQ_COMPONENT, FAILED, FETCHED, INSTALL, RESTART, RESTORE,
                             ms_since as _ms_since, ticks_ms as _ticks_ms)

# boots a verdict may take: a board that restarts in the middle of it (out of memory, a reset) decides again at
# the next boot; one that never gets through its health check this often counts as failed
_VERDICT_BOOTS = const(3)


class _Counting:
    # The staged writer of an in-place spool: the bytes are already where they belong; check the size only.
    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)

    def close(self):
        pass


class _SpoolDriver:
    """The platform driver as the processor sees it during an OTA run: fetch() reads the spool, and finish()
    waits for the health check when keep_old (the bundle's old files stay until confirmation)."""

    def __init__(self, inner, spool, uris, keep_old):
        self.inner = inner
        self.spool = spool
        self.uris = uris
        self.keep_old = keep_old

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def fetch(self, uri):
        for i, u in enumerate(self.uris):
            if u[0] == uri:
                return self.spool.reader(i, u[2])
        raise OSError("%s was not downloaded" % uri)

    def stage(self, cid, slot, size):
        w = self.inner.stage(cid, slot, size)
        if self.spool.in_place:
            return _Counting()  # the inner writer is never written: the image is in its slot already
        return w

    def finish(self):
        if not self.keep_old:
            self.inner.finish()


def install(store, make_processor, spool, data, pend):
    """Run the processor over the downloaded payloads (pend: the _PENDING record, its phase fetched);
    returns its Result. pend becomes restart (time in pend[7]) or the record goes."""
    pend[4] = INSTALL
    store.put(_PENDING, cbor.dumps(pend))
    t0 = _ticks_ms()
    p = make_processor()
    p.driver = _SpoolDriver(p.driver, spool, pend[6], pend[0] == "bundle")
    res = p.update(data)
    p = None
    store.delete(_DL)
    spool.clear()
    if not res.ok:
        store.delete(_PENDING)
        return res
    pend[4] = RESTART
    pend[6] = None
    pend[7][INSTALL] = _ms_since(t0)
    store.put(_PENDING, cbor.dumps(pend))
    return res


def install_pending(store, make_processor, spool, restart=None):
    """The install at boot: when a download waits for it, install, then restart (OTA: hard, into the new
    image; bundle: soft, into the new files). Returns None (nothing waited), "installed" or "failed"; the
    outcome is reported by Updater.boot() once the endpoint runs."""
    raw = store.get(_PENDING)
    if raw is None:
        return None
    pend = cbor.loads(raw)
    if pend.get(4) != FETCHED:
        return None
    data = store.get(_ENV)
    try:
        res = install(store, make_processor, spool, data, pend)
    finally:
        data = None
        store.delete(_ENV)
    if res.ok:
        pend[8] = res.report
        outcome = "installed"
    else:
        pend[4] = FAILED
        pend[5] = [res.reason, res.message]
        pend[8] = res.report
        outcome = "failed"
    store.put(_PENDING, cbor.dumps(pend))
    # restart either way: the processor leaves its interned names and a fragmented heap behind
    (restart or _restart)("hard" if res.ok and pend[0] == "ota" else "soft")
    return outcome


def _driver(up):
    # the platform driver: make_driver(), else a processor's
    return up.make_driver() if up.make_driver is not None else up.make_processor().driver


async def _report(up, seq, ok, reason, message, report, phase=None, timing=None):
    from suit.ota_report import report as post
    return await post(up, seq, ok, reason, message, report, phase, timing)


async def boot(up, health, deadline_ms):
    import asyncio
    raw = up.store.get(_PENDING)
    pend = cbor.loads(raw)
    kind, seq, digest = pend[0], pend[1], pend[2]
    phase = pend.get(4)
    if phase == FETCH:  # authenticated, the download runs after the restart (fetch_at_boot), in the background
        from suit.ota_run import resume
        up.task = asyncio.create_task(resume(up, pend))
        return None
    if phase == FETCHED:  # the app did not call install_pending first: install now (with less heap)
        up.release()
        return install_pending(up.store, up.make_processor, up.spool, up.restart)
    if phase == RESTORE:  # a restore cut short: it goes on, the health check does not run again
        return await _restore(up, pend, seq)
    if phase == FAILED:
        up.store.delete(_PENDING)
        reason, message = pend[5]
        await _report(up, seq, False, reason, message, pend.get(8), timing=pend.get(7))
        return "failed"
    if phase != RESTART:
        # the install was cut (a reset, or an error the app caught): the processor's recovery finishes a commit
        # that was made or drops what was staged; the server hears which, so its campaign does not stay open
        up.store.delete(_PENDING)
        if up.make_processor().recover() is None:
            await _report(up, seq, False, 11, "install interrupted before its commit; the previous version runs",
                            None, phase="failed", timing=pend.get(7))
            return "failed"
        await _report(up, seq, True, 0, "install interrupted after its commit; finished at boot, not health-checked",
                        None, phase=RESTART, timing=pend.get(7))
        return None
    if kind == "ota" and up.spool.running.info()[4] != pend[3]:
        up.store.delete(_PENDING)
        why = pend.get(5) or "the new image reset before it confirmed itself"
        await _report(up, seq, False, 11, "rolled back: " + why, None, phase="rolled back")
        return "rolled back"
    if pend.get(8) is not None:  # installed at boot: its report goes out now
        await _report(up, seq, True, 0, "installed; restarted", pend[8], RESTART, pend.get(7))
        pend[8] = None
    ok = False
    why = "health check failed"
    t0 = _ticks_ms()
    tries = pend.get(9, 0)
    pend[9] = tries + 1
    up.store.put(_PENDING, cbor.dumps(pend))
    if tries >= _VERDICT_BOOTS:
        why = "health check did not finish in %d boots" % tries
    else:
        try:
            ok = await asyncio.wait_for(health(), deadline_ms / 1000)
        except asyncio.TimeoutError:
            why = "health check missed its %d ms deadline" % deadline_ms
        except Exception as e:
            if isinstance(e, MemoryError):
                raise
            why = "health check raised %s: %s" % (type(e).__name__, e)
    timing = {"health": _ms_since(t0)}
    up.release()  # what the health check loaded (the new app, its imports): the processor comes next
    if ok:
        if kind == "ota":
            import esp32
            esp32.Partition.mark_app_valid_cancel_rollback()
        else:
            _driver(up).finish()  # the old files go only now
            up.release()  # the driver's modules: the report's answer needs the heap
        st = up.store.get(_STATE)
        st = cbor.loads(st) if st else {}
        st[_SEQ_COMPONENT] = [digest, seq]
        up.store.put(_STATE, cbor.dumps(st))
        up.store.delete(_PENDING)
        await _report(up, seq, True, 0, "confirmed", None, phase="confirmed", timing=timing)
        return "confirmed"
    if kind == "ota":
        # not confirmed: the bootloader rolls the image back at this reset; the old image reports it
        up.store.put(_LAST, cbor.dumps({1: seq, 2: False, 3: 11, 4: why}))
        pend[5] = why
        up.store.put(_PENDING, cbor.dumps(pend))
        await _report(up, seq, False, 11, why + "; rolling back", None, phase="rollback")
        up.restart("hard")
        return "rolled back"
    # the verdict is kept before the files move: a restore cut short (a reset, out of memory) goes on at the
    # next boot instead of a second health check on a half-restored bundle
    pend[4] = RESTORE
    pend[5] = why
    up.store.put(_PENDING, cbor.dumps(pend))
    return await _restore(up, pend, seq)


async def _restore(up, pend, seq):
    restore_bundle(_driver(up))
    up.release()  # the driver's modules: the report's answer needs the heap
    up.store.delete(_PENDING)
    await _report(up, seq, False, 11, pend[5] + "; previous bundle restored", None, phase="restored")
    up.restart("soft")
    return "restored"


def restore_bundle(driver):
    """Undo a committed, unconfirmed bundle update: every file the journal moved in goes back to the one it
    replaced (kept in .suit/old/), files that were new are removed, then the journal goes. Cut anywhere (a
    reset, out of memory), it can run again: the files that were new are listed first (.suit/undo, written
    once, while every replaced file still has its old one), so a file already put back is never taken for one."""
    fs = driver.fs
    meta = driver.root + "/.suit"
    try:
        with open(meta + "/journal", "rb") as f:
            lines = f.read().decode().split("\n")
    except OSError:
        return False
    entries = []
    for line in lines[1:]:
        if line == "end" or not line:
            break
        entries.append(line.split(" ", 1))
    undo = meta + "/undo"
    if not fs.exists(undo):
        with open(undo + ".new", "w") as f:
            for name, rel in entries:
                if not fs.exists(meta + "/old/" + name):
                    f.write(rel + "\n")
        fs.sync()
        fs.rename(undo + ".new", undo)
    with open(undo) as f:
        new = f.read().split("\n")
    for name, rel in entries:
        target = driver.root + "/" + rel
        old = meta + "/old/" + name
        if fs.exists(old):
            if fs.isdir(target):  # a directory component: a rename cannot replace a non-empty directory
                _remove(fs, target)
            fs.rename(old, target)
        elif rel in new and fs.exists(target):
            _remove(fs, target)
    fs.sync()
    fs.remove(meta + "/journal")
    fs.remove(undo)
    for d in ("/old", "/stage"):
        for name in fs.listdir(meta + d):
            _remove(fs, meta + d + "/" + name)
    return True


def _remove(fs, path):
    if fs.isdir(path):
        from suit.bundle_dir import rmtree
        rmtree(fs, path)
    else:
        fs.remove(path)
