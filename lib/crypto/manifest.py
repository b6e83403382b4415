metadata(
    version="0.1.0",
    description="Device crypto: HMAC/HKDF/concat KDF, AES (cryptolib or pure), AES-CCM, key wrap, HSS/LMS verify, "
    "X25519, P-256, Ed25519.",
)

package("crypto")
