# OSCORE error texts, their CoAP codes and diagnostic payloads (RFC 8613 section 8), indexed by the numbers
# the modules raise with oscore.err(n). Loaded on the first failure: no RAM for the texts until then.
_F = "Failed to decode COSE"
ERRORS = (
    ("identifier too long", 0, None),  # 0
    ("Sender/Recipient ID longer than 7 bytes", 0, None),  # 1
    ("ID Context longer than 255 bytes", 0, None),  # 2
    ("Sender ID and Recipient ID must differ", 0, None),  # 3
    ("K must be positive", 0, None),  # 4
    ("stored sequence number is malformed", 0, None),  # 5
    ("sender sequence numbers exhausted: the context needs new keys", 0, None),  # 6
    ("OSCORE option: reserved flag bits set", 130, _F),  # 7
    ("OSCORE option: reserved Partial IV length", 130, _F),  # 8
    ("OSCORE option: truncated Partial IV", 130, _F),  # 9
    ("OSCORE option: truncated kid context", 130, _F),  # 10
    ("OSCORE option: trailing bytes", 130, _F),  # 11
    ("OSCORE option: flags 0 must be sent as an empty value", 130, _F),  # 12
    ("OSCORE message without a COSE ciphertext", 130, _F),  # 13
    ("OSCORE: empty plaintext", 130, _F),  # 14
    ("OSCORE: malformed inner message", 130, _F),  # 15
    ("OSCORE: inner code of the wrong class", 130, _F),  # 16
    ("nested OSCORE", 130, _F),  # 17
    ("message is already OSCORE-protected", 0, None),  # 18
    ("decryption failed", 128, "Decryption failed"),  # 19
    ("not an OSCORE request", 129, "OSCORE required"),  # 20
    ("OSCORE request without Partial IV or kid", 130, _F),  # 21
    ("no security context for this kid", 129, "Security context not found"),  # 22
    ("replayed request", 129, "Replay detected"),  # 23
    ("response is not OSCORE-protected", 0, None),  # 24
    ("a second response without Partial IV", 0, None),  # 25
    ("Observe in a response to a request without Observe", 0, None),  # 26
    ("replayed or stale notification", 0, None),  # 27
)
