# Device crypto primitives. Submodules are imported by callers on demand (crypto.p256, crypto.ccm, ...),
# so an application pays RAM only for the primitives it uses.


class CryptoError(ValueError):
    """Base class for every crypto failure (bad key, bad length, failed check). e.args[0] is an error number;
    str(e) gives the text (from crypto._text, loaded then)."""

    def __str__(self):
        from crypto._text import describe
        return describe(self.args)


class InvalidSignature(CryptoError):
    pass


class InvalidTag(CryptoError):
    pass


def release(*modules):
    """Forget modules a finished phase used, e.g. release("crypto.p256", "crypto.x25519") after bootstrapping,
    so the GC can take their heap back: each is dropped from sys.modules and from its package's attributes (the
    import system keeps it there too). Works for any module name; callers drop their own references."""
    import sys

    for name in modules:
        sys.modules.pop(name, None)
        dot = name.rfind(".")
        parent = sys.modules.get(name[:dot]) if dot > 0 else None
        # __dict__, not hasattr: a package __getattr__ (cose's) would import the module again
        if parent is not None and name[dot + 1:] in parent.__dict__:
            delattr(parent, name[dot + 1:])
