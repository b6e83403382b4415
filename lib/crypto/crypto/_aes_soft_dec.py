# The inverse AES rounds of crypto._aes_soft.PureAES (FIPS-197 InvCipher, byte-oriented like the forward
# rounds there), in their own module: a block cipher used only forwards (CCM, GCM, CTR: OSCORE, SUIT's
# payloads) never loads them. Use crypto.aes, not this module.
# ruff: noqa: E702 (the rounds are unrolled on purpose, several statements a line, as in _aes_soft.py)


def decrypt_into(rk, rounds, src, dst, S, X):
    """Decrypt the 16 bytes of src into dst with the expanded key rk (rounds rounds); S is the inverse S-box,
    X the xtime table."""
    o = rounds * 16
    s0 = src[0] ^ rk[o + 0]; s1 = src[1] ^ rk[o + 1]; s2 = src[2] ^ rk[o + 2]; s3 = src[3] ^ rk[o + 3]
    s4 = src[4] ^ rk[o + 4]; s5 = src[5] ^ rk[o + 5]; s6 = src[6] ^ rk[o + 6]; s7 = src[7] ^ rk[o + 7]
    s8 = src[8] ^ rk[o + 8]; s9 = src[9] ^ rk[o + 9]; s10 = src[10] ^ rk[o + 10]; s11 = src[11] ^ rk[o + 11]
    s12 = src[12] ^ rk[o + 12]; s13 = src[13] ^ rk[o + 13]; s14 = src[14] ^ rk[o + 14]; s15 = src[15] ^ rk[o + 15]
    for _ in range(rounds - 1):
        o -= 16
        a0 = S[s0] ^ rk[o + 0]; a1 = S[s13] ^ rk[o + 1]; a2 = S[s10] ^ rk[o + 2]; a3 = S[s7] ^ rk[o + 3]
        u = X[X[a0 ^ a2]]; v = X[X[a1 ^ a3]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n0 = a0 ^ t ^ X[a0 ^ a1]; n1 = a1 ^ t ^ X[a1 ^ a2]
        n2 = a2 ^ t ^ X[a2 ^ a3]; n3 = a3 ^ t ^ X[a3 ^ a0]
        a0 = S[s4] ^ rk[o + 4]; a1 = S[s1] ^ rk[o + 5]; a2 = S[s14] ^ rk[o + 6]; a3 = S[s11] ^ rk[o + 7]
        u = X[X[a0 ^ a2]]; v = X[X[a1 ^ a3]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n4 = a0 ^ t ^ X[a0 ^ a1]; n5 = a1 ^ t ^ X[a1 ^ a2]
        n6 = a2 ^ t ^ X[a2 ^ a3]; n7 = a3 ^ t ^ X[a3 ^ a0]
        a0 = S[s8] ^ rk[o + 8]; a1 = S[s5] ^ rk[o + 9]; a2 = S[s2] ^ rk[o + 10]; a3 = S[s15] ^ rk[o + 11]
        u = X[X[a0 ^ a2]]; v = X[X[a1 ^ a3]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n8 = a0 ^ t ^ X[a0 ^ a1]; n9 = a1 ^ t ^ X[a1 ^ a2]
        n10 = a2 ^ t ^ X[a2 ^ a3]; n11 = a3 ^ t ^ X[a3 ^ a0]
        a0 = S[s12] ^ rk[o + 12]; a1 = S[s9] ^ rk[o + 13]; a2 = S[s6] ^ rk[o + 14]; a3 = S[s3] ^ rk[o + 15]
        u = X[X[a0 ^ a2]]; v = X[X[a1 ^ a3]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n12 = a0 ^ t ^ X[a0 ^ a1]; n13 = a1 ^ t ^ X[a1 ^ a2]
        n14 = a2 ^ t ^ X[a2 ^ a3]; n15 = a3 ^ t ^ X[a3 ^ a0]
        s0 = n0; s1 = n1; s2 = n2; s3 = n3
        s4 = n4; s5 = n5; s6 = n6; s7 = n7
        s8 = n8; s9 = n9; s10 = n10; s11 = n11
        s12 = n12; s13 = n13; s14 = n14; s15 = n15
    dst[0] = S[s0] ^ rk[0]
    dst[1] = S[s13] ^ rk[1]
    dst[2] = S[s10] ^ rk[2]
    dst[3] = S[s7] ^ rk[3]
    dst[4] = S[s4] ^ rk[4]
    dst[5] = S[s1] ^ rk[5]
    dst[6] = S[s14] ^ rk[6]
    dst[7] = S[s11] ^ rk[7]
    dst[8] = S[s8] ^ rk[8]
    dst[9] = S[s5] ^ rk[9]
    dst[10] = S[s2] ^ rk[10]
    dst[11] = S[s15] ^ rk[11]
    dst[12] = S[s12] ^ rk[12]
    dst[13] = S[s9] ^ rk[13]
    dst[14] = S[s6] ^ rk[14]
    dst[15] = S[s3] ^ rk[15]
