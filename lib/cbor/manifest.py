metadata(version="0.1.0", description="CBOR (RFC 8949) encoder/decoder with a zero-copy streaming decoder.")

module("cbor.py")
module("_cbor_ext.py")
module("_cbor_stream.py")
