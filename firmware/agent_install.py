# The install at boot (suit.ota.Updater(install_at_boot=True)): main.py calls at_boot() first, before agent.py,
# asyncio and the CoAP endpoint are imported, so the SUIT processor (envelope, COSE, the signature's crypto, the
# bundle driver) runs on a nearly empty heap, never on one in pieces from serving. An update the agent downloaded
# waits in the store; the processor installs it and the board restarts (soft: the bundle's files are in place),
# then the agent's Updater.boot() reports the install and runs the health check that confirms or restores it.
# Also what builds a processor for the agent (the boot verdict, a commit's recovery): one place for both.
import gc
import os
import sys

import log

STATE = ".hg"  # the agent's one store folder (FileStore): the update records, EAP-NOOB's, OSCORE's


def path(root, name):
    return root + "/" + name if root else name


def anchors(cfg, root):
    """The SUIT trust anchors: the one COSE_Key in cfg["anchor"]."""
    from cose.key import CoseKey
    with open(path(root, cfg["anchor"]), "rb") as f:
        return [CoseKey.decode(f.read())]


def processor(cfg, root, store):
    """A processor for one run, over the bundle's files (the caller drops it and its modules after)."""
    from suit.bundle import BundleDriver
    from suit.processor import Processor
    ident = {1: bytes.fromhex(cfg["vendor"]), 2: bytes.fromhex(cfg["class"])}
    return Processor(BundleDriver(root or ".", ident), anchors(cfg, root), store)


def spool(root):
    from suit.spool import FileSpool
    return FileSpool(root or ".")


def _restart(kind):
    # the install boot's live heap: the processor's modules are still loaded (the demo reads this line)
    try:
        gc.collect()
        log.info("install: heap live", gc.mem_alloc(), "then a", kind, "reset")
    except AttributeError:  # CPython
        pass
    import machine
    if kind == "hard":
        machine.reset()
    else:
        machine.soft_reset()


def at_boot(cfg, root):
    """Install the update that waits for this boot, if one does (then the board restarts and this returns only
    where a restart returns, as in a test). Never raises: an install that cannot run (out of memory, the
    filesystem) is logged and the agent starts on its last good version; Updater.boot() finds the install
    unfinished and lets the processor's recovery undo what it began."""
    try:
        from store import FileStore
        from suit.ota import install_pending
        store = FileStore(path(root, STATE))
        outcome = install_pending(store, lambda: processor(cfg, root, store), spool(root), _restart)
        if outcome is not None:
            log.info("install:", outcome)
        return outcome
    except MemoryError:
        gc.collect()
        log.error("install: out of memory; the agent starts on its last good version")
    except Exception as e:
        log.error("install: failed:", type(e).__name__, e, "; the agent starts on its last good version")
    return "error"


def cwd():
    """The folder main.py runs in ("" for the filesystem's root): the bundle's root and the store's parent."""
    try:
        d = os.getcwd()
    except AttributeError:
        return ""
    return "" if d in ("", "/") else d.rstrip("/")


def boot():
    """main.py's first call: (configuration, root) after the install at boot, when one waited."""
    from agent_config import load
    cfg, _ = load(warn=log.warn)
    sys.modules.pop("agent_config", None)  # read once: its checks give their heap back
    log.set_level(cfg["log"])
    log.info("agent: device", cfg["device"], "on", sys.platform)
    root = cwd()
    at_boot(cfg, root)
    sys.modules.pop("agent_install", None)  # the agent imports it again only to build a processor
    return cfg, root
