metadata(
    version="0.1.0",
    description="COSE (RFC 9052/9053): Sign1 (ES256, ESP256, EdDSA, Ed25519, HSS-LMS), Mac0 (HMAC 256/64, "
    "256/256), Encrypt0 (AES-CCM-16-64-128), Encrypt with A128KW recipients, COSE_Key and key sets.",
)

require("cbor", library="hourglass")
require("crypto", library="hourglass")
package("cose")
