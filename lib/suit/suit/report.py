# The SUIT report of one run (draft-ietf-suit-report-18): {99: [reference-uri, SUIT_Digest], 3: [records],
# 4: true / {5: result-code, 6: failing record, 7: reason}}. Records are
# [manifest-id, manifest-section, section-offset, component-index, {parameters}]. The report is plain CBOR;
# wrapping it in COSE_Sign1/COSE_Mac0 with the device key is the caller's choice.
import cbor


def encode(reference_uri, digest, records, result):
    """reference_uri: the manifest's (or None); digest: the encoded SUIT_Digest (or None when the envelope did
    not authenticate); records: what ran; result: a suit.processor.Result."""
    # the digest goes in as the encoded bytes it already is (no decode and re-encode)
    out = bytearray(b"\xa3\x18\x63\x82")  # {99: [
    out += cbor.dumps(reference_uri if reference_uri is not None else "")
    out += digest if digest is not None else b"\xf6"
    out += b"\x03"  # 3: records
    out += cbor.dumps(records or [])
    out += b"\x04"  # 4: result
    if result.ok:
        out += b"\xf5"
    else:
        # the draft leaves the result-code's values to the processor: ours repeats the reason code
        out += cbor.dumps({5: result.reason, 6: result.record, 7: result.reason})
    return bytes(out)
