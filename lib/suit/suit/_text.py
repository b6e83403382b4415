# The texts of SuitError messages, by number (SuitError(reason, n) or SuitError(reason, (n, values...))): loaded on
# the first error only, so the modules an install runs carry numbers instead of sentences.
TEXTS = (
    None,  # 0: no longer raised (numbers are kept)
    'COSE_%s is not supported: one COSE_%s%s block per key',  # 1 (raised as 2 with tag 97 or 98)
    'authentication block is not a tagged COSE_Sign1 or COSE_Mac0',  # 2 (value: the tag after 0xD8, or 0)
    'COSE_%s does not verify (%s)',  # 3 (values: True for Sign1, the alg)
    '%s: indefinite-length map',  # 4 (a WHAT index)
    'digest algorithm %d (only -16)',  # 5
    'bad SUIT_Digest',  # 6
    'bad SUIT_Digest: %s',  # 7
    'manifest digest does not match the authenticated one',  # 8
    'manifest names no components',  # 9
    'envelope of %d bytes is bigger than this device accepts (%d)',  # 10
    '%d bytes after the envelope',  # 11
    'envelope without %s',  # 12 (a WHAT index)
    'malformed envelope: %s',  # 13
    'no authentication block',  # 14
    'a COSE_%s is an array of 4',  # 15 (value: True for Sign1)
    'COSE unprotected headers are not a map',  # 16
    'malformed COSE block: %s',  # 17
    'manifest has a tag other than 1070',  # 18
    'manifest without version, sequence number or common',  # 19
    'malformed manifest: %s',  # 20
    'envelope tag %d (expected 107)',  # 21
    'envelope member %d given twice',  # 22
    'COSE payload is not the manifest digest',  # 23
    'manifest member %d given twice',  # 24
    'severable member %d does not match its digest',  # 25
    'envelope member %d is not severed from this manifest',  # 26
    None,  # 27: no longer raised (numbers are kept)
    'components must be a non-empty array',  # 28
    '%d components (this device takes %d)',  # 29
    'integrated payload %r given twice',  # 30
    'manifest version %d (only 1)',  # 31
    'component identifier too long',  # 32
    None,  # 33: no longer raised (numbers are kept)
    'dependency manifests are not supported',  # 34
    'common member %d given twice or not supported',  # 35
    'unsupported envelope member %d',  # 36
    'unsupported manifest member %d',  # 37
    'command sequences nested deeper than 6',  # 38 (suit.processor's limit)
    'parameter %s is not set for component %d',  # 39
    'parameter %d given twice',  # 40
    '%s does not match this device',  # 41
    'a command sequence is an array of command/argument pairs',  # 42
    'malformed command sequence: %s',  # 43
    'component %d has no image',  # 44
    'component %d image does not match its digest%s',  # 45 (values: the index, True when the size differs)
    'no integrated payload %s',  # 46
    'writing component %d failed: %s',  # 47
    'sequence number %d is not newer than the installed %d',  # 48
    'sequence number %d is older than the installed %d',  # 49
    'fetch %s failed: %s',  # 50
    'component %d image is bigger than image-size %d',  # 51
    'command %d is not supported',  # 52
    'parameter %d must be a bool',  # 53
    'parameter %d is not supported',  # 54
    'image bigger than the slot (%d bytes)',  # 55
    'component %r is not a bundle path',  # 56
    'bundle files have no slot %d',  # 57
    'image-size %d is bigger than the slot (%d bytes)',  # 58
    'trailing bytes after %s',  # 59 (a WHAT index)
    'storage error: %s',  # 60
)


# what envelope.read_map_header and message 59 name (by index), and message 12
WHAT = ("envelope", "the authentication wrapper", "the COSE block", "manifest", "common", "parameters",
        "a command sequence")
# messages whose first value is a parameter number, shown by its name
_NAMED = (39, 41)
_PARAM_NAMES = {1: "vendor-id", 2: "class-id", 24: "device-id", 3: "image-digest", 5: "component-slot", 21: "uri",
                18: "content", 22: "source-component"}


def text(message):
    """The message a number or a (number, values...) tuple stands for."""
    if type(message) is int:
        return TEXTS[message]
    n = message[0]
    values = message[1:]
    if n in _NAMED:
        values = (_PARAM_NAMES.get(values[0], values[0]),) + values[1:]
    elif n == 4 or n == 12 or n == 59:
        values = (WHAT[values[0]],)
    elif n == 2:
        if values[0] not in (97, 98):  # tags 97, 98: COSE_Mac, COSE_Sign
            return TEXTS[2]
        name = "Mac" if values[0] == 97 else "Sign"
        n, values = 1, (name, name, "01"[values[0] - 97])
    elif n == 15:
        values = ("Sign1" if values[0] else "Mac0",)
    elif n == 45:
        values = (values[0], " and size" if values[1] else "")
    elif n == 3:
        from cose._text import alg_name
        values = ("Sign1 signature" if values[0] else "Mac0 tag", alg_name(values[1]))
    elif n == 35 and values[0] == 1:
        return TEXTS[34]
    return TEXTS[n] % values


def describe(e):
    """str() of SuitError e: its reason's name and its message."""
    from suit.reasons import REASONS
    return "%s: %s" % (REASONS[e.reason], e.args[0])
