# What the update's own modules share (suit.ota_run, suit.ota_boot), kept out of suit.ota so that a board that
# serves holds none of it: the records and phases only an update uses, and its clock.
_DL = "suit-dl"          # [envelope digest, uri index, etag, bytes stored]: where a download resumes
_ENV = "suit-env"        # the envelope of a download that waits for its install at boot
_SEQ_COMPONENT = "manifest"

# phases (/suit/state key 6; suit.ota's _PENDING key 4) besides suit.ota's IDLE and FETCH
FETCHED = "fetched"      # downloaded, the install waits for the restart (install_at_boot)
INSTALL = "install"
RESTART = "restart"
FAILED = "failed"
RESTORE = "restore"      # the health check failed: the bundle's old files go back (a cut restore resumes at boot)


def ticks_ms():
    try:
        from time import ticks_ms
    except ImportError:  # CPython
        from coap.endpoint import ticks_ms
    return ticks_ms()


def ms_since(t0):
    try:
        from time import ticks_diff
    except ImportError:  # CPython
        from coap.endpoint import ticks_diff
    return ticks_diff(ticks_ms(), t0)
