# The agent's one configuration file, config.json on the board's filesystem (written by `hourglass config` or
# `make deploy`). load() never raises: a missing file gives the defaults, a bad member is reported and replaced
# by its default, so a typo never keeps the board from booting.
#
# It is also main.py's first call, boot(): the configuration, then the install at boot
# (suit.ota.Updater(install_at_boot=True)), before agent.py, asyncio and the CoAP endpoint are imported, so the
# SUIT processor (envelope, COSE, the signature's crypto, the bundle driver) runs on a nearly empty heap, never on
# one in pieces from serving. An update the agent downloaded waits in the store; the processor installs it and the
# board restarts (soft: the bundle's files are in place), then the agent's Updater.boot() reports the install and
# runs the health check that confirms or restores it. One module for both: on the nRF52840's 64 KiB filesystem
# each file over 512 bytes takes a 4 KiB block.
#
#   {"device": "hg-1",                       device id: the update server's name for us, our NAI's local part
#    "log": "info",                          debug | info | warn | error
#    "transport": "auto",                    auto | udp | serial (auto: udp where there is a socket module)
#    "port": 5683,                           our UDP port
#    "wifi": {"ssid": "", "password": ""},   ESP32: join this network first (retry with backoff)
#    "controller": ["192.0.2.1", 5683],      the CoAP-EAP controller (serial transport: through the gateway)
#    "suit": ["192.0.2.1", 5684],            the SUIT update server
#    "poll": 0,                              seconds between manifest polls (0: push only)
#    "anchor": "anchor.cbor",                the SUIT trust anchor (COSE_Key) file
#    "sensor": {"kind": "auto", "pin": 34, "period": 5},   auto | sim | adc | temp; ADC pin; seconds
#    "noob": {"dirs": 1, "retry": 10},       EAP-NOOB OOB directions (1 show, 2 enter, 3 both); announce retry
#    "health_deadline": 20,                  seconds the first boot after an update has to pass its health check
#    "reserve": 0,                           bytes held unused for the whole run (proves the heap to spare)
#    "vendor": HEX16, "class": HEX16}        the SUIT vendor and class IDs (UUIDs) this device accepts
import gc
import os
import sys

CONFIG_FILE = "config.json"


def _defaults():
    return {"device": "hg-1", "log": "info", "transport": "auto", "port": 5683,
            "wifi": {"ssid": "", "password": ""}, "controller": ["127.0.0.1", 5683], "suit": ["127.0.0.1", 5684],
            "poll": 0, "anchor": "anchor.cbor", "sensor": {"kind": "auto", "pin": 34, "period": 5},
            "noob": {"dirs": 1, "retry": 10}, "health_deadline": 20, "reserve": 0,
            "vendor": "fa6b4a53d5ad5fdfbe9de663e4d41ffe", "class": "1492af1425695e48bf429b2d51f2ab45"}


def _address(v):
    return v == "serial" or (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                             and isinstance(v[1], int) and 0 < v[1] < 65536)


_CHECKS = {
    "device": lambda v: isinstance(v, str) and 0 < len(v) <= 32,
    "log": lambda v: v in ("debug", "info", "warn", "error"),
    "transport": lambda v: v in ("auto", "udp", "serial"),
    "port": lambda v: isinstance(v, int) and 0 < v < 65536,
    "controller": _address,
    "suit": _address,
    "poll": lambda v: isinstance(v, int) and v >= 0,
    "anchor": lambda v: isinstance(v, str) and len(v) > 0,
    "health_deadline": lambda v: isinstance(v, int) and 0 < v <= 600,
    "reserve": lambda v: isinstance(v, int) and 0 <= v <= 65536,
    "vendor": lambda v: _hex16(v),
    "class": lambda v: _hex16(v),
}


def _hex16(v):
    try:
        return isinstance(v, str) and len(bytes.fromhex(v)) == 16
    except ValueError:
        return False
_SUB = {
    "wifi": {"ssid": lambda v: isinstance(v, str) and len(v) <= 32,
             "password": lambda v: isinstance(v, str) and len(v) <= 64},
    "sensor": {"kind": lambda v: v in ("auto", "sim", "adc", "temp") or (isinstance(v, str) and v[:7] == "module:"),
               "pin": lambda v: isinstance(v, int) and v >= 0,
               "period": lambda v: isinstance(v, (int, float)) and 0 < v <= 86400},
    "noob": {"dirs": lambda v: v in (1, 2, 3), "retry": lambda v: isinstance(v, int) and 0 < v <= 3600},
}


def load(path=CONFIG_FILE, warn=print):
    """(config, problems): the merged configuration and the list of problem texts already reported."""
    cfg = _defaults()
    problems = []
    try:
        import json
        with open(path) as f:
            user = json.load(f)
    except OSError:
        return cfg, problems
    except ValueError as e:
        problems.append("%s is not JSON (%s): defaults used" % (path, e))
        user = {}
    if not isinstance(user, dict):
        problems.append("%s is not a JSON object: defaults used" % path)
        user = {}
    for key, value in user.items():
        if key in _CHECKS:
            if _CHECKS[key](value):
                cfg[key] = value
            else:
                problems.append("config %s=%r is not valid: default %r used" % (key, _safe(key, value), cfg[key]))
        elif key in _SUB and isinstance(value, dict):
            for sub, v in value.items():
                check = _SUB[key].get(sub)
                if check is None:
                    problems.append("config %s.%s is unknown: ignored" % (key, sub))
                elif check(v):
                    cfg[key][sub] = v
                else:
                    problems.append("config %s.%s=%r is not valid: default used" % (key, sub, _safe(sub, v)))
        else:
            problems.append("config %s is unknown or not an object: ignored" % key)
    for p in problems:
        warn(p)
    return cfg, problems


def _safe(key, value):
    return "***" if key == "password" else value


# ---- the install at boot ----------------------------------------------------------------------------

STATE = ".hg"  # the agent's one store folder (FileStore): the update records, EAP-NOOB's, OSCORE's


def path(root, name):
    return root + "/" + name if root else name


def anchors(cfg, root):
    """The SUIT trust anchors: the one COSE_Key in cfg["anchor"]."""
    from cose.key import CoseKey
    with open(path(root, cfg["anchor"]), "rb") as f:
        return [CoseKey.decode(f.read())]


def driver(cfg, root):
    """The bundle driver over the bundle's files (a boot verdict's finish or restore needs no more)."""
    from suit.bundle import BundleDriver
    return BundleDriver(root or ".", {1: bytes.fromhex(cfg["vendor"]), 2: bytes.fromhex(cfg["class"])})


def processor(cfg, root, store, trust):
    """A processor for one run over the bundle's files, with these trust anchors (the caller drops it and its
    modules after)."""
    from suit.processor import Processor
    return Processor(driver(cfg, root), trust, store)


def spool(root):
    from suit.spool import FileSpool
    return FileSpool(root or ".")


def _restart(kind):
    import log
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
    import log
    try:
        from store import FileStore
        from suit.ota import install_pending
        store = FileStore(path(root, STATE))
        outcome = install_pending(store, lambda: processor(cfg, root, store, anchors(cfg, root)),
                                  lambda: spool(root), _restart)
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
    import log
    cfg, _ = load(warn=log.warn)
    log.set_level(cfg["log"])
    log.info("agent: device", cfg["device"], "on", sys.platform)
    root = cwd()
    at_boot(cfg, root)
    sys.modules.pop("agent_config", None)  # read once: its checks give their heap back (the agent imports it
    return cfg, root                       # again only to build a processor for a boot verdict)
