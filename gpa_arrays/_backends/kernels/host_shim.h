// Host shim: lets the CUDA kernels of this directory compile as ordinary C++
// and run on the CPU, so that tests without a GPU execute the very source
// NVRTC compiles (tests/cuda_host/driver.cpp includes this header, then
// gpa.cu). It is never part of the NVRTC source.
//
// Emulation model: a launch runs its blocks one after another; the threads of
// a block are real std::threads that meet at a std::barrier in
// __syncthreads(), share one dynamic shared-memory buffer, and update status
// counters with real atomics. Built-in variables are thread-local. Only what
// the kernels use is provided.
#pragma once

#if defined(__CUDACC__) || defined(__CUDA_ARCH__)
#error "host_shim.h is for host C++ compilers only"
#endif

#include <barrier>
#include <bit>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};

struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};

namespace gpa_host {
inline thread_local dim3 thread_index, block_index, block_dim, grid_dim;
inline thread_local void *shared_memory = nullptr;
inline thread_local std::barrier<> *block_barrier = nullptr;
}  // namespace gpa_host

#define threadIdx (gpa_host::thread_index)
#define blockIdx (gpa_host::block_index)
#define blockDim (gpa_host::block_dim)
#define gridDim (gpa_host::grid_dim)
#define GPA_UNROLL
#define GPA_NO_UNROLL
#define GPA_DYNAMIC_SHARED(name) uint4 *name = static_cast<uint4 *>(gpa_host::shared_memory)

inline void __syncthreads() { gpa_host::block_barrier->arrive_and_wait(); }

inline unsigned int __float_as_uint(float x) { return std::bit_cast<unsigned int>(x); }
inline float __uint_as_float(unsigned int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

inline unsigned long long atomicAdd(unsigned long long *address, unsigned long long value) {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
inline unsigned long long atomicMax(unsigned long long *address, unsigned long long value) {
    unsigned long long seen = __atomic_load_n(address, __ATOMIC_RELAXED);
    while (seen < value &&
           !__atomic_compare_exchange_n(address, &seen, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return seen;
}

namespace gpa_host {
// Run `kernel(args...)` as a grid of `grid` blocks of `block` threads with
// `shared_bytes` of dynamic shared memory per block.
template <class Kernel, class... Args>
void launch(unsigned int grid, unsigned int block, std::size_t shared_bytes, Kernel kernel, Args... args) {
    std::vector<uint4> shared((shared_bytes + sizeof(uint4) - 1) / sizeof(uint4) + 1);
    for (unsigned int b = 0; b < grid; ++b) {
        std::barrier<> barrier(block);
        std::vector<std::thread> threads;
        threads.reserve(block);
        for (unsigned int t = 0; t < block; ++t) {
            threads.emplace_back([&, b, t] {
                thread_index = dim3{t, 0, 0};
                block_index = dim3{b, 0, 0};
                block_dim = dim3{block, 1, 1};
                grid_dim = dim3{grid, 1, 1};
                shared_memory = shared.data();
                block_barrier = &barrier;
                kernel(args...);
            });
        }
        for (auto &thread : threads) {
            thread.join();
        }
    }
}
}  // namespace gpa_host
