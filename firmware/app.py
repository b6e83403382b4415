# Hourglass app: loads config.json, reports health, starts the services this board can run.
#
# config.json (on the board's filesystem, next to main.py), every key optional:
#   {"wifi": {"ssid": "...", "password": "..."},            ESP32 only: join a network first
#    "coap": {"enabled": true, "transport": "auto", "bind": "0.0.0.0", "port": 5683}}
# Service: a CoAP server with GET /health (JSON). transport "udp" where the board has sockets (ESP32),
# "serial" on the console (slipmux frames between the REPL text; `hourglass gateway PORT` bridges it to UDP),
# "auto" (default) picks udp when there is a socket module, else serial (nRF52840 has no IP network).
# A Ctrl-C outside a frame still stops the app (coap.serial), so mpremote can take the board over.
# On an ESP32 running from an OTA partition, the image is marked valid once the services are up, so the
# bootloader does not roll it back.
import gc
import json
import os
import sys

CONFIG_FILE = "config.json"
DEFAULTS = {"coap": {"enabled": True, "transport": "auto", "bind": "0.0.0.0", "port": 5683}}


def load_config(path=CONFIG_FILE):
    config = {}
    for key, value in DEFAULTS.items():
        config[key] = dict(value)
    try:
        with open(path) as f:
            user = json.load(f)
    except OSError:
        return config  # no config file: defaults
    except ValueError as e:
        print("hourglass: ignoring bad", path, "-", e)
        return config
    if not isinstance(user, dict):
        print("hourglass: ignoring", path, "- not a JSON object")
        return config
    for key, value in user.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    return config


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def health():
    gc.collect()
    report = {"platform": sys.platform, "version": ".".join(str(v) for v in sys.implementation.version[:3])}
    try:
        report["heap_free"] = gc.mem_free()
        report["heap_used"] = gc.mem_alloc()
    except AttributeError:  # CPython
        pass
    try:
        st = os.statvfs(".")
        report["fs_free"] = st[0] * st[3]
        report["fs_size"] = st[0] * st[2]
    except (AttributeError, OSError):
        pass
    report["features"] = [m for m in ("socket", "cryptolib", "ssl", "network", "esp32") if _has(m)]
    return report


def connect_wifi(wifi, timeout_ms=15000):
    import time
    import network

    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if not sta.isconnected():
        sta.connect(wifi["ssid"], wifi.get("password", ""))
        t0 = time.ticks_ms()
        while not sta.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < timeout_ms:
            time.sleep_ms(100)
    return sta.ifconfig()[0] if sta.isconnected() else None


def start_coap(cfg):
    from coap.server import Server

    transport = cfg.get("transport", "auto")
    if transport == "auto":
        transport = "udp" if _has("socket") else "serial"
    if transport == "udp":
        from coap.udp import UDPTransport

        t = UDPTransport(bind=(cfg.get("bind", "0.0.0.0"), int(cfg.get("port", 5683))))
    elif transport == "serial":
        from coap.serial import SerialTransport

        t = SerialTransport()
    else:
        raise ValueError("unknown coap transport " + repr(transport))
    server = Server(t)
    server.route("/health", get=lambda req: json.dumps(health()), ct=50, title="Hourglass health")
    return server.start()


def mark_ota_valid():
    try:
        import esp32

        esp32.Partition.mark_app_valid_cancel_rollback()
        return True
    except (ImportError, AttributeError, OSError):
        return False  # not an ESP32, or not an OTA build


async def run(config):
    import asyncio

    services = []
    wifi = config.get("wifi")
    if isinstance(wifi, dict) and wifi.get("ssid") and _has("network"):
        ip = connect_wifi(wifi)
        print("hourglass: wifi", ip or "not connected")
    coap_cfg = config.get("coap") or {}
    if coap_cfg.get("enabled"):
        try:
            server = start_coap(coap_cfg)
            services.append(server)
            print("hourglass: coap on", getattr(server.t, "address", None) or "the serial console")
        except (ImportError, OSError, ValueError) as e:
            print("hourglass: coap not started -", e)
    if not services:
        print("hourglass: no services to run")
        return services
    if mark_ota_valid():
        print("hourglass: OTA image marked valid")
    while True:
        await asyncio.sleep(3600)


def main():
    config = load_config()
    print("hourglass:", json.dumps(health()))
    try:
        import asyncio
    except ImportError:
        return
    asyncio.run(run(config))
