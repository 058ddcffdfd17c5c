// CUDA kernels of the CuPy backend for gpa_arrays.metrics: per-joint errors
// after an optional per-pose alignment, and the per-pose similarity fit.
//
// The C twin of the Numba metrics kernels (gpa_arrays/_backends/numba_.py,
// section "metrics"): one pose per thread, float64 arithmetic whatever the
// data's precision, the same operations in the same order (compiled with
// --fmad=false, so the same bits as Numba). The rotation is Horn's closed form
// (Horn, "Closed-form solution of absolute orientation using unit
// quaternions", JOSA A 4(4), 1987): the top eigenvector of a symmetric 4x4
// matrix, its eigenvalue found as the largest root of the characteristic
// polynomial by Newton's method (Theobald, Acta Cryst. A61, 2005), with cyclic
// Jacobi sweeps (Golub and Van Loan, Matrix Computations, 8.5) when that root
// is (nearly) repeated. numba_.py explains each step; the comments here only
// say where the C differs in form. The 4x4 matrices live in registers: every
// loop over their indices is unrolled, and the one index chosen at run time
// (the best cofactor row, the Jacobi column) selects among constants.
//
// Kernels
// -------
// gpa_joint_errors<T, ALIGN>
//                        errors (N, K) float64 of the K scored joints.
// gpa_procrustes_fit<T>  scale (N,), rotation (N, 3, 3), translation (N, 3).
#include "common.cuh"

// Alignment codes of numpy_.joint_errors.
#define GPA_ALIGN_NONE 0
#define GPA_ALIGN_SCALE 1
#define GPA_ALIGN_PROCRUSTES 2

// Newton iterations on the characteristic polynomial, the cofactor threshold
// below which the Jacobi sweeps take over, and the sweeps (numba_._QCP_*,
// _JACOBI_SWEEPS; tests/test_cuda_source.py checks they agree).
#define GPA_QCP_ITERATIONS 60
#define GPA_QCP_MIN_COFACTOR 1e-6
#define GPA_JACOBI_SWEEPS 12

#define GPA_JOINT_ERRORS_PARAMS(T)                                                   \
    const T *pred, gpa_i64 pred_s0, gpa_i64 pred_s1, gpa_i64 pred_s2, const T *tgt,  \
        gpa_i64 tgt_s0, gpa_i64 tgt_s1, gpa_i64 tgt_s2, gpa_i64 n,                   \
        const gpa_i64 *joints, gpa_i64 joints_s0, int selected, int root,            \
        double *errors, gpa_i64 errors_s0, gpa_i64 errors_s1, gpa_u64 *status
#define GPA_JOINT_ERRORS_ARGS                                                        \
    pred, pred_s0, pred_s1, pred_s2, tgt, tgt_s0, tgt_s1, tgt_s2, n, joints,         \
        joints_s0, selected, root, errors, errors_s0, errors_s1, status

#define GPA_PROCRUSTES_FIT_PARAMS(T)                                                 \
    const T *pred, gpa_i64 pred_s0, gpa_i64 pred_s1, gpa_i64 pred_s2, const T *tgt,  \
        gpa_i64 tgt_s0, gpa_i64 tgt_s1, gpa_i64 tgt_s2, gpa_i64 n,                   \
        const gpa_i64 *joints, gpa_i64 joints_s0, int selected, double *scale,       \
        double *rotation, double *translation, gpa_u64 *status
#define GPA_PROCRUSTES_FIT_ARGS                                                      \
    pred, pred_s0, pred_s1, pred_s2, tgt, tgt_s0, tgt_s1, tgt_s2, n, joints,         \
        joints_s0, selected, scale, rotation, translation, status

// One pose of (N, J, 3) data, strided: element (joint, coordinate).
template <class T>
struct gpa_pose_view {
    const T *base;
    gpa_i64 sj, sc;
    __device__ __forceinline__ double at(gpa_i64 joint, int coordinate) const {
        return gpa_fp<T>::widen(base[joint * sj + coordinate * sc]);
    }
};

// numba_._det3
__device__ __forceinline__ double gpa_det3(double a, double b, double c, double d, double e, double f, double g,
                                           double h, double i) {
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
}

// numba_._cofactor; `row` and `col` are constants wherever it is called, so
// the indices fold and `a` stays in registers.
__device__ __forceinline__ double gpa_cofactor(const double a[4][4], int row, int col) {
    const int r0 = row == 0 ? 1 : 0, r1 = row <= 1 ? 2 : 1, r2 = row <= 2 ? 3 : 2;
    const int c0 = col == 0 ? 1 : 0, c1 = col <= 1 ? 2 : 1, c2 = col <= 2 ? 3 : 2;
    const double m = gpa_det3(a[r0][c0], a[r0][c1], a[r0][c2], a[r1][c0], a[r1][c1], a[r1][c2], a[r2][c0],
                              a[r2][c1], a[r2][c2]);
    return (row + col) % 2 == 0 ? m : -m;
}

// numba_._jacobi_top_eigenvector: eigenvector of the largest eigenvalue of
// symmetric `a` (destroyed), written to q.
__device__ __forceinline__ void gpa_jacobi_top_eigenvector(double a[4][4], double q[4]) {
    double v[4][4];
    GPA_UNROLL
    for (int r = 0; r < 4; ++r) {
        GPA_UNROLL
        for (int c = 0; c < 4; ++c) {
            v[r][c] = r == c ? 1.0 : 0.0;
        }
    }
    GPA_NO_UNROLL
    for (int sweep = 0; sweep < GPA_JACOBI_SWEEPS; ++sweep) {
        double off = 0.0, total = 0.0;
        GPA_UNROLL
        for (int p = 0; p < 4; ++p) {
            total += a[p][p] * a[p][p];
            GPA_UNROLL
            for (int r = p + 1; r < 4; ++r) {
                off += a[p][r] * a[p][r];
            }
        }
        if (off <= 1e-32 * total) {
            break;
        }
        GPA_UNROLL
        for (int p = 0; p < 3; ++p) {
            GPA_UNROLL
            for (int r = p + 1; r < 4; ++r) {
                const int qq = r;  // numba's q
                const double apq = a[p][qq];
                if (apq == 0.0) {
                    continue;
                }
                const double theta = (a[qq][qq] - a[p][p]) / (2.0 * apq);
                double t;
                if (gpa_bits<double>::abs(theta) > 1e150) {
                    t = 0.5 / theta;
                } else {
                    t = 1.0 / (gpa_bits<double>::abs(theta) + gpa_sqrt(theta * theta + 1.0));
                    if (theta < 0.0) {
                        t = -t;
                    }
                }
                const double c = 1.0 / gpa_sqrt(t * t + 1.0);
                const double s = t * c;
                GPA_UNROLL
                for (int o = 0; o < 4; ++o) {
                    if (o != p && o != qq) {
                        const double arp = a[o][p];
                        const double arq = a[o][qq];
                        a[o][p] = c * arp - s * arq;
                        a[p][o] = a[o][p];
                        a[o][qq] = s * arp + c * arq;
                        a[qq][o] = a[o][qq];
                    }
                }
                a[p][p] -= t * apq;
                a[qq][qq] += t * apq;
                a[p][qq] = 0.0;
                a[qq][p] = 0.0;
                GPA_UNROLL
                for (int o = 0; o < 4; ++o) {
                    const double vrp = v[o][p];
                    const double vrq = v[o][qq];
                    v[o][p] = c * vrp - s * vrq;
                    v[o][qq] = s * vrp + c * vrq;
                }
            }
        }
    }
    int best = 0;
    double best_value = a[0][0];
    GPA_UNROLL
    for (int p = 1; p < 4; ++p) {
        if (a[p][p] > best_value) {
            best = p;
            best_value = a[p][p];
        }
    }
    GPA_UNROLL
    for (int r = 0; r < 4; ++r) {
        q[r] = v[r][0];
        GPA_UNROLL
        for (int c = 1; c < 4; ++c) {
            q[r] = best == c ? v[r][c] : q[r];
        }
    }
}

// numba_._horn_quaternion: the (unnormalised) quaternion of the rotation
// maximising sum_k r_k . R l_k, from S[a][b] = sum_k l_k[a] r_k[b] and an upper
// bound of the top eigenvalue.
__device__ __forceinline__ void gpa_horn_quaternion(const double s[3][3], double bound, double q[4]) {
    const double sxx = s[0][0], sxy = s[0][1], sxz = s[0][2];
    const double syx = s[1][0], syy = s[1][1], syz = s[1][2];
    const double szx = s[2][0], szy = s[2][1], szz = s[2][2];
    double a[4][4];
    a[0][0] = sxx + syy + szz;
    a[0][1] = a[1][0] = syz - szy;
    a[0][2] = a[2][0] = szx - sxz;
    a[0][3] = a[3][0] = sxy - syx;
    a[1][1] = sxx - syy - szz;
    a[1][2] = a[2][1] = sxy + syx;
    a[1][3] = a[3][1] = szx + sxz;
    a[2][2] = -sxx + syy - szz;
    a[2][3] = a[3][2] = syz + szy;
    a[3][3] = -sxx - syy + szz;
    double squares = 0.0;
    GPA_UNROLL
    for (int r = 0; r < 3; ++r) {
        GPA_UNROLL
        for (int c = 0; c < 3; ++c) {
            squares += s[r][c] * s[r][c];
        }
    }
    const double c2 = -2.0 * squares;
    const double c1 = -8.0 * gpa_det3(sxx, sxy, sxz, syx, syy, syz, szx, szy, szz);
    double c0 = 0.0;
    GPA_UNROLL
    for (int col = 0; col < 4; ++col) {
        c0 += a[0][col] * gpa_cofactor(a, 0, col);
    }
    double lam = bound;
    GPA_NO_UNROLL
    for (int iteration = 0; iteration < GPA_QCP_ITERATIONS; ++iteration) {
        const double lam2 = lam * lam;
        const double f = (lam2 + c2) * lam2 + c1 * lam + c0;
        const double df = (4.0 * lam2 + 2.0 * c2) * lam + c1;
        if (!(df > 0.0)) {  // at (or, by rounding, below) a repeated root
            break;
        }
        const double step = f / df;
        lam -= step;
        if (gpa_bits<double>::abs(step) <= 1e-15 * bound) {
            break;
        }
    }
    GPA_UNROLL
    for (int r = 0; r < 4; ++r) {
        a[r][r] -= lam;
    }
    int best = 0;
    double best_value = gpa_bits<double>::abs(gpa_cofactor(a, 0, 0));
    GPA_UNROLL
    for (int j = 1; j < 4; ++j) {
        const double value = gpa_bits<double>::abs(gpa_cofactor(a, j, j));
        if (value > best_value) {
            best = j;
            best_value = value;
        }
    }
    if (best_value > GPA_QCP_MIN_COFACTOR * bound * bound * bound) {
        GPA_UNROLL
        for (int col = 0; col < 4; ++col) {
            // row `best` of the adjugate, one constant row at a time
            double value = gpa_cofactor(a, 0, col);
            GPA_UNROLL
            for (int row = 1; row < 4; ++row) {
                value = best == row ? gpa_cofactor(a, row, col) : value;
            }
            q[col] = value;
        }
        return;
    }
    GPA_UNROLL
    for (int r = 0; r < 4; ++r) {
        a[r][r] += lam;
    }
    gpa_jacobi_top_eigenvector(a, q);
}

// A pose's similarity fit: tgt ~ scale * R (pred - mu_p) + mu_t.
struct gpa_fit {
    double scale;
    double r[3][3];
    double mu_t[3];
    double mu_p[3];
};

// numba_._fit_pose: 0, or 1 (a non-finite coordinate) or 2 (the selected
// predicted joints coincide). Coordinates are relative to joint `root` first
// when root >= 0.
template <class T>
__device__ __forceinline__ int gpa_fit_pose(const gpa_pose_view<T> &pred, const gpa_pose_view<T> &tgt,
                                            const gpa_i64 *joints, gpa_i64 joints_s0, int selected, int root,
                                            gpa_fit &fit) {
    double rp0 = 0.0, rp1 = 0.0, rp2 = 0.0, rt0 = 0.0, rt1 = 0.0, rt2 = 0.0;
    if (root >= 0) {
        rp0 = pred.at(root, 0);
        rp1 = pred.at(root, 1);
        rp2 = pred.at(root, 2);
        rt0 = tgt.at(root, 0);
        rt1 = tgt.at(root, 1);
        rt2 = tgt.at(root, 2);
    }
    double mp0 = 0.0, mp1 = 0.0, mp2 = 0.0, mt0 = 0.0, mt1 = 0.0, mt2 = 0.0;
    bool finite = true;
    for (int k = 0; k < selected; ++k) {
        const gpa_i64 jk = joints[k * joints_s0];
        const double p0 = pred.at(jk, 0) - rp0, p1 = pred.at(jk, 1) - rp1, p2 = pred.at(jk, 2) - rp2;
        const double t0 = tgt.at(jk, 0) - rt0, t1 = tgt.at(jk, 1) - rt1, t2 = tgt.at(jk, 2) - rt2;
        finite = finite && gpa_bits<double>::finite(p0) && gpa_bits<double>::finite(p1) &&
                 gpa_bits<double>::finite(p2) && gpa_bits<double>::finite(t0) && gpa_bits<double>::finite(t1) &&
                 gpa_bits<double>::finite(t2);
        mp0 += p0;
        mp1 += p1;
        mp2 += p2;
        mt0 += t0;
        mt1 += t1;
        mt2 += t2;
    }
    if (!finite) {
        return 1;
    }
    const double count = (double)selected;
    mp0 /= count;
    mp1 /= count;
    mp2 /= count;
    mt0 /= count;
    mt1 /= count;
    mt2 /= count;
    double s[3][3];
    GPA_UNROLL
    for (int r = 0; r < 3; ++r) {
        GPA_UNROLL
        for (int c = 0; c < 3; ++c) {
            s[r][c] = 0.0;
        }
    }
    double gp = 0.0, gt = 0.0;
    for (int k = 0; k < selected; ++k) {
        const gpa_i64 jk = joints[k * joints_s0];
        const double l0 = (pred.at(jk, 0) - rp0) - mp0;
        const double l1 = (pred.at(jk, 1) - rp1) - mp1;
        const double l2 = (pred.at(jk, 2) - rp2) - mp2;
        const double r0 = (tgt.at(jk, 0) - rt0) - mt0;
        const double r1 = (tgt.at(jk, 1) - rt1) - mt1;
        const double r2 = (tgt.at(jk, 2) - rt2) - mt2;
        s[0][0] += l0 * r0;
        s[0][1] += l0 * r1;
        s[0][2] += l0 * r2;
        s[1][0] += l1 * r0;
        s[1][1] += l1 * r1;
        s[1][2] += l1 * r2;
        s[2][0] += l2 * r0;
        s[2][1] += l2 * r1;
        s[2][2] += l2 * r2;
        gp += l0 * l0 + l1 * l1 + l2 * l2;
        gt += r0 * r0 + r1 * r1 + r2 * r2;
    }
    if (!(gp > 0.0)) {
        return 2;
    }
    double q[4];
    gpa_horn_quaternion(s, gpa_sqrt(gp * gt), q);
    const double q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
    const double norm = q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3;
    const double w = 2.0 / norm;
    // rotation matrix of q / |q| (Horn 1987, eq. 4)
    fit.r[0][0] = 1.0 - w * (q2 * q2 + q3 * q3);
    fit.r[0][1] = w * (q1 * q2 - q0 * q3);
    fit.r[0][2] = w * (q1 * q3 + q0 * q2);
    fit.r[1][0] = w * (q1 * q2 + q0 * q3);
    fit.r[1][1] = 1.0 - w * (q1 * q1 + q3 * q3);
    fit.r[1][2] = w * (q2 * q3 - q0 * q1);
    fit.r[2][0] = w * (q1 * q3 - q0 * q2);
    fit.r[2][1] = w * (q2 * q3 + q0 * q1);
    fit.r[2][2] = 1.0 - w * (q1 * q1 + q2 * q2);
    // the attained objective sum_ab R[a][b] S[b][a], summed in numba's order
    const double lam = fit.r[0][0] * s[0][0] + fit.r[0][1] * s[1][0] + fit.r[0][2] * s[2][0] +
                       fit.r[1][0] * s[0][1] + fit.r[1][1] * s[1][1] + fit.r[1][2] * s[2][1] +
                       fit.r[2][0] * s[0][2] + fit.r[2][1] * s[1][2] + fit.r[2][2] * s[2][2];
    fit.scale = lam / gp;
    fit.mu_t[0] = mt0;
    fit.mu_t[1] = mt1;
    fit.mu_t[2] = mt2;
    fit.mu_p[0] = mp0;
    fit.mu_p[1] = mp1;
    fit.mu_p[2] = mp2;
    return 0;
}

// numba_._errors_chunk for pose i.
template <class T>
__device__ __forceinline__ void gpa_pose_errors(const gpa_pose_view<T> &pred, const gpa_pose_view<T> &tgt,
                                                const gpa_i64 *joints, gpa_i64 joints_s0, int selected, int root,
                                                int align, double *errors, gpa_i64 errors_s1, gpa_i64 i,
                                                gpa_i64 n, gpa_u64 *status) {
    double rp0 = 0.0, rp1 = 0.0, rp2 = 0.0, rt0 = 0.0, rt1 = 0.0, rt2 = 0.0;
    if (root >= 0) {
        rp0 = pred.at(root, 0);
        rp1 = pred.at(root, 1);
        rp2 = pred.at(root, 2);
        rt0 = tgt.at(root, 0);
        rt1 = tgt.at(root, 1);
        rt2 = tgt.at(root, 2);
    }
    const double nan = gpa_bits<double>::quiet_nan();
    if (align == GPA_ALIGN_PROCRUSTES) {
        gpa_fit fit;
        const int code = gpa_fit_pose(pred, tgt, joints, joints_s0, selected, root, fit);
        if (code != 0) {
            gpa_flag(status, code == 1 ? GPA_POSE_NONFINITE : GPA_POSE_DEGENERATE, i, n);
            for (int k = 0; k < selected; ++k) {
                errors[k * errors_s1] = nan;
            }
            return;
        }
        for (int k = 0; k < selected; ++k) {
            const gpa_i64 jk = joints[k * joints_s0];
            const double l0 = (pred.at(jk, 0) - rp0) - fit.mu_p[0];
            const double l1 = (pred.at(jk, 1) - rp1) - fit.mu_p[1];
            const double l2 = (pred.at(jk, 2) - rp2) - fit.mu_p[2];
            const double d0 =
                fit.scale * (fit.r[0][0] * l0 + fit.r[0][1] * l1 + fit.r[0][2] * l2) - ((tgt.at(jk, 0) - rt0) - fit.mu_t[0]);
            const double d1 =
                fit.scale * (fit.r[1][0] * l0 + fit.r[1][1] * l1 + fit.r[1][2] * l2) - ((tgt.at(jk, 1) - rt1) - fit.mu_t[1]);
            const double d2 =
                fit.scale * (fit.r[2][0] * l0 + fit.r[2][1] * l1 + fit.r[2][2] * l2) - ((tgt.at(jk, 2) - rt2) - fit.mu_t[2]);
            errors[k * errors_s1] = gpa_sqrt(d0 * d0 + d1 * d1 + d2 * d2);
        }
        return;
    }
    bool finite = true;
    double tp = 0.0, pp = 0.0;
    for (int k = 0; k < selected; ++k) {
        const gpa_i64 jk = joints[k * joints_s0];
        const double p0 = pred.at(jk, 0) - rp0, p1 = pred.at(jk, 1) - rp1, p2 = pred.at(jk, 2) - rp2;
        const double t0 = tgt.at(jk, 0) - rt0, t1 = tgt.at(jk, 1) - rt1, t2 = tgt.at(jk, 2) - rt2;
        finite = finite && gpa_bits<double>::finite(p0) && gpa_bits<double>::finite(p1) &&
                 gpa_bits<double>::finite(p2) && gpa_bits<double>::finite(t0) && gpa_bits<double>::finite(t1) &&
                 gpa_bits<double>::finite(t2);
        tp += t0 * p0 + t1 * p1 + t2 * p2;
        pp += p0 * p0 + p1 * p1 + p2 * p2;
    }
    if (!finite) {
        gpa_flag(status, GPA_POSE_NONFINITE, i, n);
        for (int k = 0; k < selected; ++k) {
            errors[k * errors_s1] = nan;
        }
        return;
    }
    double scale = 1.0;
    if (align == GPA_ALIGN_SCALE) {
        if (!(pp > 0.0)) {
            gpa_flag(status, GPA_POSE_DEGENERATE, i, n);
            for (int k = 0; k < selected; ++k) {
                errors[k * errors_s1] = nan;
            }
            return;
        }
        scale = tp / pp;
    }
    for (int k = 0; k < selected; ++k) {
        const gpa_i64 jk = joints[k * joints_s0];
        const double d0 = scale * (pred.at(jk, 0) - rp0) - (tgt.at(jk, 0) - rt0);
        const double d1 = scale * (pred.at(jk, 1) - rp1) - (tgt.at(jk, 1) - rt1);
        const double d2 = scale * (pred.at(jk, 2) - rp2) - (tgt.at(jk, 2) - rt2);
        errors[k * errors_s1] = gpa_sqrt(d0 * d0 + d1 * d1 + d2 * d2);
    }
}

// ---------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------

// ALIGN (a GPA_ALIGN_* code) is a template parameter, not an argument: plain
// and scaled errors then carry none of Horn's solver, whose registers (about
// 150) would otherwise limit every alignment's occupancy.
template <class T, int ALIGN>
__global__ void gpa_joint_errors(GPA_JOINT_ERRORS_PARAMS(T)) {
    const gpa_i64 stride = (gpa_i64)blockDim.x * gridDim.x;
    for (gpa_i64 i = (gpa_i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const gpa_pose_view<T> p = {pred + i * pred_s0, pred_s1, pred_s2};
        const gpa_pose_view<T> t = {tgt + i * tgt_s0, tgt_s1, tgt_s2};
        gpa_pose_errors(p, t, joints, joints_s0, selected, root, ALIGN, errors + i * errors_s0, errors_s1, i, n,
                        status);
    }
}

// Outputs are C-contiguous: scale (n,), rotation (n, 3, 3), translation (n, 3).
template <class T>
__global__ void gpa_procrustes_fit(GPA_PROCRUSTES_FIT_PARAMS(T)) {
    const double nan = gpa_bits<double>::quiet_nan();
    const gpa_i64 stride = (gpa_i64)blockDim.x * gridDim.x;
    for (gpa_i64 i = (gpa_i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const gpa_pose_view<T> p = {pred + i * pred_s0, pred_s1, pred_s2};
        const gpa_pose_view<T> t = {tgt + i * tgt_s0, tgt_s1, tgt_s2};
        gpa_fit fit;
        const int code = gpa_fit_pose(p, t, joints, joints_s0, selected, -1, fit);
        double *r = rotation + 9 * i;
        double *shift = translation + 3 * i;
        if (code != 0) {
            gpa_flag(status, code == 1 ? GPA_POSE_NONFINITE : GPA_POSE_DEGENERATE, i, n);
            scale[i] = nan;
            for (int c = 0; c < 9; ++c) {
                r[c] = nan;
            }
            for (int c = 0; c < 3; ++c) {
                shift[c] = nan;
            }
            continue;
        }
        scale[i] = fit.scale;
        GPA_UNROLL
        for (int row = 0; row < 3; ++row) {
            GPA_UNROLL
            for (int c = 0; c < 3; ++c) {
                r[3 * row + c] = fit.r[row][c];
            }
        }
        // t = mu_t - scale * R mu_p
        GPA_UNROLL
        for (int row = 0; row < 3; ++row) {
            const double rmu = fit.r[row][0] * fit.mu_p[0] + fit.r[row][1] * fit.mu_p[1] + fit.r[row][2] * fit.mu_p[2];
            shift[row] = fit.mu_t[row] - fit.scale * rmu;
        }
    }
}
