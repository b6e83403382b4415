# The device app of the SUIT-over-the-air virtual-board tests (copied to the board as main.py; device code, runs
# on the MicroPython VM). ota.json: {"kind": "ota" | "bundle", "device": ID, "server": [host, port] or
# "serial", "port": UDP port, "szx": N, "deadline": ms}; anchor.cbor: the trust anchor (COSE_Key).
# It prints "OTA <event>" lines the test follows on the console, and serves GET /heap (CBOR
# [mem_peak, mem_alloc, heap size]) so the test can read the peak heap of an update.
import asyncio
import gc
import json

import micropython

with open("ota.json") as f:
    cfg = json.load(f)
gc.collect()


def _transport():
    if cfg["server"] == "serial":
        from coap.serial import SerialTransport, REMOTE
        return SerialTransport(), REMOTE
    from coap.udp import UDPTransport
    return UDPTransport(("127.0.0.1", cfg["port"])), tuple(cfg["server"])


async def main():
    from coap.endpoint import Endpoint
    from store import FileStore
    from suit.ota import Updater
    t, server = _transport()
    ep = Endpoint(t, szx=cfg.get("szx")).start()
    root = cfg.get("root", "")
    import os
    try:
        os.mkdir(root + "/state" if root else "state")
    except OSError:
        pass  # there already
    store = FileStore(root + "/state" if root else "state")
    if cfg["kind"] == "ota":
        from suit.spool import PartitionSpool
        spool = PartitionSpool()
    else:
        from suit.spool import FileSpool
        spool = FileSpool(root or ".")

    def anchors():
        from cose.key import CoseKey
        with open("anchor.cbor", "rb") as f:
            return [CoseKey.decode(f.read())]

    def make_processor():
        # everything imported here is released after the update (Updater.release)
        from suit.processor import Processor
        ident = {1: bytes.fromhex(cfg["vendor"]), 2: bytes.fromhex(cfg["class"])}
        if cfg["kind"] == "ota":
            from suit.esp32ota import OtaDriver
            driver = OtaDriver(ident)
        else:
            from suit.bundle import BundleDriver
            driver = BundleDriver(root or ".", ident)
        return Processor(driver, anchors(), store)

    up = Updater(ep, make_processor, store, cfg["device"].encode(), server, spool, kind=cfg["kind"], szx=cfg.get("szx"),
                 on_phase=lambda p: print("OTA phase", p, "heap", gc.mem_alloc(), gc.mem_free()), anchors=anchors)
    up.serve()

    def heap(req):
        import cbor
        gc.collect()
        return cbor.dumps([micropython.mem_peak(), gc.mem_alloc(), gc.mem_alloc() + gc.mem_free()])

    ep.route("/heap", get=heap)

    async def health():
        if cfg["kind"] == "ota":
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

    if cfg["kind"] == "ota":
        import esp32
        print("OTA running", esp32.Partition(esp32.Partition.RUNNING).info()[4])
    outcome = await up.boot(health, cfg.get("deadline", 20000))
    print("OTA boot", outcome)
    print("OTA ready")
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
