metadata(
    version="0.1.0",
    description="EAP-NOOB (RFC 9140) device peer: a sans-IO state machine over EAP packets, cryptosuites 1 "
    "(X25519) and 2 (P-256), OOB in both directions, the association persisted atomically.",
)

require("crypto", library="hourglass")
require("store", library="hourglass")
package("eapnoob")
