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
    /* i is a multiple of 4 here, so the key phase is key[0] again. */
    for (size_t j = 0; i < n; i++, j++) {
        dst[i] = src[i] ^ key[j];
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
 * The state packs what the next byte must be: bits 0-7 the lowest allowed
 * byte, 8-15 the highest, 16-17 how many continuation bytes are still owed.
 * State 0 means "between code points".  The first byte narrows the range of
 * the second one, which rejects overlong forms (E0 80..9F, F0 80..8F),
 * surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..BF) at the
 * second byte, as soon as they can be told apart.
 * Returns the new state, or UINT32_MAX at the first invalid byte, with
 * *bad set to its index.
 */
#define FF_UTF8_BAD UINT32_MAX
#define FF_UTF8_NEED(k, lo, hi) (((uint32_t)(k) << 16) | ((uint32_t)(hi) << 8) | (uint32_t)(lo))

static inline uint32_t
ff_utf8_step(uint32_t state, const uint8_t *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        if (state == 0) {
            /* ASCII runs, 8 bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            while (i < n && s[i] < 0x80)
                i++;
            if (i >= n)
                break;
            uint8_t c = s[i];
            if (c >= 0xC2 && c <= 0xDF)
                state = FF_UTF8_NEED(1, 0x80, 0xBF);
            else if (c == 0xE0)
                state = FF_UTF8_NEED(2, 0xA0, 0xBF);
            else if (c == 0xED)
                state = FF_UTF8_NEED(2, 0x80, 0x9F);
            else if (c >= 0xE1 && c <= 0xEF)
                state = FF_UTF8_NEED(2, 0x80, 0xBF);
            else if (c == 0xF0)
                state = FF_UTF8_NEED(3, 0x90, 0xBF);
            else if (c >= 0xF1 && c <= 0xF3)
                state = FF_UTF8_NEED(3, 0x80, 0xBF);
            else if (c == 0xF4)
                state = FF_UTF8_NEED(3, 0x80, 0x8F);
            else {
                *bad = i;
                return FF_UTF8_BAD;
            }
            i++;
        }
        else {
            uint8_t c = s[i];
            if (c < (state & 0xFF) || c > ((state >> 8) & 0xFF)) {
                *bad = i;
                return FF_UTF8_BAD;
            }
            uint32_t k = (state >> 16) - 1;
            state = k ? FF_UTF8_NEED(k, 0x80, 0xBF) : 0;
            i++;
        }
    }
    return state;
}

#endif /* FASTFRAME_MASK_H */
