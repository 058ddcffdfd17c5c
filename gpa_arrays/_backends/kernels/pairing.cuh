// Counter-based pairing: the C twin of gpa_arrays/_pairing.py.
//
// Same constants, same operations in the same order, so that a seed gives
// bit-identical target indices on every backend (tests/test_cuda_source.py
// runs this file on the host against the NumPy reference). The algorithm and
// its sources are described in _pairing.py; the comments here only note where
// the C differs in form.
#pragma once

#include "common.cuh"

#define GPA_GOLDEN 0x9E3779B97F4A7C15ULL
#define GPA_ROUNDS 6
#define GPA_KEYS (GPA_ROUNDS + 1)

#define GPA_KIND_PERMUTATION 0
#define GPA_KIND_RANDOM 1
#define GPA_KIND_IDENTITY 2
#define GPA_KIND_ARRAY 3

// Kernel parameters describing a pairing (gpa_arrays._backends._cuda.pairing_args
// packs them in this order). `index` is the explicit (count,) int64 pairing of
// KIND_ARRAY, with its stride in elements, and null otherwise.
#define GPA_PAIRING_PARAMS                                                       \
    int kind, gpa_i64 offset, gpa_u64 seed, gpa_u64 step, gpa_u64 radix_a,       \
        gpa_u64 radix_b, gpa_u64 domain, gpa_u64 targets, double inv_b,          \
        double inv_m, const gpa_i64 *index, gpa_i64 index_stride
#define GPA_PAIRING_ARGS                                                         \
    kind, offset, seed, step, radix_a, radix_b, domain, targets, inv_b, inv_m,   \
        index, index_stride

// SplitMix64's output function (_pairing.mix64).
__device__ __forceinline__ gpa_u64 gpa_mix64(gpa_u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// _pairing.round_keys: 32-bit keys for the Feistel rounds, a 64-bit one for
// the random pairing.
__device__ __forceinline__ void gpa_round_keys(gpa_u64 seed, gpa_u64 step, gpa_u64 keys[GPA_KEYS]) {
    const gpa_u64 stream = gpa_mix64(seed ^ gpa_mix64(step + GPA_GOLDEN));
    for (int r = 0; r < GPA_ROUNDS; ++r) {
        keys[r] = gpa_mix64(stream + (gpa_u64)(r + 1) * GPA_GOLDEN) >> 32;
    }
    keys[GPA_ROUNDS] = gpa_mix64(stream + (gpa_u64)(GPA_ROUNDS + 1) * GPA_GOLDEN);
}

// _pairing.mix32: two folded 32 x 32 -> 64-bit products (a mul.wide.u32 each).
__device__ __forceinline__ gpa_u32 gpa_mix32(gpa_u32 x) {
    gpa_u64 h = (gpa_u64)x * 0x9E3779B1ULL;
    x = (gpa_u32)(h ^ (h >> 32));
    h = (gpa_u64)x * 0x85EBCA77ULL;
    return (gpa_u32)(h ^ (h >> 32));
}

// _pairing.feistel_round: (L, R) -> (R, (L + F(R)) mod m) with L, R, m < 2**24;
// the round function works on 32-bit words (the key is one).
__device__ __forceinline__ void gpa_feistel_round(gpa_u64 &left, gpa_u64 &right, gpa_u64 key, gpa_u64 m) {
    const gpa_u64 f = ((gpa_u64)gpa_mix32((gpa_u32)(right ^ key)) * m) >> 32;
    const gpa_u64 t = left + f;
    const gpa_u64 wrapped = t - m;
    left = right;
    right = wrapped < t ? wrapped : t;  // min(t, t - m), as unsigned
}

// _pairing.feistel_rounds: six rounds written out, alternating the radices.
__device__ __forceinline__ void gpa_feistel_rounds(gpa_u64 &left, gpa_u64 &right, const gpa_u64 keys[GPA_KEYS],
                                                   gpa_u64 a, gpa_u64 b) {
    gpa_feistel_round(left, right, keys[0], a);
    gpa_feistel_round(left, right, keys[1], b);
    gpa_feistel_round(left, right, keys[2], a);
    gpa_feistel_round(left, right, keys[3], b);
    gpa_feistel_round(left, right, keys[4], a);
    gpa_feistel_round(left, right, keys[5], b);
}

// (x / d, x % d) for x < 2**48 without an integer division, exactly as the
// Numba kernels compute it (numba_._divmod_exact): the float64 quotient is off
// by at most one, and one correction each way makes it exact. A 64-bit integer
// division is a long software sequence on the GPU.
__device__ __forceinline__ void gpa_divmod(gpa_u64 x, gpa_u64 d, double inv_d, gpa_u64 &q, gpa_u64 &r) {
    q = (gpa_u64)((double)x * inv_d);
    r = x - q * d;
    const gpa_u64 high = r > x ? 1ULL : 0ULL;  // q one too large: r wrapped around
    q -= high;
    r += d * high;
    const gpa_u64 low = r >= d ? 1ULL : 0ULL;  // q one too small
    q += low;
    r -= d * low;
}

// One pass of the mixed-radix Feistel bijection of [0, a*b) (_pairing.feistel).
__device__ __forceinline__ gpa_u64 gpa_feistel(gpa_u64 x, const gpa_u64 keys[GPA_KEYS], gpa_u64 a, gpa_u64 b,
                                               double inv_b) {
    gpa_u64 left, right;
    gpa_divmod(x, b, inv_b, left, right);
    gpa_feistel_rounds(left, right, keys, a, b);
    return left * b + right;
}

// _pairing.mulhi64: the high 64 bits of x * y from four 32-bit products.
__device__ __forceinline__ gpa_u64 gpa_mulhi64(gpa_u64 x, gpa_u64 y) {
    const gpa_u64 mask = 0xFFFFFFFFULL;
    const gpa_u64 x0 = x & mask, x1 = x >> 32;
    const gpa_u64 y0 = y & mask, y1 = y >> 32;
    const gpa_u64 p00 = x0 * y0, p01 = x0 * y1, p10 = x1 * y0, p11 = x1 * y1;
    const gpa_u64 mid = (p00 >> 32) + (p01 & mask) + (p10 & mask);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

// Target of global source pose `i` for the counter-based kinds (permutation,
// random, identity); the explicit KIND_ARRAY is read by the caller.
__device__ __forceinline__ gpa_u64 gpa_pair_target(gpa_u64 i, int kind, const gpa_u64 keys[GPA_KEYS], gpa_u64 a,
                                                   gpa_u64 b, gpa_u64 k, gpa_u64 m, double inv_b, double inv_m) {
    if (kind == GPA_KIND_IDENTITY) {
        return i;
    }
    if (kind == GPA_KIND_RANDOM) {
        return gpa_mulhi64(gpa_mix64(keys[GPA_ROUNDS] + (i + 1ULL) * GPA_GOLDEN), m);
    }
    gpa_u64 x = gpa_feistel(i, keys, a, b, inv_b);
    while (x >= k) {  // cycle walking: fewer than 1 / sqrt(k) of the points
        x = gpa_feistel(x, keys, a, b, inv_b);
    }
    if (k > m) {  // N > M: fold a permutation of [0, N) onto [0, M)
        gpa_u64 q;
        gpa_divmod(x, m, inv_m, q, x);
    }
    return x;
}

// The target of local source pose i: the explicit index, or the counter-based
// pairing of global pose offset + i. Explicit indices may lie outside [0, m);
// the caller checks. Takes the kernel's pairing parameters as they are (they
// stay in the kernel parameter space instead of occupying registers) and the
// round keys the kernel computed from seed and step.
__device__ __forceinline__ gpa_i64 gpa_target_index(gpa_i64 i, const gpa_u64 keys[GPA_KEYS], GPA_PAIRING_PARAMS) {
    (void)seed;  // already folded into keys
    (void)step;
    if (kind == GPA_KIND_ARRAY) {
        return index[i * index_stride];
    }
    return (gpa_i64)gpa_pair_target((gpa_u64)(offset + i), kind, keys, radix_a, radix_b, domain, targets, inv_b,
                                    inv_m);
}
