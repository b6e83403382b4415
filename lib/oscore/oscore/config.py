# A security context from the board's config: the "oscore" member of config.json as `hourglass oscore` writes
# it, hex strings {"secret", "salt", "sender_id", "recipient_id", "id_context" (optional)}. Loaded once at boot.
from binascii import unhexlify

from oscore import OscoreError
from oscore import Context


def context(cfg, store=None, name="oscore", k=64):
    """The Context for cfg (a dict); OscoreError when a member is missing or not hex."""
    try:
        h = cfg.get("id_context")
        return Context(unhexlify(cfg["secret"]), unhexlify(cfg.get("salt", "")), unhexlify(cfg["sender_id"]),
                       unhexlify(cfg["recipient_id"]), None if h is None else unhexlify(h), store=store,
                       name=name, k=k)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, OscoreError):
            raise
        raise OscoreError("bad oscore config: %r" % (e,))
