# The agent's set-up, run once per boot by agent.Agent.start() and dropped right after it: the transport, the one
# CoAP endpoint, the resources, the bootstrap (coapeap.device) and the update client (suit.ota). Out of agent.py so
# that its code holds no heap while the agent runs (frozen: its function objects; as .mpy: its bytecode too).
# Nothing made here may refer back to this module (no lambda, no function of it): that would keep it loaded.
import os

import log
from agent import REQUIRE, Counted, LazyPeer, LazySpool, _has, coap_error, drop_modules, sensor, update_phase

# The install at boot keeps the envelope in the store beside the downloaded payload until it has run: a smaller
# filesystem (the nRF52840's 64 KiB, 16 blocks of 4 KiB) has no room for it (ENOSPC in the install), and a board
# that small installs in the update task instead (the nRF has the heap for it).
INSTALL_AT_BOOT_FS = 256 * 1024


def start(a):
    cfg = a.cfg
    if cfg["reserve"]:  # bytes held for the whole run, so a run at heap H proves the agent works in H - reserve
        a.reserve = bytearray(cfg["reserve"])
    from coap.endpoint import Endpoint
    from store import FileStore
    t, serial_remote = transport(cfg)
    log.info("agent: coap on", "the serial console" if serial_remote else "udp port %d" % cfg["port"])
    a.wire = Counted(t)
    a.ep = ep = Endpoint(a.wire).start()
    ep.on_error = coap_error
    a.server = _remote(cfg["suit"], serial_remote)
    # state lives under .hg/ (agent_config.STATE; one folder: 2 blocks of a small filesystem): a folder named like a
    # package next to main.py would shadow it ('' is first on sys.path), and a dot name is not importable
    a.state = FileStore(a.root + "/.hg" if a.root else ".hg")
    resources(a)
    bootstrap(a, _remote(cfg["controller"], serial_remote))
    updater(a)
    # read here only (the Wi-Fi task has its own member): their values go, the one configuration dict stays
    for key in ("transport", "port", "controller", "suit", "noob", "reserve", "log", "sensor", "wifi"):
        del cfg[key]


def transport(cfg):
    kind = cfg["transport"]
    if kind == "auto":
        kind = "udp" if _has("socket") else "serial"
    if kind == "serial":
        from coap.serial import REMOTE, SerialTransport
        return SerialTransport(), REMOTE
    from coap.udp import UDPTransport
    return UDPTransport(("0.0.0.0", cfg["port"])), None


def _remote(addr, serial_remote):
    return serial_remote if addr == "serial" or serial_remote else tuple(addr)


def resources(a):
    s = a.cfg["sensor"]
    a.sensor = sensor(s["kind"], s["pin"])
    a.period = int(s["period"] * 1000)  # ms
    a.res = a.ep.route("/sensor/temp", get=a._get_sensor, observable=True, ct=60, rt="temperature")
    a.ep.route("/health", get=a._get_health, ct=60)


def bootstrap(a, controller):
    from coapeap.device import Device
    n = a.cfg["noob"]
    a.peer = LazyPeer(a.state, a.cfg["device"], n["dirs"])
    a.console = None
    a.dev = Device(a.ep, a.peer, controller, a.state, require=REQUIRE, retry=n["retry"], on_state=a._on_state)
    # The OSCORE context is made: its derivation (HKDF) loads again for the next one (EAP-Success, a re-key)
    # or the next sequence number bound (every 64 messages).
    drop_modules(("oscore.derive", "crypto.kdf"))
    if not a.dev.registered:
        # the OOB step: while unregistered only (a re-key is an EAP-NOOB Reconnect, without it)
        from eapnoob.console import Console
        a.console = Console(a.peer, on_accept=a.dev.kick)
        a.console.route(a.ep)


def updater(a):
    from suit.ota import Updater
    a.up = Updater(a.ep, a._processor, a.state, a.cfg["device"].encode(), a.server, LazySpool(a.root or "."),
                   kind="bundle", anchors=a._anchors, on_phase=update_phase, restart=a._restart,
                   install_at_boot=_install_at_boot(a.root), make_driver=a._driver)
    a.up.serve()


def _install_at_boot(root):
    try:
        st = os.statvfs(root or "/")
    except (AttributeError, OSError):
        return True
    return st[0] * st[2] >= INSTALL_AT_BOOT_FS
