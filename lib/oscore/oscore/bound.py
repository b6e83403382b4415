# The stored sequence number bound (RFC 8613 appendix B.1.1): a module of its own, so that a context that
# reaches its bound (every K messages sent) loads this alone, not oscore.derive and crypto.kdf, which a device
# drops once its contexts are made.


def store_bound(ctx):
    """The sequence number bound K numbers on from the last one, stored (without a store: no bound)."""
    from oscore import MAX_SEQ
    if ctx.store is None:
        ctx.limit = MAX_SEQ + 2
        return
    bound = min(ctx.limit + ctx.k, MAX_SEQ + 1)
    ctx.store.put(ctx.name, bound.to_bytes(5, "big"))
    ctx.limit = bound
