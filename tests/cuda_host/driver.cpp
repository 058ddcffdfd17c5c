// Host test driver: the CUDA kernels of gpa_arrays/_backends/kernels compiled
// as C++ (through host_shim.h) and exported with C linkage for ctypes.
//
// Each launch_* function takes the launch geometry followed by exactly the
// kernel's parameter list (the same GPA_*_PARAMS macro the kernel is declared
// with), so the tests pass the very argument tuples the CuPy backend builds.
#include "host_shim.h"

#include "gpa.cu"

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
