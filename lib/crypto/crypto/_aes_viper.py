# AES block encryption/decryption in viper for crypto.aes: the same byte-oriented rounds as PureAES (S-box and
# xtime lookups, the state in 16 machine-word locals), compiled to machine code. Kept in its own module: a port
# without the viper emitter fails to compile only this file, and aes.py keeps the bytecode PureAES (it also
# checks these against FIPS-197 before use).
#   rk: expanded key, 240 bytes, the round count at rk[240]; tab: S-box || inverse S-box || xtime (768 bytes).
import micropython


@micropython.viper
def encrypt(rk: ptr8, src: ptr8, dst: ptr8, tab: ptr8):
    rounds = int(rk[240])
    s0 = src[0] ^ rk[0]; s1 = src[1] ^ rk[1]; s2 = src[2] ^ rk[2]; s3 = src[3] ^ rk[3]
    s4 = src[4] ^ rk[4]; s5 = src[5] ^ rk[5]; s6 = src[6] ^ rk[6]; s7 = src[7] ^ rk[7]
    s8 = src[8] ^ rk[8]; s9 = src[9] ^ rk[9]; s10 = src[10] ^ rk[10]; s11 = src[11] ^ rk[11]
    s12 = src[12] ^ rk[12]; s13 = src[13] ^ rk[13]; s14 = src[14] ^ rk[14]; s15 = src[15] ^ rk[15]
    o = 16
    for _ in range(rounds - 1):
        a0 = tab[s0]; a1 = tab[s5]; a2 = tab[s10]; a3 = tab[s15]
        t = a0 ^ a1 ^ a2 ^ a3
        n0 = a0 ^ t ^ tab[512 + (a0 ^ a1)] ^ rk[o + 0]; n1 = a1 ^ t ^ tab[512 + (a1 ^ a2)] ^ rk[o + 1]
        n2 = a2 ^ t ^ tab[512 + (a2 ^ a3)] ^ rk[o + 2]; n3 = a3 ^ t ^ tab[512 + (a3 ^ a0)] ^ rk[o + 3]
        a0 = tab[s4]; a1 = tab[s9]; a2 = tab[s14]; a3 = tab[s3]
        t = a0 ^ a1 ^ a2 ^ a3
        n4 = a0 ^ t ^ tab[512 + (a0 ^ a1)] ^ rk[o + 4]; n5 = a1 ^ t ^ tab[512 + (a1 ^ a2)] ^ rk[o + 5]
        n6 = a2 ^ t ^ tab[512 + (a2 ^ a3)] ^ rk[o + 6]; n7 = a3 ^ t ^ tab[512 + (a3 ^ a0)] ^ rk[o + 7]
        a0 = tab[s8]; a1 = tab[s13]; a2 = tab[s2]; a3 = tab[s7]
        t = a0 ^ a1 ^ a2 ^ a3
        n8 = a0 ^ t ^ tab[512 + (a0 ^ a1)] ^ rk[o + 8]; n9 = a1 ^ t ^ tab[512 + (a1 ^ a2)] ^ rk[o + 9]
        n10 = a2 ^ t ^ tab[512 + (a2 ^ a3)] ^ rk[o + 10]; n11 = a3 ^ t ^ tab[512 + (a3 ^ a0)] ^ rk[o + 11]
        a0 = tab[s12]; a1 = tab[s1]; a2 = tab[s6]; a3 = tab[s11]
        t = a0 ^ a1 ^ a2 ^ a3
        n12 = a0 ^ t ^ tab[512 + (a0 ^ a1)] ^ rk[o + 12]; n13 = a1 ^ t ^ tab[512 + (a1 ^ a2)] ^ rk[o + 13]
        n14 = a2 ^ t ^ tab[512 + (a2 ^ a3)] ^ rk[o + 14]; n15 = a3 ^ t ^ tab[512 + (a3 ^ a0)] ^ rk[o + 15]
        s0 = n0; s1 = n1; s2 = n2; s3 = n3
        s4 = n4; s5 = n5; s6 = n6; s7 = n7
        s8 = n8; s9 = n9; s10 = n10; s11 = n11
        s12 = n12; s13 = n13; s14 = n14; s15 = n15
        o += 16
    dst[0] = tab[s0] ^ rk[o + 0]
    dst[1] = tab[s5] ^ rk[o + 1]
    dst[2] = tab[s10] ^ rk[o + 2]
    dst[3] = tab[s15] ^ rk[o + 3]
    dst[4] = tab[s4] ^ rk[o + 4]
    dst[5] = tab[s9] ^ rk[o + 5]
    dst[6] = tab[s14] ^ rk[o + 6]
    dst[7] = tab[s3] ^ rk[o + 7]
    dst[8] = tab[s8] ^ rk[o + 8]
    dst[9] = tab[s13] ^ rk[o + 9]
    dst[10] = tab[s2] ^ rk[o + 10]
    dst[11] = tab[s7] ^ rk[o + 11]
    dst[12] = tab[s12] ^ rk[o + 12]
    dst[13] = tab[s1] ^ rk[o + 13]
    dst[14] = tab[s6] ^ rk[o + 14]
    dst[15] = tab[s11] ^ rk[o + 15]


@micropython.viper
def decrypt(rk: ptr8, src: ptr8, dst: ptr8, tab: ptr8):
    rounds = int(rk[240])
    o = rounds * 16
    s0 = src[0] ^ rk[o + 0]; s1 = src[1] ^ rk[o + 1]; s2 = src[2] ^ rk[o + 2]; s3 = src[3] ^ rk[o + 3]
    s4 = src[4] ^ rk[o + 4]; s5 = src[5] ^ rk[o + 5]; s6 = src[6] ^ rk[o + 6]; s7 = src[7] ^ rk[o + 7]
    s8 = src[8] ^ rk[o + 8]; s9 = src[9] ^ rk[o + 9]; s10 = src[10] ^ rk[o + 10]; s11 = src[11] ^ rk[o + 11]
    s12 = src[12] ^ rk[o + 12]; s13 = src[13] ^ rk[o + 13]; s14 = src[14] ^ rk[o + 14]; s15 = src[15] ^ rk[o + 15]
    for _ in range(rounds - 1):
        o -= 16
        a0 = tab[256 + s0] ^ rk[o + 0]; a1 = tab[256 + s13] ^ rk[o + 1]; a2 = tab[256 + s10] ^ rk[o + 2]; a3 = tab[256 + s7] ^ rk[o + 3]
        u = tab[512 + tab[512 + (a0 ^ a2)]]; v = tab[512 + tab[512 + (a1 ^ a3)]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n0 = a0 ^ t ^ tab[512 + (a0 ^ a1)]; n1 = a1 ^ t ^ tab[512 + (a1 ^ a2)]
        n2 = a2 ^ t ^ tab[512 + (a2 ^ a3)]; n3 = a3 ^ t ^ tab[512 + (a3 ^ a0)]
        a0 = tab[256 + s4] ^ rk[o + 4]; a1 = tab[256 + s1] ^ rk[o + 5]; a2 = tab[256 + s14] ^ rk[o + 6]; a3 = tab[256 + s11] ^ rk[o + 7]
        u = tab[512 + tab[512 + (a0 ^ a2)]]; v = tab[512 + tab[512 + (a1 ^ a3)]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n4 = a0 ^ t ^ tab[512 + (a0 ^ a1)]; n5 = a1 ^ t ^ tab[512 + (a1 ^ a2)]
        n6 = a2 ^ t ^ tab[512 + (a2 ^ a3)]; n7 = a3 ^ t ^ tab[512 + (a3 ^ a0)]
        a0 = tab[256 + s8] ^ rk[o + 8]; a1 = tab[256 + s5] ^ rk[o + 9]; a2 = tab[256 + s2] ^ rk[o + 10]; a3 = tab[256 + s15] ^ rk[o + 11]
        u = tab[512 + tab[512 + (a0 ^ a2)]]; v = tab[512 + tab[512 + (a1 ^ a3)]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n8 = a0 ^ t ^ tab[512 + (a0 ^ a1)]; n9 = a1 ^ t ^ tab[512 + (a1 ^ a2)]
        n10 = a2 ^ t ^ tab[512 + (a2 ^ a3)]; n11 = a3 ^ t ^ tab[512 + (a3 ^ a0)]
        a0 = tab[256 + s12] ^ rk[o + 12]; a1 = tab[256 + s9] ^ rk[o + 13]; a2 = tab[256 + s6] ^ rk[o + 14]; a3 = tab[256 + s3] ^ rk[o + 15]
        u = tab[512 + tab[512 + (a0 ^ a2)]]; v = tab[512 + tab[512 + (a1 ^ a3)]]
        a0 ^= u; a1 ^= v; a2 ^= u; a3 ^= v
        t = a0 ^ a1 ^ a2 ^ a3
        n12 = a0 ^ t ^ tab[512 + (a0 ^ a1)]; n13 = a1 ^ t ^ tab[512 + (a1 ^ a2)]
        n14 = a2 ^ t ^ tab[512 + (a2 ^ a3)]; n15 = a3 ^ t ^ tab[512 + (a3 ^ a0)]
        s0 = n0; s1 = n1; s2 = n2; s3 = n3
        s4 = n4; s5 = n5; s6 = n6; s7 = n7
        s8 = n8; s9 = n9; s10 = n10; s11 = n11
        s12 = n12; s13 = n13; s14 = n14; s15 = n15
    dst[0] = tab[256 + s0] ^ rk[0]
    dst[1] = tab[256 + s13] ^ rk[1]
    dst[2] = tab[256 + s10] ^ rk[2]
    dst[3] = tab[256 + s7] ^ rk[3]
    dst[4] = tab[256 + s4] ^ rk[4]
    dst[5] = tab[256 + s1] ^ rk[5]
    dst[6] = tab[256 + s14] ^ rk[6]
    dst[7] = tab[256 + s11] ^ rk[7]
    dst[8] = tab[256 + s8] ^ rk[8]
    dst[9] = tab[256 + s5] ^ rk[9]
    dst[10] = tab[256 + s2] ^ rk[10]
    dst[11] = tab[256 + s15] ^ rk[11]
    dst[12] = tab[256 + s12] ^ rk[12]
    dst[13] = tab[256 + s9] ^ rk[13]
    dst[14] = tab[256 + s6] ^ rk[14]
    dst[15] = tab[256 + s3] ^ rk[15]
