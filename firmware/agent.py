# The device agent: everything the board runs, as asyncio tasks on one CoAP endpoint.
#
#   bootstrap  EAP-NOOB over CoAP-EAP (coapeap.device): announce to the controller, show the OOB message (text +
#              QR on the console, GET/PUT /noob/oob), derive the OSCORE context from the MSK, re-key before the
#              session ends
#   resources  /sensor/temp (observable), /health, /suit/state; once registered every one of them answers
#              only through OSCORE (4.01 otherwise); /.well-known/core stays open
#   update     suit.ota: /suit/trigger (push: the envelope authenticates itself), polling when configured;
#              the first boot after an update runs the health check and confirms or undoes it
#   health     the watchdog (hardware), Wi-Fi (ESP32, reconnect with backoff), the endpoint kept running
#
# Every task runs under supervise(): an exception (OSError for no network or a full filesystem, MemoryError)
# is logged and the task starts again after a backoff that doubles up to a minute, so the device keeps
# answering with what it has. The configuration is agent_config.py's; the set-up at each boot agent_start.py's.
import asyncio
import gc
import sys

import log

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython
    from time import monotonic

    def ticks_ms():
        return int(monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

REQUIRE = ("/sensor/", "/health", "/suit/state", "/noob/")
BACKOFF_MS = 1000
BACKOFF_CAP_MS = 60000
peak = 0  # the highest live heap sampled (after gc.collect: each sensor period, health query, before a reset)


def heap_used():
    global peak
    gc.collect()
    try:
        used = gc.mem_alloc()
    except AttributeError:  # CPython
        return 0
    if used > peak:
        peak = used
    return used


async def sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


async def supervise(name, start, backoff_ms=BACKOFF_MS):
    """Run start() (a coroutine function) for ever: after an exception or a return, log it, wait, run it again.
    The wait doubles after each quick failure, up to BACKOFF_CAP_MS; a run that lasted a minute resets it."""
    delay = backoff_ms
    while True:
        t0 = ticks_ms()
        try:
            await start()
            log.warn(name, "ended")
        except asyncio.CancelledError:
            raise
        except MemoryError:
            gc.collect()
            log.error(name, "out of memory; again in", delay, "ms")
        except Exception as e:
            log.error(name, "failed:", type(e).__name__, e, "; again in", delay, "ms")
        if ticks_diff(ticks_ms(), t0) > BACKOFF_CAP_MS:
            delay = backoff_ms
        await sleep_ms(delay)
        delay = min(delay * 2, BACKOFF_CAP_MS)


class Counted:
    """The transport with a count of the bytes it carried ([sent, received], /health "wire")."""

    def __init__(self, t):
        self.t = t
        self.wire = [0, 0]

    def __getattr__(self, name):
        return getattr(self.t, name)

    def send(self, data, remote):
        self.wire[0] += len(data)
        return self.t.send(data, remote)

    async def recv(self):
        data, remote = await self.t.recv()
        self.wire[1] += len(data)
        return data, remote

    def recv_now(self, ms=0):  # the endpoint reads UDP through this (coap.udp's: waits up to ms, it lingers)
        x = self.t.recv_now(ms)
        if x is not None:
            self.wire[1] += len(x[0])
        return x


class LazyPeer:
    """The EAP-NOOB peer (eapnoob.peer.Peer), imported when an EAP conversation starts and dropped after its
    EAP-Success: a registered device holds none of EAP-NOOB's code (nor its curves) until a re-key. The Peer's
    record is in the store, so a fresh one picks up where the last one ended."""

    def __init__(self, store, device, dirs):
        self.store = store
        self.device = device
        self.dirs = dirs
        self.real = None

    def _peer(self):
        if self.real is None:
            from eapnoob.peer import Peer
            info = ('{"Type":"hourglass-agent","Serial":"%s"}' % self.device).encode()
            self.real = Peer(self.store, info, dirs=self.dirs)
        return self.real

    @property
    def keys(self):
        return self.real.keys if self.real is not None else None

    def receive(self, pkt, now=0):
        return self._peer().receive(pkt, now)

    def __getattr__(self, name):  # state, sleep_time, oob_message, accept_oob, unload
        return getattr(self._peer(), name)

    def drop(self):
        if self.real is None:
            return
        self.real = None
        drop_modules(("eapnoob", "crypto.x25519", "crypto.p256", "crypto._ec", "crypto._concat_kdf"))


class LazySpool:
    """suit.spool.FileSpool, made for each use (it keeps no state but its folder): the module is loaded only
    while an update runs, and Updater.release() drops it after."""
    in_place = False

    def __init__(self, root):
        self.root = root

    def __getattr__(self, name):
        from suit.spool import FileSpool
        return getattr(FileSpool(self.root), name)


def drop_modules(prefixes):
    """Forget the modules named by these prefixes (and their attributes on their packages): their heap goes
    back once nothing else holds their objects; an import later loads them again."""
    for name in list(sys.modules):
        for p in prefixes:
            if name == p or name.startswith(p + "."):
                del sys.modules[name]
                pkg, _, attr = name.rpartition(".")
                parent = sys.modules.get(pkg) if pkg else None
                if parent is not None and attr in parent.__dict__:
                    delattr(parent, attr)
                break
    gc.collect()


def sensor(kind="auto", pin=34):
    """The sensor the agent serves, as a read() -> number: the internal temperature (esp32.mcu_temperature, the
    nRF's machine.Temp), an ADC pin (machine.ADC, raw 16-bit), a driver module of your own ("module:NAME":
    NAME.read()), or on the virtual board a simulated temperature (a slow deterministic walk, so notifications
    change). A function, not a class: a class costs ~300 B of heap for the whole run, even frozen."""
    if kind == "auto":
        kind = "sim" if sys.platform == "linux" else "temp"
    if kind == "sim":
        step = 0

        def read():
            nonlocal step
            step = (step + 7) % 40
            return 21.0 + (step if step < 20 else 40 - step) / 10
        return read
    if kind[:7] == "module:":
        driver = __import__(kind[7:])
        return lambda: driver.read()
    import machine
    if kind == "adc":
        return machine.ADC(machine.Pin(pin)).read_u16
    try:
        import esp32
        return esp32.mcu_temperature
    except (ImportError, AttributeError):
        return machine.Temp().read  # nrf port


class Agent:
    def __init__(self, cfg, root):
        self.cfg = cfg
        self.root = root
        self.ep = None
        self.dev = None
        self.up = None
        self.sensor = None
        self.value = None
        self.res = None
        self.booted = None  # the update verdict of this boot
        self.initial = False  # True while the bootstrap's Initial Exchange runs in this boot (_on_state)
        self.wdt = None

    def start(self):
        """The transport, the endpoint, the resources, the bootstrap and the update client (agent_start: code
        that runs once per boot, dropped after it)."""
        from agent_start import start
        try:
            start(self)
        finally:
            drop_modules(("agent_start",))
        return self

    def _get_sensor(self, req):
        import app
        if self.value is None:
            return 163, b"no reading yet"  # 5.03
        return _cbor_array(app.describe(self.value))

    def _get_health(self, req):
        import cbor
        return cbor.dumps(self.health())

    def health(self):
        """The /health map: version, heap (used, sampled peak, size), filesystem free, registered, update phase."""
        used = heap_used()
        try:
            size = used + gc.mem_free()
        except AttributeError:
            size = 0
        h = {"app": _app_version(), "heap": [used, peak, size], "registered": bool(self.dev and self.dev.registered),
             "update": self.up.phase if self.up else None, "boot": self.booted,
             "wire": self.wire.wire}
        try:
            import os
            st = os.statvfs(self.root or "/")
            h["fs_free"] = st[0] * st[3]
        except (AttributeError, OSError):
            pass
        return h

    def _on_state(self, dev):
        peer = self.peer.real
        log.info("bootstrap: peer state", peer.state if peer else "(not loaded)",
                 "registered" if dev.registered else "not registered", "heap", heap_used())
        if dev.registered and dev.pending is None and dev.step is None:
            ran = self.console is not None or self.peer.real is not None
            if self.console is not None:  # registered: the OOB step and its code go
                self.ep.resources.pop("/noob/oob", None)
                self.console = None
            self.peer.drop()
            log.debug("modules:", " ".join(sorted(sys.modules)), "heap", heap_used())
            if ran:
                asyncio.create_task(self._registered())
            return
        if self.console is None:
            return
        if peer is not None and peer.state == 0 and self.initial is False:
            self.initial = True
        if self.initial is not False:  # True: the Initial Exchange runs; None: the restart is on its way
            # The Initial Exchange runs in this boot: once it has ended (Waiting for OOB) the agent starts again
            # on a clean heap, and that boot shows the OOB message (the QR code's encoder is not loaded on top of
            # the exchange) and runs the Completion Exchange, the bootstrap's peak, without what the Initial
            # Exchange left (its objects, fragments): 169 -> 161 KB live at the Completion on the VM. The peer
            # resumes from its record; the OOB message is the same.
            if self.initial and peer.state == 1 and dev.step is None:
                self.initial = None
                asyncio.create_task(self._registered("bootstrap: Waiting for OOB; restarting before the Completion"))
            return
        try:
            from time import time
            self.console.show(int(time()))
        except (AttributeError, MemoryError) as e:
            log.warn("oob display:", type(e).__name__)
        drop_modules(("eapnoob.qr",))  # the QR code is shown: its encoder goes (a new Noob loads it again)

    async def _registered(self, line="bootstrap: registered; restarting on a clean heap"):
        # EAP-NOOB ran in this boot: what it leaves on the heap (its exchanges' buffers, the CoAP exchanges it
        # answered, fragments) is more than the update needs later, so the agent starts again, registered, on a
        # clean heap (the session and the OSCORE sequence bound are in the store). The wait lets the answer to
        # the EAP-Success (or the Initial Exchange's EAP-Failure) go out.
        await sleep_ms(300)
        log.info(line)
        self._restart("soft")

    def _restart(self, kind):
        # the figures of this boot, before the reset into the update (or out of a refused one) clears them
        heap_used()
        log.info("agent: heap peak", peak, "wire", self.wire.wire[0], self.wire.wire[1], "before", kind, "reset")
        import machine
        if kind == "hard":
            machine.reset()
        else:
            machine.soft_reset()

    def _anchors(self):
        # the trust anchor alone authenticates a trigger: far less heap than a whole processor (released after)
        from cose.key import CoseKey
        with open((self.root + "/" if self.root else "") + self.cfg["anchor"], "rb") as f:
            return [CoseKey.decode(f.read())]

    def _processor(self):
        # the boot verdict's and a recovery's (the install itself ran at boot: agent_config.boot); everything
        # imported here is released after (Updater.release)
        from agent_config import processor
        return processor(self.cfg, self.root, self.state, self._anchors())

    def _driver(self):
        from agent_config import driver
        return driver(self.cfg, self.root)

    # ---- tasks ---------------------------------------------------------------------------------------

    async def run(self):
        # The verdict runs in a coroutine of its own: a generator's frame keeps stale pointers in its value stack
        # (here the Updater and the suit modules dropped after it), which the GC, scanning conservatively, takes
        # as references; that frame is garbage once it returns, so what the verdict dropped is given back.
        await self._verdict()
        log.info("agent: app version", _app_version(), "heap used", heap_used(), "peak", peak)
        tasks = [supervise("bootstrap", self.dev.run), supervise("sensor", self.sample),
                 supervise("health", self.keep)]
        if self.cfg["poll"] and self.up is not None:
            path = "/suit/m/" + self.cfg["device"]
            tasks.append(supervise("poll", lambda: self.up.poll_forever(path, self.cfg["poll"] * 1000)))
        log.info("agent: ready")
        for t in tasks:  # (not asyncio.gather: its module is one more on the heap, and no task ever ends)
            asyncio.create_task(t)
        await asyncio.Event().wait()

    async def _verdict(self):
        # (what runs only here is here, not in methods: each method is heap for the whole run)
        async def health_check():
            """The first boot after an update: the new app imports and says it is healthy, the server answers."""
            sys.modules.pop("app", None)
            import app
            if not app.healthy():
                return False
            return await self.ep.ping(self.server)

        try:
            self.booted = await self.up.boot(health_check, self.cfg["health_deadline"] * 1000)
        except MemoryError:
            # the verdict (health check, then the processor that drops or restores the old files) ran out of
            # heap: its record is still there, so the next boot decides again, on a clean heap
            log.error("update: boot verdict out of memory; restarting on a clean heap")
            self._restart("soft")
        except Exception as e:  # never stop answering: the next boot tries the verdict again
            log.error("update: boot verdict failed:", type(e).__name__, e)
        self.up.release()  # what the boot check loaded (the spool, the verdict's code)
        if not self.booted and not self.dev.registered:
            # Unregistered, with no update verdict to make: the update client goes until the agent restarts
            # registered (it does after EAP-Success), so EAP-NOOB's conversation has its heap. (The Updater was
            # made for boot(): a boot after an update, or after a commit cut short, decides before anything.)
            for path in ("/suit/trigger", "/suit/state"):
                self.ep.resources.pop(path, None)
            self.up = None
            drop_modules(("suit",))
        if self.booted:
            log.info("update: boot", self.booted)
        if self.booted == "confirmed":
            # the verdict's code (the health check, the processor that dropped the old files) leaves holes all
            # over the heap: the new version starts again on a clean one, as after bootstrap
            log.info("update: confirmed; restarting on a clean heap")
            self._restart("soft")

    async def sample(self):
        period = self.period
        while True:
            self.value = self.sensor()
            self.ep.notify(self.res)
            heap_used()
            await sleep_ms(period)

    async def keep(self):
        """The watchdog (hardware only), Wi-Fi, and the endpoint's receive task."""
        if self.wdt is None and sys.platform not in ("linux", "darwin"):
            try:
                import machine
                self.wdt = machine.WDT(timeout=30000)
            except (ImportError, AttributeError, ValueError):
                pass
        while True:
            if self.wdt is not None:
                self.wdt.feed()
            if self.ep.task is not None and self.ep.task.done():
                log.warn("coap: receive loop ended; restarting it")
                self.ep.task = None
                self.ep.start()
            heap_used()
            await sleep_ms(5000)


async def wifi(cfg):
    """ESP32: join the configured network, retrying with backoff; reconnect when the link drops."""
    import network
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    delay = BACKOFF_MS
    while True:
        if not sta.isconnected():
            log.info("wifi: connecting to", cfg["ssid"])  # the SSID only, never the password
            sta.connect(cfg["ssid"], cfg["password"])
            for _ in range(30):
                if sta.isconnected():
                    break
                await sleep_ms(500)
            if sta.isconnected():
                log.info("wifi: connected", sta.ifconfig()[0])
                delay = BACKOFF_MS
            else:
                log.warn("wifi: not connected; again in", delay, "ms")
                sta.disconnect()
                await sleep_ms(delay)
                delay = min(delay * 2, BACKOFF_CAP_MS)
                continue
        await sleep_ms(5000)


def _cbor_array(items):
    """A CBOR array of items (a sensor reading): a float as a double, the rest through cbor.dumps. cbor encodes
    floats in its rarely used part (_cbor_ext, 6.6 KB of heap), which the sensor would keep loaded."""
    import struct
    import cbor
    if type(items) not in (list, tuple) or len(items) > 23:
        return cbor.dumps(items)
    out = bytearray((0x80 + len(items),))
    for v in items:
        out += b"\xfb" + struct.pack(">d", v) if type(v) is float else cbor.dumps(v)
    return out


def coap_error(e):  # the endpoint's on_error (in this module: a callback agent_start made would keep it loaded)
    log.debug("coap:", type(e).__name__, e)


def update_phase(p):  # the Updater's on_phase
    log.info("update: phase", p, "heap", heap_used())


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _app_version():
    try:
        import app
        return app.VERSION
    except Exception:  # a broken app must not take the health report with it
        return None


async def _main(cfg, root):
    tasks = []
    w = cfg["wifi"]
    if w["ssid"] and _has("network"):
        tasks.append(asyncio.create_task(supervise("wifi", lambda: wifi(w))))
    agent = None
    delay = BACKOFF_MS
    while agent is None:
        try:
            agent = Agent(cfg, root).start()
        except Exception as e:  # no transport yet (the port is taken), no memory, a broken module: keep trying
            agent = None
            gc.collect()
            log.error("agent: start failed:", type(e).__name__, e, "; again in", delay, "ms")
            await sleep_ms(delay)
            delay = min(delay * 2, BACKOFF_CAP_MS)
    await agent.run()


def main(cfg, root):
    """main.py's: cfg and root from agent_config.boot(), which ran the install at boot first."""
    asyncio.run(_main(cfg, root))
