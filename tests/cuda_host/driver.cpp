// Host test driver: the CUDA kernels of gpa_arrays/_backends/kernels compiled
// as C++ (through host_shim.h) and exported with C linkage for ctypes.
//
// Each launch_* function takes the launch geometry followed by exactly the
// kernel's parameter list (the same GPA_*_PARAMS macro the kernel is declared
// with), so the tests pass the very argument tuples the CuPy backend builds.
// Names follow the kernel's name expression: gpa_tiled_ext<float, 3> is
// launch_gpa_tiled_ext_float_3 (tests/host_cuda.py).
#include "host_shim.h"

#include "gpa.cu"
#include "metrics.cu"

#define GPA_LAUNCHER(name, kernel, params, args)                                              \
    extern "C" void name(unsigned int grid, unsigned int block, unsigned long long shared_bytes, \
                         params) {                                                             \
        gpa_host::launch(grid, block, shared_bytes, kernel, args);                              \
    }

GPA_LAUNCHER(launch_gpa_prepare_float, gpa_prepare<float>, GPA_PREPARE_PARAMS(float), GPA_PREPARE_ARGS)
GPA_LAUNCHER(launch_gpa_prepare_double, gpa_prepare<double>, GPA_PREPARE_PARAMS(double), GPA_PREPARE_ARGS)
GPA_LAUNCHER(launch_gpa_tiled_float, gpa_tiled<float>, GPA_TILED_PARAMS(float), GPA_TILED_ARGS)
GPA_LAUNCHER(launch_gpa_tiled_double, gpa_tiled<double>, GPA_TILED_PARAMS(double), GPA_TILED_ARGS)
GPA_LAUNCHER(launch_gpa_strided_float, gpa_strided<float>, GPA_STRIDED_PARAMS(float), GPA_STRIDED_ARGS)
GPA_LAUNCHER(launch_gpa_strided_double, gpa_strided<double>, GPA_STRIDED_PARAMS(double), GPA_STRIDED_ARGS)
GPA_LAUNCHER(launch_gpa_pair, gpa_pair, GPA_PAIR_PARAMS, GPA_PAIR_ARGS)
GPA_LAUNCHER(launch_gpa_widen_float, gpa_widen<float>, GPA_WIDEN_PARAMS(float), GPA_WIDEN_ARGS)
GPA_LAUNCHER(launch_gpa_widen_double, gpa_widen<double>, GPA_WIDEN_PARAMS(double), GPA_WIDEN_ARGS)
GPA_LAUNCHER(launch_gpa_project_float, gpa_project<float>, GPA_PROJECT_PARAMS(float), GPA_PROJECT_ARGS)
GPA_LAUNCHER(launch_gpa_project_double, gpa_project<double>, GPA_PROJECT_PARAMS(double), GPA_PROJECT_ARGS)
GPA_LAUNCHER(launch_gpa_clip_float, gpa_clip<float>, GPA_CLIP_PARAMS(float), GPA_CLIP_ARGS)
GPA_LAUNCHER(launch_gpa_clip_double, gpa_clip<double>, GPA_CLIP_PARAMS(double), GPA_CLIP_ARGS)

// The extended kernels, for each type and feature set of
// gpa_arrays._backends._cuda.FEATURE_SETS (the kernel is parenthesised so that
// the comma of its template arguments does not split the macro argument).
#define GPA_EXT_LAUNCHERS(T, F)                                                                       \
    GPA_LAUNCHER(launch_gpa_tiled_ext_##T##_##F, (gpa_tiled_ext<T, F>), GPA_TILED_EXT_PARAMS(T),     \
                 GPA_TILED_EXT_ARGS)                                                                  \
    GPA_LAUNCHER(launch_gpa_strided_ext_##T##_##F, (gpa_strided_ext<T, F>), GPA_STRIDED_EXT_PARAMS(T), \
                 GPA_STRIDED_EXT_ARGS)
GPA_EXT_LAUNCHERS(float, 1)
GPA_EXT_LAUNCHERS(float, 2)
GPA_EXT_LAUNCHERS(float, 3)
GPA_EXT_LAUNCHERS(double, 1)
GPA_EXT_LAUNCHERS(double, 2)
GPA_EXT_LAUNCHERS(double, 3)

// per type and alignment code (gpa_arrays._backends._cuda.ALIGNS)
#define GPA_JOINT_ERRORS_LAUNCHER(T, A)                                                           \
    GPA_LAUNCHER(launch_gpa_joint_errors_##T##_##A, (gpa_joint_errors<T, A>), GPA_JOINT_ERRORS_PARAMS(T), \
                 GPA_JOINT_ERRORS_ARGS)
GPA_JOINT_ERRORS_LAUNCHER(float, 0)
GPA_JOINT_ERRORS_LAUNCHER(float, 1)
GPA_JOINT_ERRORS_LAUNCHER(float, 2)
GPA_JOINT_ERRORS_LAUNCHER(double, 0)
GPA_JOINT_ERRORS_LAUNCHER(double, 1)
GPA_JOINT_ERRORS_LAUNCHER(double, 2)
GPA_LAUNCHER(launch_gpa_procrustes_fit_float, gpa_procrustes_fit<float>, GPA_PROCRUSTES_FIT_PARAMS(float),
             GPA_PROCRUSTES_FIT_ARGS)
GPA_LAUNCHER(launch_gpa_procrustes_fit_double, gpa_procrustes_fit<double>, GPA_PROCRUSTES_FIT_PARAMS(double),
             GPA_PROCRUSTES_FIT_ARGS)
