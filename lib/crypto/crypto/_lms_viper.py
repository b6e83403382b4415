# The LM-OTS chain walk of crypto.lms in viper: digit extraction, chain bookkeeping and the 32-byte copies run
# as machine code, so the time goes into hashlib's SHA-256 calls. Kept in its own module: a port without the
# viper emitter fails to compile only this file and lms.py keeps its Python loop (it also checks this one
# against a known answer before use).
import micropython


@micropython.viper
def chains(qp: ptr8, z: ptr8, work, sha) -> int:
    # qp: Q || Cksm(Q) (34 bytes), then w, p >> 8, p & 0xFF.
    # z: I || u32str(q) || D_PBLC || y[0] .. y[p-1]; each y[i] is advanced in place to z[i].
    # work: I || u32str(q) || u16str(i) || u8str(j) || tmp (55 bytes), hashed by sha(work).
    wk = ptr8(work)
    w = int(qp[34])
    p = (int(qp[35]) << 8) | int(qp[36])
    top = (1 << w) - 1
    calls = 0
    i = 0
    bi = 0
    shift = 8 - w
    while i < p:
        a = (int(qp[bi]) >> shift) & top
        if a != top:
            zo = 22 + (i << 5)
            wk[20] = i >> 8
            wk[21] = i & 0xFF
            k = 0
            while k < 32:
                wk[23 + k] = z[zo + k]
                k += 1
            j = a
            while j < top:
                wk[22] = j
                d = ptr8(sha(work).digest())
                k = 0
                while k < 32:
                    wk[23 + k] = d[k]
                    k += 1
                j += 1
                calls += 1
            k = 0
            while k < 32:
                z[zo + k] = wk[23 + k]
                k += 1
        i += 1
        if shift == 0:
            shift = 8 - w
            bi += 1
        else:
            shift -= w
    return calls
