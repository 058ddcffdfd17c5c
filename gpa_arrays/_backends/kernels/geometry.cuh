// Camera projection and the perspective depth solve: the C twin of
// gpa_arrays/_geometry.py.
//
// Same operations in the same order as the Python functions of that module
// (which the NumPy reference applies to arrays and the Numba kernels compile
// for scalars), so that with --fmad=false the results are the same bits. The
// model and the derivation of the solve are documented there; comments here
// only say where the C differs in form.
#pragma once

#include "common.cuh"

// Feature bits of the extended GPA kernels (gpa.cu): which extra work a
// launch does, fixed at compile time so that what is not asked for costs no
// registers.
#define GPA_FEATURE_PROJECT 1
#define GPA_FEATURE_PERSPECTIVE 2

// ---------------------------------------------------------------------------
// Projection (_geometry.clamp_unit, project_linear, project_distorted), in the
// data's precision.
// ---------------------------------------------------------------------------

// _geometry.clamp_unit: two selects, NaN stays NaN.
template <class T>
__device__ __forceinline__ T gpa_clamp_unit(T a) {
    const T one = T(1), minus_one = T(-1);
    return gpa_fp<T>::lt(a, minus_one) ? minus_one : (gpa_fp<T>::lt(one, a) ? one : a);
}

template <class T>
__device__ __forceinline__ void gpa_project_linear(T x, T y, T z, T fx, T fy, T cx, T cy, T &u, T &v) {
    typedef gpa_fp<T> F;
    const T a = gpa_clamp_unit(F::div(x, z));
    const T b = gpa_clamp_unit(F::div(y, z));
    u = F::add(F::mul(fx, a), cx);
    v = F::add(F::mul(fy, b), cy);
}

// `k` points at k1, with stride `ks`: k1, k2, k3, p1, p2.
template <class T>
__device__ __forceinline__ void gpa_project_distorted(T x, T y, T z, T fx, T fy, T cx, T cy, const T *k, gpa_i64 ks,
                                                      T &u, T &v) {
    typedef gpa_fp<T> F;
    const T k1 = k[0], k2 = k[ks], k3 = k[2 * ks], p1 = k[3 * ks], p2 = k[4 * ks];
    const T a = gpa_clamp_unit(F::div(x, z));
    const T b = gpa_clamp_unit(F::div(y, z));
    const T r2 = F::add(F::mul(a, a), F::mul(b, b));
    const T r4 = F::mul(r2, r2);
    const T r6 = F::mul(r4, r2);
    const T radial = F::add(T(1), F::add(F::add(F::mul(k1, r2), F::mul(k2, r4)), F::mul(k3, r6)));
    const T factor = F::add(radial, F::add(F::mul(p1, a), F::mul(p2, b)));
    u = F::add(F::mul(fx, F::add(F::mul(a, factor), F::mul(p1, r2))), cx);
    v = F::add(F::mul(fy, F::add(F::mul(b, factor), F::mul(p2, r2))), cy);
}

// One point through one camera row: the distortion model when `k` is not null.
template <class T>
__device__ __forceinline__ void gpa_project_point(T x, T y, T z, T fx, T fy, T cx, T cy, const T *k, gpa_i64 ks, T &u,
                                                  T &v) {
    if (k == 0) {
        gpa_project_linear(x, y, z, fx, fy, cx, cy, u, v);
    } else {
        gpa_project_distorted(x, y, z, fx, fy, cx, cy, k, ks, u, v);
    }
}

// ---------------------------------------------------------------------------
// The perspective depth solve, in float64 whatever the data's precision
// (_geometry.joint_offset, track_max, track_min, box_and_slope, depth_update,
// and the per-pose loop of numba_._perspective_depth). float64 arithmetic is
// never flushed, and --fmad=false keeps every product rounded, so plain C
// operators give NumPy's bits here.
// ---------------------------------------------------------------------------

__device__ __forceinline__ void gpa_joint_offset(double a, double c, double ray, double inv_q, double &p, double &g) {
    p = (a - ray * c) * inv_q;
    g = p * inv_q;
}

// Ties keep the earlier joint (a strict comparison, as the selects of numpy).
__device__ __forceinline__ void gpa_track_max(double p, double g, double &p_max, double &g_max) {
    const bool up = p > p_max;
    p_max = up ? p : p_max;
    g_max = up ? g : g_max;
}

__device__ __forceinline__ void gpa_track_min(double p, double g, double &p_min, double &g_min) {
    const bool down = p < p_min;
    p_min = down ? p : p_min;
    g_min = down ? g : g_min;
}

__device__ __forceinline__ void gpa_box_and_slope(double fx, double fy, double x_max, double x_min, double y_max,
                                                  double y_min, double gx_max, double gx_min, double gy_max,
                                                  double gy_min, double &t, double &slope) {
    t = fx * (x_max - x_min) + fy * (y_max - y_min);
    slope = fx * (gx_min - gx_max) + fy * (gy_min - gy_max);
}

// One safeguarded Newton step; returns the next depth and tightens [lo, hi].
__device__ __forceinline__ double gpa_depth_update(double z, double t, double slope, double d, double &lo,
                                                   double &hi) {
    const bool above = t > d;
    lo = above ? z : lo;
    hi = above ? hi : z;
    const double step = z + t * (d - t) / (d * slope);
    const bool inside = (step > lo) & (step < hi);
    const double fallback = hi < gpa_bits<double>::infinity() ? (lo + hi) * 0.5 : z + z;
    return inside ? step : fallback;
}

// Root depth of one pose whose perspective box scale is the target's
// (numba_._perspective_depth). `src` points at joint 0 with joint and
// coordinate strides `sj`, `sc`; z0 is the weak depth (positive and finite),
// (u, v) the target root's ray, fx, fy the focal lengths and d twice the
// target's box scale. Writes the depth (the last iterate when unsolved) and
// returns whether the tolerance was met within the budget.
template <class T>
__device__ __forceinline__ bool gpa_perspective_depth(const T *src, gpa_i64 sj, gpa_i64 sc, int joints, int root,
                                                      double z0, double u, double v, double fx, double fy, double d,
                                                      int max_iterations, double tolerance, double &depth) {
    typedef gpa_fp<T> F;
    const double rx = F::widen(src[root * sj]);
    const double ry = F::widen(src[root * sj + sc]);
    const double rz = F::widen(src[root * sj + 2 * sc]);
    double lo = 0.0;
    for (int k = 0; k < joints; ++k) {
        lo = gpa_max(lo, -(F::widen(src[k * sj + 2 * sc]) - rz));  // numpy.maximum, NaN included
    }
    double z = z0 > lo ? z0 : lo + lo;
    double hi = gpa_bits<double>::infinity();
    for (int iteration = 0; iteration < max_iterations; ++iteration) {
        double x_max = 0.0, x_min = 0.0, y_max = 0.0, y_min = 0.0;
        double gx_max = 0.0, gx_min = 0.0, gy_max = 0.0, gy_min = 0.0;
        for (int k = 0; k < joints; ++k) {
            const double c = F::widen(src[k * sj + 2 * sc]) - rz;
            const double inv_q = 1.0 / (z + c);
            double p, g;
            gpa_joint_offset(F::widen(src[k * sj]) - rx, c, u, inv_q, p, g);
            gpa_track_max(p, g, x_max, gx_max);
            gpa_track_min(p, g, x_min, gx_min);
            gpa_joint_offset(F::widen(src[k * sj + sc]) - ry, c, v, inv_q, p, g);
            gpa_track_max(p, g, y_max, gy_max);
            gpa_track_min(p, g, y_min, gy_min);
        }
        double t, slope;
        gpa_box_and_slope(fx, fy, x_max, x_min, y_max, y_min, gx_max, gx_min, gy_max, gy_min, t, slope);
        if (gpa_bits<double>::abs(t - d) <= tolerance * d) {
            depth = z;
            return true;
        }
        z = gpa_depth_update(z, t, slope, d, lo, hi);
    }
    depth = z;
    return false;
}
