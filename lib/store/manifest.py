metadata(
    version="0.1.0",
    description="Atomic persistent state for device protocols: one file per name, written then renamed, "
    "with a check that refuses torn writes.",
)

module("store.py")
