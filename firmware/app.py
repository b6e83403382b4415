# The application: the part of the bundle a SUIT update replaces (component "app.py"). The agent (agent.py)
# imports it after the boot verdict; healthy() is the update health check's application half.
VERSION = 1


def healthy():
    return True


def describe(value):
    """The sensor resource's payload: [reading, unit, app version] (CBOR)."""
    return [value, "Cel", VERSION]
