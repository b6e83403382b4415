# Texts of the codec's MessageError (coap.msg raises them by index). Loaded on the first malformed message,
# so a device spends RAM on them only then.
DECODE = (
    "short header",  # 0
    "bad version",  # 1
    "bad token length",  # 2
    "empty message with content",  # 3
    "reserved code class",  # 4
    "truncated token",  # 5
    "payload marker without payload",  # 6
    "reserved option delta 15",  # 7
    "reserved option length 15",  # 8
    "option value past end",  # 9
    "option number too large",  # 10
    "truncated option header",  # 11
)
