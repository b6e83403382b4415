# The device agent's parts that a serving boot never runs (agent.py imports this module on use and forgets it
# after, so a registered boot that serves and waits holds none of their bytecode, nor interns their names):
# the update client's callbacks for a boot verdict (the processor and driver, the health check) and Wi-Fi
# (hardware with an SSID only). Each is called where a failure is caught (the verdict, a supervised task). The OOB
# step and the reset stay in agent.py: an unregistered boot runs the one (one more module would cost that boot
# heap), and the other must work when the heap has run out.
import sys

import log

import agent


def processor(a):
    # the boot verdict's and a recovery's (the install itself ran at boot: agent_config.boot); everything
    # imported here is released after (Updater.release)
    from agent_config import processor
    return processor(a.cfg, a.root, a.state, a.anchors())


def driver(a):
    from agent_config import driver
    return driver(a.cfg, a.root)


async def health_check(a):
    """The first boot after an update: the new app imports and says it is healthy, the server answers."""
    sys.modules.pop("app", None)
    import app
    if not app.healthy():
        return False
    return await a.ep.ping(a.server)


async def wifi(cfg):
    """ESP32: join the configured network, retrying with backoff; reconnect when the link drops."""
    import network
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    delay = agent.BACKOFF_MS
    while True:
        if not sta.isconnected():
            log.info("wifi: connecting to", cfg["ssid"])  # the SSID only, never the password
            sta.connect(cfg["ssid"], cfg["password"])
            for _ in range(30):
                if sta.isconnected():
                    break
                await agent.sleep_ms(500)
            if sta.isconnected():
                log.info("wifi: connected", sta.ifconfig()[0])
                delay = agent.BACKOFF_MS
            else:
                log.warn("wifi: not connected; again in", delay, "ms")
                sta.disconnect()
                await agent.sleep_ms(delay)
                delay = min(delay * 2, agent.BACKOFF_CAP_MS)
                continue
        await agent.sleep_ms(5000)
