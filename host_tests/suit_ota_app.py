# The device app of the SUIT-over-the-air virtual-board tests (copied to the board as main.py; device code, runs
# on the MicroPython VM). ota.json: {"kind": "ota" | "bundle", "device": ID, "server": [host, port] or
# "serial", "port": UDP port, "szx": N, "deadline": ms, "root": mount point, "hold_install": true to leave a
# downloaded update uninstalled}; anchor.cbor: the trust anchor
# (COSE_Key). The install runs at boot (Updater(install_at_boot=True)): first thing, before the endpoint and
# asyncio are imported; the download, after the trigger's check, in a boot of its own (fetch_at_boot=True); and
# after each boot verdict the board starts again on a clean heap. It prints "OTA <event>" lines the test follows
# on the console, and serves GET /heap (CBOR [mem_peak, mem_alloc, heap size, {phase: [mem_alloc, mem_free]}]) so
# the test can read the heap of an update.
import gc
import json

with open("ota.json") as f:
    cfg = json.load(f)
ROOT = cfg.get("root", "")
OTA = cfg["kind"] == "ota"
heap = {}  # phase -> [mem_alloc, mem_free], after a collection


def note(phase):
    gc.collect()
    heap[phase] = [gc.mem_alloc(), gc.mem_free()]
    print("OTA phase", phase, "heap", heap[phase][0], heap[phase][1])


def anchors():
    from cose.key import CoseKey
    with open("anchor.cbor", "rb") as f:
        return [CoseKey.decode(f.read())]


def make_driver():
    # the platform driver alone: the boot verdict's finish or restore needs no processor
    ident = {1: bytes.fromhex(cfg["vendor"]), 2: bytes.fromhex(cfg["class"])}
    if OTA:
        from suit.esp32ota import OtaDriver
        return OtaDriver(ident)
    from suit.bundle import BundleDriver
    return BundleDriver(ROOT or ".", ident)


def make_processor():
    # everything imported here is released after the update (Updater.release)
    from suit.processor import Processor
    return Processor(make_driver(), anchors(), store, chunk_size=1024)


def _store():
    import os
    from store import FileStore
    d = ROOT + "/state" if ROOT else "state"
    try:
        os.mkdir(d)
    except OSError:
        pass  # there already
    return FileStore(d)


store = _store()


class LazySpool:
    """The spool, made for each use (it keeps no state of its own): its module (suit.esp32spool or suit.spool)
    is loaded only while an update or a /suit/state request uses it, and Updater.release() drops it after."""
    in_place = OTA

    def __getattr__(self, name):
        if OTA:
            import esp32
            if name == "running":  # (/suit/state's slots: the partition alone, not the spool's module)
                return esp32.Partition(esp32.Partition.RUNNING)
            from suit.esp32spool import PartitionSpool
            return getattr(PartitionSpool(), name)
        from suit.spool import FileSpool
        return getattr(FileSpool(ROOT or "."), name)


spool = LazySpool()
from suit.ota import install_pending  # noqa: E402 (the install at boot comes before the rest is imported)
note("boot")
if cfg.get("hold_install"):  # the bench's per-phase heap: it restarts the board at another heap to install
    print("OTA holding")
elif install_pending(store, make_processor, spool) is not None:
    note("installed")  # (the board restarted; a test's restart hook returns)


def _transport():
    if cfg["server"] == "serial":
        from coap.serial import SerialTransport, REMOTE
        return SerialTransport(), REMOTE
    from coap.udp import UDPTransport
    return UDPTransport(("127.0.0.1", cfg["port"])), tuple(cfg["server"])


async def main():
    from coap.endpoint import Endpoint
    from suit.ota import FETCH, Updater, pending_phase
    t, server = _transport()
    ep = Endpoint(t, szx=cfg.get("szx")).start()
    up = Updater(ep, make_processor, store, cfg["device"].encode(), server, spool, kind=cfg["kind"],
                 szx=cfg.get("szx"), on_phase=note, anchors=anchors, install_at_boot=True, make_driver=make_driver,
                 fetch_at_boot=True)
    up.serve()

    def heap_info(req):
        import cbor
        import micropython
        gc.collect()
        return cbor.dumps([micropython.mem_peak(), gc.mem_alloc(), gc.mem_alloc() + gc.mem_free(), heap])

    ep.route("/heap", get=heap_info)

    async def health():
        if OTA:
            import esp32
            head = bytearray(16)
            esp32.Partition(esp32.Partition.RUNNING).readblocks(0, head, 0)
            if head[1:9] == b"BADCHECK":  # the test's image whose health check fails
                return False
            if head[1:9] == b"HANGBOOT":  # the test's image that never answers: the deadline decides
                await asyncio.sleep(3600)
        else:
            import app  # a new app.py that raises at import fails the check
            if not app.healthy():
                return False
        return await ep.ping(server)  # the update server answers (RST to a CoAP ping)

    if OTA:
        import esp32
        print("OTA running", esp32.Partition(esp32.Partition.RUNNING).info()[4])
    note("ready")
    try:
        if cfg.get("hold_install") and pending_phase(store) != FETCH:  # (a download still runs)
            outcome = "held"
        else:
            outcome = await up.boot(health, cfg.get("deadline", 20000))
    except MemoryError:  # the verdict's record is kept: the next boot decides again, on a clean heap
        print("OTA boot out of memory: restarting")
        import machine
        machine.soft_reset()
    print("OTA boot", outcome)
    if outcome not in (None, "held"):
        # the verdict's code, its report and the client role it loaded left holes all over the heap: the board
        # starts again on a clean one, so that the next trigger's check has the heap the first one had
        import machine
        machine.soft_reset()
    print("OTA ready")
    while True:
        await asyncio.sleep(3600)


import asyncio  # noqa: E402

asyncio.run(main())
