"""Kernel tuning flags, kept in one place.

Every backend reads its launch and tiling parameters from here so that a test can
patch them (for example a tiny chunk size so that small inputs cross chunk
boundaries) and so that nobody hard-codes a magic number inside a kernel.

Each value can be overridden with an environment variable of the same name
prefixed by ``GPA_ARRAYS_`` (read once, at import).
"""

from __future__ import annotations

import os

__all__ = [
    "CUDA_BLOCKS_PER_SM",
    "CUDA_MIN_TILE_POSES",
    "CUDA_THREADS_PER_BLOCK",
    "CUDA_TILE_BYTES",
    "FASTMATH",
    "MAX_SPECIALIZED_JOINTS",
    "MIN_POSES_PER_CHUNK",
    "PAIRING_BLOCK",
    "PARALLEL_MIN_POSES",
    "PARALLEL_WATCH_POSES",
    "PREFETCH_DISTANCE",
]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get("GPA_ARRAYS_" + name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"environment variable GPA_ARRAYS_{name}: expected an integer, got {raw!r}"
        ) from None
    if value < 1:
        raise ValueError(
            f"environment variable GPA_ARRAYS_{name}: expected a positive "
            f"integer, got {value}"
        )
    return value


#: Never compile with fast-math: it licenses the compiler to reassociate and to
#: assume finite values, which would break bit-for-bit agreement with the NumPy
#: reference and silently disable the fused finiteness checks.
FASTMATH = False

#: Poses below which a CPU call runs on the calling thread. Waking the worker
#: threads costs about 3 us on the development machine (2 cores), more than the
#: whole kernel for a few hundred poses; at 1024 poses two threads win (23 us
#: against 32 us per call, float32, J = 17).
PARALLEL_MIN_POSES = _env_int("PARALLEL_MIN_POSES", 1024)

#: Poses below which a parallel GPA launch is timed; when one stalls (it took
#: over 0.5 ms and four times the serial twin's time: the cores are busy
#: elsewhere), the following launches below this size run serially for a while
#: (``numba_._Watch``). Above it the parallel twin always runs: two cores win
#: even when the launch waits for a busy one.
PARALLEL_WATCH_POSES = _env_int("PARALLEL_WATCH_POSES", 1 << 17)

#: Poses read at a time from a source that is not C-contiguous (a strided or
#: broadcast view) by the CPU kernels, which address poses as flat rows: 2**15
#: poses of 17 joints are 6.5 MB in float32, so a 0-stride view of one pose
#: costs one such buffer instead of a copy of the whole batch.
STAGE_POSES = _env_int("STAGE_POSES", 1 << 15)

#: Smallest number of poses one CPU chunk holds. A chunk is the unit a worker
#: thread takes; chunks also carry the per-chunk error counters.
MIN_POSES_PER_CHUNK = _env_int("MIN_POSES_PER_CHUNK", 512)

#: Poses whose pairing the CPU kernels evaluate together (a loop that
#: vectorises) into a buffer of targets. Measured at N = M = 1024 (records in
#: L1), J = 17, float32, one core: 64 costs about 4 ns per pose less than 16
#: (the per-tile overhead of the cycle-walking and folding passes), 256 no less.
PAIRING_BLOCK = _env_int("PAIRING_BLOCK", 64)

#: How many poses ahead the CPU kernels prefetch the paired target record: the
#: random gather of records is the one access a hardware prefetcher cannot
#: predict. Capped at ``PAIRING_BLOCK``. Measured at N = M = 1e6, J = 17,
#: float32 on 2 cores: 8 to 24 give 16-19 ms, 32 and 64 give 35-42 ms (the
#: outstanding-miss queues overflow and prefetches are dropped).
PREFETCH_DISTANCE = _env_int("PREFETCH_DISTANCE", 16)

#: Largest joint count for which the CPU kernels are compiled with the count as a
#: constant (about 2x faster: the per-joint loops unroll and vectorise). Larger
#: skeletons use one kernel that reads the count at run time.
MAX_SPECIALIZED_JOINTS = _env_int("MAX_SPECIALIZED_JOINTS", 64)

#: CUDA threads per block for every kernel of the CuPy backend.
CUDA_THREADS_PER_BLOCK = _env_int("CUDA_THREADS_PER_BLOCK", 256)

#: Shared memory per block of the tiled CUDA kernel (C-contiguous poses), bytes.
#: A block then stages 120 poses of 17 float32 joints (24,480 bytes). An SM with
#: 228 KiB of shared memory (Hopper) holds eight such blocks of 256 threads, its
#: thread limit; 164 KiB (A100) six; 96 KiB (Volta) three. Chosen from these
#: limits, not yet tuned by measurement.
CUDA_TILE_BYTES = _env_int("CUDA_TILE_BYTES", 24576)

#: Fewest poses per tile for which the tiled CUDA kernel is used; poses larger
#: than ``CUDA_TILE_BYTES / CUDA_MIN_TILE_POSES`` (very large skeletons) go to the
#: strided kernel, one pose per thread, instead.
CUDA_MIN_TILE_POSES = _env_int("CUDA_MIN_TILE_POSES", 8)

#: Upper bound of a CUDA grid, in blocks per multiprocessor. Kernels loop over
#: their work with a grid stride, so a grid of a few waves covers any input and
#: the per-block setup (round keys) is paid once per block, not once per pose.
CUDA_BLOCKS_PER_SM = _env_int("CUDA_BLOCKS_PER_SM", 32)
