# AES-128/192/256 block cipher (FIPS-197).
#
# new(key) returns the fastest implementation the firmware has: cryptolib's ECB mode (ESP32, unix port), else
# ViperAES (machine code from the viper emitter; the nRF52840 has no cryptolib), else the bytecode PureAES. The
# last two live in crypto._aes_soft, imported only when needed (crypto.aes.PureAES / ViperAES load it too).
# All have the same interface:
#   encrypt_block(b) -> bytes, encrypt_into(src, dst), decrypt_block(b) -> bytes, decrypt_into(src, dst)
# encrypt_into/decrypt_into write into a caller's buffer, so modes (CCM, key wrap) run without allocating.
from crypto import CryptoError


def __getattr__(name):
    if name == "PureAES" or name == "ViperAES":
        from crypto import _aes_soft
        return getattr(_aes_soft, name)
    raise AttributeError(name)


class CryptolibAES:
    """cryptolib's AES in ECB mode. A cryptolib object works in one direction only, so there are two (the
    decrypting one made on first use). The default repr shows no key material."""

    def __init__(self, key):
        if len(key) not in (16, 32):
            raise CryptoError(1)  # cryptolib AES key must be 16 or 32 bytes
        import cryptolib
        self._key = bytes(key)
        self._enc = cryptolib.aes(self._key, 1)
        self._dec = None

    def encrypt_block(self, block):
        if len(block) != 16:
            raise CryptoError(2)  # AES block must be 16 bytes
        return self._enc.encrypt(block)

    def encrypt_into(self, src, dst):
        self._enc.encrypt(src, dst)

    def decrypt_block(self, block):
        if len(block) != 16:
            raise CryptoError(2)  # AES block must be 16 bytes
        out = bytearray(16)
        self.decrypt_into(block, out)
        return bytes(out)

    def decrypt_into(self, src, dst):
        if self._dec is None:
            import cryptolib
            self._dec = cryptolib.aes(self._key, 1)
        self._dec.decrypt(src, dst)


def has_cryptolib():
    try:
        import cryptolib  # noqa: F401
    except ImportError:
        return False
    return True


def new(key, pure=False):
    """The AES block cipher for key: cryptolib's when the firmware has it (MicroPython's has no AES-192), else
    ViperAES where the viper emitter works, else PureAES. pure=True skips cryptolib (for tests and benchmarks)."""
    if not pure and len(key) != 24 and has_cryptolib():
        return CryptolibAES(key)
    from crypto._aes_soft import best
    return best(key)
