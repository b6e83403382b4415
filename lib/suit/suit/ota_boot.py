# The first boot after an update (suit.ota.Updater.boot): the app's health check decides within a deadline.
# OTA: confirmed -> mark_app_valid_cancel_rollback(); failed -> a hard reset without confirming, so the
# bootloader rolls the image back, and the old image, finding its own slot running, reports the rollback.
# Bundle: confirmed -> the old files go; failed -> the journal's moves are undone, then a soft reset.
# Imported only while an update waits for its verdict.
import asyncio

import cbor
from suit.ota import _LAST, _PENDING, _SEQ_COMPONENT, _STATE, RESTART


async def boot(up, health, deadline_ms):
    raw = up.store.get(_PENDING)
    pend = cbor.loads(raw)
    kind, seq, digest = pend[0], pend[1], pend[2]
    if pend.get(4) != RESTART:
        # cut before the commit finished: the processor's recovery decides, nothing to confirm
        up.store.delete(_PENDING)
        up.processor().recover()
        return None
    if kind == "ota" and up.spool.running.info()[4] != pend[3]:
        up.store.delete(_PENDING)
        why = pend.get(5) or "the new image reset before it confirmed itself"
        await up.report(seq, False, 11, "rolled back: " + why, None, phase="rolled back")
        return "rolled back"
    ok = False
    why = "health check failed"
    try:
        ok = await asyncio.wait_for(health(), deadline_ms / 1000)
    except asyncio.TimeoutError:
        why = "health check missed its %d ms deadline" % deadline_ms
    except Exception as e:
        if isinstance(e, MemoryError):
            raise
        why = "health check raised %s: %s" % (type(e).__name__, e)
    if ok:
        if kind == "ota":
            import esp32
            esp32.Partition.mark_app_valid_cancel_rollback()
        else:
            up.processor().driver.finish()  # the old files go only now
        st = up.store.get(_STATE)
        st = cbor.loads(st) if st else {}
        st[_SEQ_COMPONENT] = [digest, seq]
        up.store.put(_STATE, cbor.dumps(st))
        up.store.delete(_PENDING)
        await up.report(seq, True, 0, "confirmed", None, phase="confirmed")
        return "confirmed"
    if kind == "ota":
        # not confirmed: the bootloader rolls the image back at this reset; the old image reports it
        up.store.put(_LAST, cbor.dumps({1: seq, 2: False, 3: 11, 4: why}))
        pend[5] = why
        up.store.put(_PENDING, cbor.dumps(pend))
        await up.report(seq, False, 11, why + "; rolling back", None, phase="rollback")
        up.restart("hard")
        return "rolled back"
    restore_bundle(up.processor().driver)
    up.store.delete(_PENDING)
    await up.report(seq, False, 11, why + "; previous bundle restored", None, phase="restored")
    up.restart("soft")
    return "restored"


def restore_bundle(driver):
    """Undo a committed, unconfirmed bundle update: every file the journal moved in goes back to the one it
    replaced (kept in .suit/old/), files that were new are removed, then the journal goes."""
    fs = driver.fs
    meta = driver.root + "/.suit"
    try:
        with open(meta + "/journal", "rb") as f:
            lines = f.read().decode().split("\n")
    except OSError:
        return False
    for line in lines[1:]:
        if line == "end" or not line:
            break
        name, rel = line.split(" ", 1)
        target = driver.root + "/" + rel
        old = meta + "/old/" + name
        if fs.exists(old):
            fs.rename(old, target)
        elif fs.exists(target):
            fs.remove(target)
    fs.sync()
    fs.remove(meta + "/journal")
    for d in ("/old", "/stage"):
        for name in fs.listdir(meta + d):
            fs.remove(meta + d + "/" + name)
    return True
