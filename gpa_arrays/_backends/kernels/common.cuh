// Shared definitions of the CUDA kernels: integer types, exact IEEE arithmetic,
// bit-level floating-point tests and the status counters.
//
// Everything here compiles three ways: by NVRTC for the device (the CuPy
// backend), and by a host C++ compiler through host_shim.h (the tests, which
// run these very functions against the NumPy reference). Code that differs
// between device and host is confined to this file and guarded by
// __CUDA_ARCH__.
#pragma once

typedef long long gpa_i64;
typedef unsigned long long gpa_u64;
typedef unsigned int gpa_u32;

// The dynamic shared memory of a block, as 16-byte vectors (declared once per
// kernel with one element type, whatever T the kernel works in).
#ifndef GPA_DYNAMIC_SHARED
#define GPA_DYNAMIC_SHARED(name) extern __shared__ uint4 name[]
#endif

// Loop unrolling hints for NVRTC (host_shim.h defines them away). Loops over
// the entries of small matrices are unrolled so that their indices become
// constants and the matrices stay in registers.
#ifndef GPA_UNROLL
#define GPA_UNROLL _Pragma("unroll")
#define GPA_NO_UNROLL _Pragma("unroll 1")
#endif

// Status categories: the numbering of gpa_arrays/_status.py.
#define GPA_POSE_NONFINITE 0
#define GPA_POSE_DEGENERATE 1
#define GPA_POSE_INDEX 2
#define GPA_POSE_NO_DEPTH 3
#define GPA_POSE_BEHIND 4
#define GPA_POSE_PRECISION 5
#define GPA_TARGET_NONFINITE 0
#define GPA_TARGET_DEGENERATE 1
#define GPA_TARGET_CAMERA 2
#define GPA_TARGET_DISTORTION 3
#define GPA_POINT_NONFINITE 0
#define GPA_POINT_BEHIND 1
#define GPA_POINT_CAMERA 2

// gpa_arrays._status.PRECISION_TOLERANCE: the fraction of a pose's size that
// the rounding of its placed coordinates may take (GPA_POSE_PRECISION).
#define GPA_PRECISION_TOLERANCE 1e-3

// Floats per prepared target record (gpa_arrays/_backends/numpy_.py).
#define GPA_RECORD_WIDTH 8

// ---------------------------------------------------------------------------
// Exact IEEE arithmetic.
//
// The NumPy reference rounds every operation to the array's precision and
// keeps subnormal numbers. On the device two compiler habits would break that:
// contraction of a*b + c into one fused multiply-add (prevented by compiling
// with --fmad=false, and by the explicit .rn rounding of the PTX below, which
// ptxas never contracts), and flushing float32 subnormals to zero, which CuPy
// requests for every RawModule by appending -ftz=true to the user's options
// (cupy/cuda/compiler.py, _compile_with_cache_cuda; the last -ftz wins). The
// float specialisation therefore spells its operations in inline PTX without
// the .ftz modifier, which no compiler flag can change. float64 arithmetic is
// never flushed.
// ---------------------------------------------------------------------------

// The plain operators: what float64 uses everywhere, and float32 on the host
// (host_shim.h), where nothing flushes; the device's float32 follows.
template <class T>
struct gpa_fp {
    static __device__ __forceinline__ T add(T a, T b) { return a + b; }
    static __device__ __forceinline__ T sub(T a, T b) { return a - b; }
    static __device__ __forceinline__ T mul(T a, T b) { return a * b; }
    static __device__ __forceinline__ T div(T a, T b) { return a / b; }
    static __device__ __forceinline__ bool lt(T a, T b) { return a < b; }
    static __device__ __forceinline__ double widen(T a) { return (double)a; }
    static __device__ __forceinline__ T narrow(double a) { return (T)a; }
};

#ifdef __CUDA_ARCH__
// One correctly rounded float operation `op` (a PTX opcode), without .ftz.
#define GPA_FP32_BINARY(name, op)                                        \
    static __device__ __forceinline__ float name(float a, float b) {     \
        float r;                                                         \
        asm(op " %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));               \
        return r;                                                        \
    }
template <>
struct gpa_fp<float> {
    GPA_FP32_BINARY(add, "add.rn.f32")
    GPA_FP32_BINARY(sub, "sub.rn.f32")
    GPA_FP32_BINARY(mul, "mul.rn.f32")
    GPA_FP32_BINARY(div, "div.rn.f32")
    static __device__ __forceinline__ bool lt(float a, float b) {
        unsigned int r;
        asm("{\n\t.reg .pred p;\n\tsetp.lt.f32 p, %1, %2;\n\tselp.u32 %0, 1, 0, p;\n\t}"
            : "=r"(r)
            : "f"(a), "f"(b));
        return r != 0;
    }
    // float <-> double conversions: under -ftz=true NVRTC would emit the .ftz
    // forms, which flush float subnormals on the way in and out
    static __device__ __forceinline__ double widen(float a) {
        double r;
        asm("cvt.f64.f32 %0, %1;" : "=d"(r) : "f"(a));
        return r;
    }
    static __device__ __forceinline__ float narrow(double a) {
        float r;
        asm("cvt.rn.f32.f64 %0, %1;" : "=f"(r) : "d"(a));
        return r;
    }
};
#undef GPA_FP32_BINARY
#endif

// Correctly rounded float64 square root (IEEE, as NumPy's), whatever the flags.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ double gpa_sqrt(double x) { return __dsqrt_rn(x); }
#else
__device__ __forceinline__ double gpa_sqrt(double x) { return __builtin_sqrt(x); }
#endif

// ---------------------------------------------------------------------------
// Classification by bit pattern: no floating-point operation, so no flag can
// change the answer.
// ---------------------------------------------------------------------------

template <class T>
struct gpa_bits;

template <>
struct gpa_bits<float> {
    static __device__ __forceinline__ bool finite(float x) {
        return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u;
    }
    static __device__ __forceinline__ bool nan(float x) {
        return (__float_as_uint(x) & 0x7fffffffu) > 0x7f800000u;
    }
    // NumPy's np.nan rounded to float32
    static __device__ __forceinline__ float quiet_nan() { return __uint_as_float(0x7fc00000u); }
    // |x|, by clearing the sign bit (no -ftz flush of a subnormal |x|)
    static __device__ __forceinline__ float abs(float x) { return __uint_as_float(__float_as_uint(x) & 0x7fffffffu); }
    // machine epsilon, 2**-23 (np.finfo(np.float32).eps)
    static __device__ __forceinline__ double eps() { return 1.1920928955078125e-07; }
    static __device__ __forceinline__ float infinity() { return __uint_as_float(0x7f800000u); }
};

template <>
struct gpa_bits<double> {
    static __device__ __forceinline__ bool finite(double x) {
        return ((gpa_u64)__double_as_longlong(x) & 0x7ff0000000000000ULL) != 0x7ff0000000000000ULL;
    }
    static __device__ __forceinline__ bool nan(double x) {
        return ((gpa_u64)__double_as_longlong(x) & 0x7fffffffffffffffULL) > 0x7ff0000000000000ULL;
    }
    // machine epsilon, 2**-52 (np.finfo(np.float64).eps)
    static __device__ __forceinline__ double eps() { return 2.220446049250313e-16; }
    // np.nan
    static __device__ __forceinline__ double quiet_nan() {
        return __longlong_as_double((long long)0x7ff8000000000000ULL);
    }
    static __device__ __forceinline__ double infinity() {
        return __longlong_as_double((long long)0x7ff0000000000000ULL);
    }
    // |x|, by clearing the sign bit (fabs, without a math header)
    static __device__ __forceinline__ double abs(double x) {
        return __longlong_as_double((long long)((gpa_u64)__double_as_longlong(x) & 0x7fffffffffffffffULL));
    }
};

// min and max as NumPy's reductions compute them: NaN wins (np.min and np.max
// propagate it), otherwise the ordinary ordering. The value of a pose's extent
// therefore matches the reference bit for bit whenever it is finite, and is
// NaN exactly when the reference's is.
template <class T>
__device__ __forceinline__ T gpa_min(T m, T x) {
    return (gpa_fp<T>::lt(x, m) || gpa_bits<T>::nan(x)) ? x : m;
}

template <class T>
__device__ __forceinline__ T gpa_max(T m, T x) {
    return (gpa_fp<T>::lt(m, x) || gpa_bits<T>::nan(x)) ? x : m;
}

template <class T>
__device__ __forceinline__ bool gpa_positive(T x) {
    return gpa_fp<T>::lt(T(0), x);
}

// The precision criterion of GPA_POSE_PRECISION (gpa_arrays._status.
// precision_factor), in two halves so that one value crosses the code between
// them: gpa_precision_limit(dx, dy) = K * max(dx, dy) from the pose's 2D extent,
// K = T(GPA_PRECISION_TOLERANCE / eps) (exact in double: eps is a power of two;
// rounded to T once, as NumPy rounds it), and gpa_precision_lost, whether a
// pose placed at (px, py, z) (z > 0, all finite) lies beyond it:
// max(|px|, |py|, z) > limit, so that the rounding of its coordinates in T
// destroys its shape. Evaluated in T, as the host backends do.
template <class T>
__device__ __forceinline__ T gpa_precision_limit(T dx, T dy) {
    const T factor = gpa_fp<T>::narrow(GPA_PRECISION_TOLERANCE / gpa_bits<T>::eps());
    return gpa_fp<T>::mul(factor, gpa_max(dx, dy));
}

template <class T>
__device__ __forceinline__ bool gpa_precision_lost(T px, T py, T z, T limit) {
    const T far = gpa_max(gpa_max(gpa_bits<T>::abs(px), gpa_bits<T>::abs(py)), z);
    return gpa_fp<T>::lt(limit, far);
}

// ---------------------------------------------------------------------------
// Status counters.
//
// A status buffer holds, per category, the number of flagged items and
// max(n - i) over the flagged indices i, so that a zero-filled buffer is the
// clean state and the first flagged index is n - max (decoded on the host by
// gpa_arrays._backends._cuda.decode_status). A null buffer switches counting
// off (check=False).
// ---------------------------------------------------------------------------

//
// On the device the lanes of a warp that flag the same category together are
// counted by one lane with one pair of atomics (warp aggregation): a batch in
// which every item is bad would otherwise queue two atomics per item on the
// same two addresses. Any subset of lanes may arrive; each group of lanes with
// one category makes its own pair, so the totals are those of one atomic pair
// per item, in any order.
__device__ __forceinline__ void gpa_flag(gpa_u64* status, int category, gpa_i64 i, gpa_i64 n) {
    if (status == 0) {
        return;
    }
    gpa_u64 count = 1ULL, value = (gpa_u64)(n - i);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
    const unsigned active = __activemask();
    const unsigned peers = __match_any_sync(active, category);
    count = (gpa_u64)__popc(peers);
    // max(n - i) over the peers: every peer walks the same lanes, so each
    // shuffle is executed by exactly the lanes its mask names
    for (unsigned rest = peers; rest != 0u; rest &= rest - 1u) {
        const gpa_u64 other = __shfl_sync(peers, value, __ffs(rest) - 1);
        value = other > value ? other : value;
    }
    if ((int)(threadIdx.x & 31u) != __ffs(peers) - 1) {
        return;  // the lowest peer writes for the group
    }
#endif
    atomicAdd(status + 2 * category, count);
    atomicMax(status + 2 * category + 1, value);
}
