/* XOR masking for RFC 6455 §5.3, shared by the compiled codec.
 *
 * ff_mask_copy(dst, src, n, key) writes src ^ key-repeated to dst; dst == src
 * masks in place.  `key` is the 4 mask bytes already rotated to the phase of
 * src[0] (the caller rotates when a payload arrives in pieces).
 *
 * Loads and stores go through memcpy so that unaligned buffers are legal C;
 * compilers turn them into plain moves.  On x86-64 the bulk runs 32 bytes per
 * step with AVX2 when the CPU has it (checked once, at run time) and 16 bytes
 * with SSE2 otherwise (SSE2 is part of x86-64).  Normal stores, not
 * non-temporal ones: masked payloads are read again right away, so they should
 * stay in cache.  Elsewhere a 64-bit word loop, which compilers vectorise.
 */
#ifndef FASTFRAME_MASK_H
#define FASTFRAME_MASK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FF_X86 1
#include <immintrin.h>
#endif

static inline void
ff_mask_tail(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
    uint64_t k64;
    uint32_t k32;
    size_t i = 0;
    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    if (i + 4 <= n) {
        uint32_t w;
        memcpy(&w, src + i, 4);
        w ^= k32;
        memcpy(dst + i, &w, 4);
        i += 4;
    }
    /* i is a multiple of 4 here, so the key phase is key[0] again, and at
     * most 3 bytes are left (j & 3 says so to the compiler, which otherwise
     * warns that key[j] may read past the key). */
    for (size_t j = 0; i < n; i++, j++) {
        dst[i] = src[i] ^ key[j & 3];
    }
}

#ifdef FF_X86
__attribute__((target("avx2"))) static size_t
ff_mask_avx2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    size_t i = 0;
    memcpy(&k32, key, 4);
    __m256i k = _mm256_set1_epi32((int)k32);
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
        _mm256_storeu_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, k));
        _mm256_storeu_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, k));
        _mm256_storeu_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, k));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
    }
    return i;
}

static size_t
ff_mask_sse2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    size_t i = 0;
    memcpy(&k32, key, 4);
    __m128i k = _mm_set1_epi32((int)k32);
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
        _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
        _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
    }
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
    }
    return i;
}

/* 1 = AVX2, 0 = SSE2, -1 = not yet known. */
static int ff_have_avx2 = -1;

static inline int
ff_detect_avx2(void)
{
    if (ff_have_avx2 < 0) {
        __builtin_cpu_init();
        ff_have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return ff_have_avx2;
}
#endif /* FF_X86 */

/* Below this size the word loop wins over the call into the wide loops. */
#define FF_WIDE_MIN 64

static inline void
ff_mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4])
{
#ifdef FF_X86
    if (n >= FF_WIDE_MIN) {
        /* Wide loops consume a multiple of 16 bytes, so the phase of the
         * key is unchanged for the rest. */
        size_t done = ff_detect_avx2() ? ff_mask_avx2(dst, src, n, key)
                                       : ff_mask_sse2(dst, src, n, key);
        dst += done;
        src += done;
        n -= done;
    }
#endif
    ff_mask_tail(dst, src, n, key);
}

/* The key as seen from a byte `offset` bytes into the payload. */
static inline void
ff_rotate_key(uint8_t out[4], const uint8_t key[4], size_t offset)
{
    size_t r = offset & 3;
    out[0] = key[r];
    out[1] = key[(r + 1) & 3];
    out[2] = key[(r + 2) & 3];
    out[3] = key[(r + 3) & 3];
}

/* UTF-8 validation, RFC 3629 §4, fail-fast.
 *
 * A shift-based DFA: each state is a multiple of 6, and the row of a byte
 * packs, for every state, the next state into 6 bits at that state's offset:
 * next = (ff_utf8_rows[byte] >> state) & 63.  One load, one shift, one AND
 * per byte, no branches.  The states narrow the range of the byte after a
 * lead byte, which rejects overlong forms (E0 80..9F, F0 80..8F), surrogates
 * (ED A0..BF) and code points above U+10FFFF (F4 90..BF) at the second byte,
 * as soon as they can be told apart.  ERROR is absorbing.
 * The table is built once by ff_utf8_init() from the transitions below.
 */
enum {
    FF_U_ACCEPT = 0,   /* between code points */
    FF_U_ERROR = 6,
    FF_U_C1 = 12,      /* one continuation byte owed, 80..BF */
    FF_U_C2 = 18,      /* two owed, next 80..BF */
    FF_U_E0 = 24,      /* two owed, next A0..BF (no overlong) */
    FF_U_ED = 30,      /* two owed, next 80..9F (no surrogate) */
    FF_U_F0 = 36,      /* three owed, next 90..BF (no overlong) */
    FF_U_F1 = 42,      /* three owed, next 80..BF */
    FF_U_F4 = 48       /* three owed, next 80..8F (<= U+10FFFF) */
};
#define FF_UTF8_ERROR FF_U_ERROR

static uint64_t ff_utf8_rows[256];

static inline void
ff_utf8_set(int state, int lo, int hi, int next)
{
    for (int b = lo; b <= hi; b++) {
        ff_utf8_rows[b] &= ~((uint64_t)63 << state);
        ff_utf8_rows[b] |= (uint64_t)next << state;
    }
}

static void
ff_utf8_init(void)
{
    static const int states[] = {FF_U_ACCEPT, FF_U_ERROR, FF_U_C1, FF_U_C2, FF_U_E0,
                                 FF_U_ED, FF_U_F0, FF_U_F1, FF_U_F4};
    for (int b = 0; b < 256; b++) {
        ff_utf8_rows[b] = 0;
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
            ff_utf8_rows[b] |= (uint64_t)FF_U_ERROR << states[i];
    }
    ff_utf8_set(FF_U_ACCEPT, 0x00, 0x7F, FF_U_ACCEPT);
    ff_utf8_set(FF_U_ACCEPT, 0xC2, 0xDF, FF_U_C1);
    ff_utf8_set(FF_U_ACCEPT, 0xE0, 0xE0, FF_U_E0);
    ff_utf8_set(FF_U_ACCEPT, 0xE1, 0xEC, FF_U_C2);
    ff_utf8_set(FF_U_ACCEPT, 0xED, 0xED, FF_U_ED);
    ff_utf8_set(FF_U_ACCEPT, 0xEE, 0xEF, FF_U_C2);
    ff_utf8_set(FF_U_ACCEPT, 0xF0, 0xF0, FF_U_F0);
    ff_utf8_set(FF_U_ACCEPT, 0xF1, 0xF3, FF_U_F1);
    ff_utf8_set(FF_U_ACCEPT, 0xF4, 0xF4, FF_U_F4);
    ff_utf8_set(FF_U_C1, 0x80, 0xBF, FF_U_ACCEPT);
    ff_utf8_set(FF_U_C2, 0x80, 0xBF, FF_U_C1);
    ff_utf8_set(FF_U_E0, 0xA0, 0xBF, FF_U_C1);
    ff_utf8_set(FF_U_ED, 0x80, 0x9F, FF_U_C1);
    ff_utf8_set(FF_U_F0, 0x90, 0xBF, FF_U_C2);
    ff_utf8_set(FF_U_F1, 0x80, 0xBF, FF_U_C2);
    ff_utf8_set(FF_U_F4, 0x80, 0x8F, FF_U_C2);
}

/* Run the DFA over s[0:n] from `state`; returns the new state (FF_UTF8_ERROR
 * once an invalid byte was seen, with *bad set to its index). */
static inline uint32_t
ff_utf8_step(uint32_t state, const uint8_t *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        if (state == FF_U_ACCEPT) {
            /* ASCII runs, 16 then 8 bytes at a time. */
            while (i + 16 <= n) {
                uint64_t a, b;
                memcpy(&a, s + i, 8);
                memcpy(&b, s + i + 8, 8);
                if ((a | b) & 0x8080808080808080ULL)
                    break;
                i += 16;
            }
            if (i + 8 <= n) {
                uint64_t a;
                memcpy(&a, s + i, 8);
                if (!(a & 0x8080808080808080ULL))
                    i += 8;
            }
        }
        /* Then the DFA for a stretch; a stretch ends early only to check
         * for the error state, which is absorbing. */
        size_t start = i, stop = (n - i > 64) ? i + 64 : n;
        uint64_t st = state;
        for (; i < stop; i++)
            st = (ff_utf8_rows[s[i]] >> st) & 63;
        if (st == FF_U_ERROR) {
            /* Find the offending byte, for the message: rerun the stretch
             * one byte at a time, only on failure. */
            st = state;
            for (i = start; i < stop; i++) {
                st = (ff_utf8_rows[s[i]] >> st) & 63;
                if (st == FF_U_ERROR)
                    break;
            }
            *bad = i;
            return FF_U_ERROR;
        }
        state = (uint32_t)st;
    }
    return state;
}

#endif /* FASTFRAME_MASK_H */
