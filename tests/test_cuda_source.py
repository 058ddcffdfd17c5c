"""The CUDA backend without a GPU.

* NVRTC (the compiler CuPy uses, from ``cuda-bindings`` and
  ``nvidia-cuda-nvrtc-cu12``) compiles the exact kernel source for several
  architectures, with the options CuPy adds, and the PTX has neither fused
  multiply-adds nor flush-to-zero arithmetic.
* A host C++ compiler builds the same source, and the CuPy backend's own
  launchers (``cupy_.py``, loaded against a host stand-in for CuPy, see
  ``tests/host_cuda.py``) run it: pairing, records, poses and statuses agree
  bit for bit with the NumPy reference.
* The public API's device path runs on that backend, to check how it reads
  statuses (one synchronisation per call, none with ``check=False``).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_case
from host_cuda import (
    KERNEL_DIR,
    SHARED_OPTIN,
    LaunchError,
    build,
    cupy_backend_on_host,
    missing,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import gpa_arrays
from gpa_arrays import _api, _config, _status
from gpa_arrays import _pairing as P
from gpa_arrays._backends import _cuda, numpy_

ARCHITECTURES = ["compute_70", "compute_80", "compute_90"]


# --- NVRTC ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        missing("cuda-bindings is not installed (pip install '.[test]')")
    try:
        result, *_ = nvrtc.nvrtcVersion()
    except Exception as exc:  # the NVRTC shared library is not found
        missing(f"NVRTC is not usable: {exc}")
    assert result == nvrtc.nvrtcResult.NVRTC_SUCCESS
    return nvrtc


def _check(nvrtc, result):
    error, *values = result
    if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise AssertionError(f"NVRTC: {error}")
    return values


def compile_source(nvrtc, source, options, names=()):
    """``(ok, log, ptx, lowered names)`` of one NVRTC compilation."""
    (program,) = _check(
        nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), b"gpa.cu", 0, [], [])
    )
    try:
        for name in names:
            _check(nvrtc, nvrtc.nvrtcAddNameExpression(program, name.encode()))
        encoded = [o.encode() for o in options]
        (result,) = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)
        (size,) = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(program))
        log = b" " * size
        _check(nvrtc, nvrtc.nvrtcGetProgramLog(program, log))
        log = log.rstrip(b"\0 ").decode()
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            return False, log, "", {}
        (size,) = _check(nvrtc, nvrtc.nvrtcGetPTXSize(program))
        ptx = b" " * size
        _check(nvrtc, nvrtc.nvrtcGetPTX(program, ptx))
        lowered = {}
        for name in names:
            (mangled,) = _check(
                nvrtc, nvrtc.nvrtcGetLoweredName(program, name.encode())
            )
            lowered[name] = mangled.decode() if isinstance(mangled, bytes) else mangled
        return True, log, ptx.rstrip(b"\0 ").decode(), lowered
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def cupy_options(arch, cupy_major=14):
    """The options CuPy's RawModule hands NVRTC (cupy/cuda/compiler.py).

    Ours, then what CuPy adds: ``-ftz=true``, the architecture, (CuPy 14)
    ``--device-as-default-execution-space``, and a language standard only when
    ours names none: C++11 in CuPy 13, C++17 in CuPy 14.
    """
    options = [*_cuda.OPTIONS, "-ftz=true", f"-arch={arch}"]
    if cupy_major >= 14:
        options.append("--device-as-default-execution-space")
    if not any(o.startswith("-std=") for o in options):
        options.append("-std=c++11" if cupy_major == 13 else "-std=c++17")
    return tuple(options)


def test_every_cupy_compiles_with_our_language_standard():
    # the tests compile with cupy_options(); CuPy 13 and 14 would otherwise
    # pick different standards, and neither would be the one tested
    for major in (13, 14):
        standards = [o for o in cupy_options("compute_80", major) if "-std=" in o]
        assert standards == ["-std=c++17"], major


@pytest.mark.parametrize("module", list(_cuda.MODULES))
@pytest.mark.parametrize(
    "arch",
    # one architecture in the default run, every one in CI (-m slow)
    [a if a == "compute_80" else pytest.param(a, marks=pytest.mark.slow)
     for a in ARCHITECTURES],
)  # fmt: skip
def test_nvrtc_compiles_the_kernel_source(nvrtc, arch, module):
    main, names = _cuda.MODULES[module]
    ok, log, ptx, lowered = compile_source(
        nvrtc, _cuda.source(main), cupy_options(arch), names
    )
    assert ok, log
    assert "error" not in log.lower(), log
    assert set(lowered) == set(names)
    for name, mangled in lowered.items():
        assert name.split("<")[0] in mangled
        assert re.search(rf"\.entry\s+{re.escape(mangled)}\s*\(", ptx), name
    # no contraction into fused multiply-adds, no flushed subnormals: results
    # are rounded exactly as NumPy rounds them, whatever CuPy adds (-ftz=true)
    assert not re.search(r"\bfma\.", ptx)
    assert ".ftz" not in ptx
    # every floating-point operation is explicitly round-to-nearest (the
    # metrics compute in float64 only)
    widths = ("f64",) if module == "metrics" else ("f32", "f64")
    for op in ("add", "sub", "mul", "div"):
        for width in widths:
            assert f"{op}.rn.{width}" in ptx
    # float <-> double conversions are spelled without .ftz, and the small
    # matrices of the solvers stay in registers (no local-memory arrays)
    float64_solvers = {"metrics"} | {
        f"gpa_ext{f}" for f in _cuda.FEATURE_SETS if f & _cuda.FEATURE_PERSPECTIVE
    }
    if module in float64_solvers:
        assert "cvt.f64.f32" in ptx
    assert "__local_depot" not in ptx


def test_fmad_option_is_what_keeps_fma_out(nvrtc):
    # the assertion above can fail: without --fmad=false, NVRTC contracts the
    # float64 depth (fx * dx + fy * dy) into fused multiply-adds
    options = [o for o in cupy_options("compute_80") if o != "--fmad=false"]
    ok, log, ptx, _ = compile_source(
        nvrtc, _cuda.source(), options, _cuda.name_expressions()
    )
    assert ok, log
    assert re.search(r"\bfma\.rn\.f64", ptx)


def test_compile_errors_are_reported(nvrtc):
    ok, log, _, _ = compile_source(
        nvrtc, _cuda.source() + "\nthis is not C++;\n", cupy_options("compute_80")
    )
    assert not ok and "error" in log


def test_source_is_self_contained():
    for main, headers in (
        ("gpa.cu", ("common.cuh", "geometry.cuh", "pairing.cuh")),
        ("metrics.cu", ("common.cuh",)),
    ):
        source = _cuda.source(main)
        assert '#include "' not in source
        assert source.count("#pragma once") == 0
        # each header appears once, with #line markers naming it
        for header in headers:
            assert source.count(f'#line 1 "{header}"') == 1
    types = ("float", "double")
    assert set(_cuda.name_expressions()) == {
        f"{k}<{t}>" for k in _cuda.TEMPLATES for t in types
    } | set(_cuda.PLAIN)
    every = {name for _, names in _cuda.MODULES.values() for name in names}
    assert every == (
        {f"{k}<{t}>" for k in (*_cuda.TEMPLATES, "gpa_procrustes_fit") for t in types}
        | {f"{k}<{t}, {f}>" for k in _cuda.EXTENDED for t in types for f in (1, 2, 3)}
        | {f"gpa_joint_errors<{t}, {a}>" for t in types for a in (0, 1, 2)}
        | set(_cuda.PLAIN)
    )
    for kernel in _cuda.KERNELS:
        for features in (0, *_cuda.FEATURE_SETS):
            if (kernel in _cuda.EXTENDED) != (features != 0) or kernel in _cuda.PLAIN:
                continue
            name = _cuda.kernel_name(kernel, np.float32, features)
            assert name in _cuda.name_expressions(_cuda.module_of(kernel, features))
    with pytest.raises(ValueError, match="no instantiation for features 0"):
        _cuda.kernel_name("gpa_tiled_ext", np.float32)
    with pytest.raises(ValueError, match="no instantiation for alignment 3"):
        _cuda.kernel_name("gpa_joint_errors", np.float32, 3)
    assert _cuda.ALIGNS == (numpy_.ALIGN_NONE, numpy_.ALIGN_SCALE, 2)
    assert numpy_.ALIGN_PROCRUSTES == 2


def test_status_numbering_matches_the_host():
    from gpa_arrays import _status
    from gpa_arrays._backends import numba_

    common = (KERNEL_DIR / "common.cuh").read_text()
    names = [
        name
        for name in dir(_status)
        if name.split("_")[0] in ("POSE", "TARGET", "POINT")
        and name.isupper()
        and isinstance(getattr(_status, name), int)  # not the message tables
    ]
    assert len(names) == 13
    for name in names:
        match = re.search(rf"#define GPA_{name} (\d+)", common)
        assert int(match.group(1)) == getattr(_status, name), name
    assert max(getattr(_status, name) for name in names) < _status.N_CATEGORIES
    match = re.search(r"#define GPA_PRECISION_TOLERANCE (\S+)", common)
    assert float(match.group(1)) == _status.PRECISION_TOLERANCE
    metrics = (KERNEL_DIR / "metrics.cu").read_text()
    for name in ("NONE", "SCALE", "PROCRUSTES"):
        match = re.search(rf"#define GPA_ALIGN_{name} (\d+)", metrics)
        assert int(match.group(1)) == getattr(numpy_, f"ALIGN_{name}")
    for name, value in (
        ("QCP_ITERATIONS", numba_._QCP_ITERATIONS),
        ("QCP_MIN_COFACTOR", numba_._QCP_MIN_COFACTOR),
        ("JACOBI_SWEEPS", numba_._JACOBI_SWEEPS),
    ):
        match = re.search(rf"#define GPA_{name} (\S+)", metrics)
        assert float(match.group(1)) == value, name
    geometry = (KERNEL_DIR / "geometry.cuh").read_text()
    for name in ("PROJECT", "PERSPECTIVE"):
        match = re.search(rf"#define GPA_FEATURE_{name} (\d+)", geometry)
        assert int(match.group(1)) == getattr(_cuda, f"FEATURE_{name}")
    pairing = (KERNEL_DIR / "pairing.cuh").read_text()
    for name in ("PERMUTATION", "RANDOM", "IDENTITY", "ARRAY"):
        match = re.search(rf"#define GPA_KIND_{name} (\d+)", pairing)
        assert int(match.group(1)) == getattr(P, f"KIND_{name}")
    assert f"#define GPA_ROUNDS {P.ROUNDS}" in pairing
    assert f"0x{int(P.GOLDEN):X}ULL" in pairing
    assert f"#define GPA_RECORD_WIDTH {numpy_.RECORD_WIDTH}" in common


# --- launch geometry --------------------------------------------------------------------


@pytest.mark.parametrize("itemsize", [4, 8])
def test_tiles_are_whole_poses_and_16_byte_multiples(itemsize):
    for joints in range(1, 200):
        poses = _cuda.tile_poses(joints, itemsize)
        pose_bytes = 3 * joints * itemsize
        if poses == 0:
            assert _config.CUDA_TILE_BYTES // pose_bytes < max(
                _config.CUDA_MIN_TILE_POSES, 16
            )
            continue
        assert poses <= _config.CUDA_THREADS_PER_BLOCK
        assert poses * pose_bytes <= _config.CUDA_TILE_BYTES
        assert poses * pose_bytes % 16 == 0
        assert poses >= _config.CUDA_MIN_TILE_POSES
    # the configuration of the docs: 120 poses of 17 float32 joints
    assert _cuda.tile_poses(17, 4) == 120


@pytest.mark.parametrize("itemsize", [4, 8])
def test_tiles_with_projections_keep_both_parts_aligned(itemsize):
    for joints in range(1, 200):
        poses = _cuda.tile_poses(joints, itemsize, project=True)
        if poses == 0:
            continue
        assert poses <= _config.CUDA_THREADS_PER_BLOCK
        assert poses * 5 * joints * itemsize <= _config.CUDA_TILE_BYTES
        # the 2D tile starts 16-byte aligned after the 3D tile, and both tiles
        # of every later block start aligned in the outputs
        assert poses * 3 * joints * itemsize % 16 == 0
        assert poses * 2 * joints * itemsize % 16 == 0
    assert _cuda.tile_poses(17, 4, project=True) == 72
    plan = _cuda.gpa_plan(10_000, 17, 4, True, 132, _cuda.FEATURE_PROJECT)
    assert plan.kernel == "gpa_tiled_ext" and plan.shared == 72 * 17 * 5 * 4
    assert plan.block == _config.CUDA_THREADS_PER_BLOCK
    plan = _cuda.gpa_plan(10_000, 17, 4, True, 132, _cuda.FEATURE_PERSPECTIVE)
    assert plan.kernel == "gpa_tiled_ext" and plan.shared == 120 * 17 * 3 * 4
    assert _cuda.gpa_plan(100, 17, 4, False, 132, 3).kernel == "gpa_strided_ext"


def test_grid_is_capped_and_covers_small_inputs():
    assert _cuda.grid_size(1, 256, 132) == 1
    assert _cuda.grid_size(257, 256, 132) == 2
    assert _cuda.grid_size(10**12, 256, 132) == 132 * _config.CUDA_BLOCKS_PER_SM
    kernel, grid, block, shared, poses = _cuda.gpa_plan(10_000_000, 17, 4, True, 132)
    assert (kernel, poses, shared) == ("gpa_tiled", 120, 120 * 17 * 3 * 4)
    assert grid == 132 * _config.CUDA_BLOCKS_PER_SM and block == 256
    assert _cuda.gpa_plan(100, 17, 4, False, 132).kernel == "gpa_strided"
    assert _cuda.gpa_plan(100, 5000, 8, True, 132).kernel == "gpa_strided"


def test_blocks_fit_the_kernels_registers(monkeypatch):
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 256)
    assert _cuda.block_size(1024) == 256  # light kernels: as configured
    # about 150 registers allow 384 threads: two blocks of 192 fill them
    assert _cuda.block_size(384) == 192
    assert _cuda.block_size(896) == 224  # 72 registers: 4 blocks of 7 warps
    assert _cuda.block_size(128) == 128
    assert _cuda.block_size(1024, 7) == 7 and _cuda.block_size(5, 7) == 5
    for limit in range(32, 1025, 32):
        for configured in (32, 64, 128, 256, 512, 1024):
            block = _cuda.block_size(limit, configured)
            assert 32 <= block <= min(limit, configured) and block % 32 == 0
    # the plan asks each kernel for its limit, and tiles fit the clamped block
    limits = {"gpa_tiled": 64, "gpa_strided": 96}
    plan = _cuda.gpa_plan(10_000, 17, 4, True, 132, 0, limits.get, 24576)
    assert plan.block == 64 and plan.tile == 64 and plan.shared == 64 * 17 * 3 * 4
    plan = _cuda.gpa_plan(10_000, 17, 4, True, 132, 0, None, 8192)
    assert plan.tile == 40 and plan.shared == 40 * 17 * 3 * 4 <= 8192
    plan = _cuda.gpa_plan(10_000, 17, 4, False, 132, 0, limits.get, 8192)
    assert plan.kernel == "gpa_strided" and plan.block == 96


# --- host build of the kernels ------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build(tmp_path_factory.mktemp("host_kernels"))


GEOMETRIES = {
    # tiny blocks and tiles: every tile, block and grid-stride boundary is
    # crossed by a few dozen poses, with both aligned and unaligned tiles (for
    # 17 joints: 4 float32 or 2 float64 poses per tile, with or without their
    # projections)
    "tiny": {"threads": 7, "tile": 1400, "min_tile": 1, "waves": 2, "sms": 1},
    # the shipped configuration on a one-SM device (full-size blocks)
    "default": {
        "threads": _config.CUDA_THREADS_PER_BLOCK,
        "tile": _config.CUDA_TILE_BYTES,
        "min_tile": _config.CUDA_MIN_TILE_POSES,
        "waves": 1,
        "sms": 1,
    },
}


def backend_with_geometry(library, monkeypatch, name):
    """The host-built backend, with the launch configuration `name` patched in."""
    geometry = GEOMETRIES[name]
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", geometry["threads"])
    monkeypatch.setattr(_config, "CUDA_TILE_BYTES", geometry["tile"])
    monkeypatch.setattr(_config, "CUDA_MIN_TILE_POSES", geometry["min_tile"])
    monkeypatch.setattr(_config, "CUDA_BLOCKS_PER_SM", geometry["waves"])
    return cupy_backend_on_host(library, geometry["sms"])


@pytest.fixture(params=list(GEOMETRIES))
def host(request, library, monkeypatch):
    return backend_with_geometry(library, monkeypatch, request.param)


@pytest.fixture
def tiny(library, monkeypatch):
    return backend_with_geometry(library, monkeypatch, "tiny")


def assert_bits_equal(got, want):
    """Equal as bit patterns (NaN payloads and signed zeros included)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    view = {4: np.uint32, 8: np.uint64}[got.dtype.itemsize]
    np.testing.assert_array_equal(
        np.ascontiguousarray(got).view(view), np.ascontiguousarray(want).view(view)
    )


def assert_status_equal(got, want):
    if want is None:
        assert got is None
    else:
        assert got is not None
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", ["permutation", "random", "identity"])
def test_pairing_equals_numpy(tiny, kind):
    sizes = [(1, 1), (2, 2), (7, 7), (17, 17), (26, 26), (101, 101), (5, 50),
             (50, 5), (1001, 1000), (99, 100), (1025, 1025)]  # fmt: skip
    for n, m in sizes:
        if kind == "identity" and n != m:
            continue
        for seed, step in ((0, 0), (1, 3), (2**63 + 5, 0), (2**64 - 1, 2**64 - 1)):
            spec = P.resolve_pairing(kind, n, m, seed, step)
            assert_bits_equal(tiny.pair_indices(spec), numpy_.pair_indices(spec))
            # a chunk of the data set: global indices, as Dask blocks use them
            if n > 3:
                part = spec.chunk(2, n - 3)
                assert_bits_equal(tiny.pair_indices(part), numpy_.pair_indices(part))


def test_pairing_cycle_walks_large_domain(library, monkeypatch):
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 64)
    kernels = cupy_backend_on_host(library, 2)
    for k in (65537, 99_991):  # just above a square: many points walk
        spec = P.resolve_pairing("permutation", k, k, 3, 1)
        got = kernels.pair_indices(spec)
        assert_bits_equal(got, numpy_.pair_indices(spec))
        assert np.array_equal(np.sort(got), np.arange(k))


def _target_case(rng, dtype, m=37, joints=15, cols=9, broadcast=False, strided=False):
    _, target, camera = make_case(
        rng, 1, m, target_joints=joints, camera_cols=cols, dtype=dtype
    )
    if broadcast:
        camera = np.broadcast_to(camera[3], camera.shape)
    if strided:
        target = np.repeat(target, 2, axis=0)[::2].transpose(1, 0, 2).copy()
        target = target.transpose(1, 0, 2)  # joint-major memory
    return target, camera


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_camera", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "broadcast camera"])
def test_prepare_equals_numpy(host, rng, dtype, with_camera, layout):
    target, camera = _target_case(
        rng,
        dtype,
        strided=layout == "strided",
        broadcast=layout == "broadcast camera",
    )
    reference = numpy_.prepare_records if with_camera else numpy_.prepare_poseda_records
    ours = host.prepare_records if with_camera else host.prepare_poseda_records
    for root in (0, 14, 7):
        want, want_status = reference(target, camera, root)
        got, pending = ours(target, camera, root)
        (got_status,) = host.read_status(pending)
        assert_bits_equal(got, want)
        assert_status_equal(got_status, want_status)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepare_flags_bad_targets_like_numpy(tiny, rng, dtype):
    target, camera = _target_case(rng, dtype, m=40)
    camera = camera.copy()
    target[3, 5, 0] = np.nan
    target[4, 0, 1] = np.inf  # the root itself
    target[9, 2, 0] = -np.inf
    target[11] = 0.25  # degenerate box
    target[30] = 0.5
    camera[2, 0] = 0.0
    camera[17, 1] = np.inf
    camera[20, 3] = np.nan
    camera[21, 0] = -1.0
    for with_camera in (True, False):
        reference = (
            numpy_.prepare_records if with_camera else numpy_.prepare_poseda_records
        )
        ours = tiny.prepare_records if with_camera else tiny.prepare_poseda_records
        want, want_status = reference(target, camera, 0)
        got, pending = ours(target, camera, 0)
        (got_status,) = tiny.read_status(pending)
        # NaN propagates through min and max as in NumPy: even the records of
        # bad targets agree, bit for bit
        assert_bits_equal(got, want)
        assert_status_equal(got_status, want_status)
        np.testing.assert_array_equal(got_status[:3, 0], [3, 2, 4])
        # without a status buffer nothing is counted and the records are equal
        quiet, none = ours(target, camera, 0, status=False)
        assert none is None
        assert_bits_equal(quiet, want)


def _layouts(source):
    """(name, source view, out factory) for every layout the backend handles."""
    big = np.repeat(source, 2, axis=0)
    return [
        ("contiguous", source, np.empty_like),
        ("unaligned", np.concatenate([source[:1], source])[1:], np.empty_like),
        ("every other pose", big[::2], np.empty_like),
        ("fortran", np.asfortranarray(source), lambda s: np.asfortranarray(np.empty_like(s))),
        ("reversed", source[::-1].copy()[::-1], np.empty_like),
        ("strided out", source, lambda s: np.empty((*s.shape[:2], 6), s.dtype)[..., ::2]),
    ]  # fmt: skip


def _reference(source, target, camera, root, target_root, mode, spec):
    if mode == "paired":
        records, t_status = numpy_.prepare_records(target, camera, target_root)
        out = np.empty_like(source)
        status = numpy_.gpa_records(source, records, out, root, spec)
    else:
        records, t_status = numpy_.prepare_poseda_records(target, camera, target_root)
        out = np.empty_like(source)
        status = numpy_.gpa_poseda(source, records, camera, out, root, spec)
    return out, records, t_status, status


def _ours(host, source, target, camera, root, target_root, mode, spec, out):
    if mode == "paired":
        records, t_pending = host.prepare_records(target, camera, target_root)
        pending = host.gpa_records(source, records, out, root, spec)
    else:
        records, t_pending = host.prepare_poseda_records(target, camera, target_root)
        pending = host.gpa_poseda(source, records, camera, out, root, spec)
    t_status, status = host.read_status(t_pending, pending)
    return records, t_status, status


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["permutation", "random", "identity", "array"])
@pytest.mark.parametrize("mode", ["paired", "poseda"])
def test_gpa_kernels_equal_numpy(host, rng, dtype, kind, mode):
    sizes = (
        [(45, 45)] if mode == "poseda" or kind == "identity" else [(45, 19), (19, 45)]
    )
    for n, m in sizes:
        source, target, camera = make_case(
            rng, n, m, joints=17, target_joints=15, dtype=dtype
        )
        if mode == "poseda":
            camera = make_case(rng, 1, n, dtype=dtype)[2]  # one row per source
        pairing = rng.integers(0, m, n) if kind == "array" else kind
        spec = P.resolve_pairing(pairing, n, m, 99, 4)
        want, want_records, want_t, want_p = _reference(
            source, target, camera, 16, 14, mode, spec
        )
        assert want_t is None and want_p is None
        for name, view, make_out in _layouts(source):
            out = make_out(view)
            records, t_status, status = _ours(
                host, view, target, camera, 16, 14, mode, spec, out
            )
            assert_bits_equal(records, want_records)
            assert t_status is None and status is None, name
            assert_bits_equal(out, want)
    kernels = {launch[0].split("<")[0] for launch in host.cupy.counter["launches"]}
    assert {"gpa_prepare", "gpa_tiled", "gpa_strided"} <= kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpa_kernels_in_place_and_roots(tiny, rng, dtype):
    n, m = 60, 33
    source, target, camera = make_case(
        rng, n, m, joints=5, target_joints=7, dtype=dtype
    )
    for root, target_root in ((0, 0), (4, 6), (2, 3)):
        spec = P.resolve_pairing("permutation", n, m, 7)
        want = _reference(source, target, camera, root, target_root, "paired", spec)[0]
        for view in (source.copy(), np.asfortranarray(source)):
            records, _ = tiny.prepare_records(target, camera, target_root)
            tiny.gpa_records(view, records, view, root, spec)  # out is source
            assert_bits_equal(view, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["paired", "poseda"])
def test_gpa_kernels_flag_bad_poses_like_numpy(host, rng, dtype, mode):
    n = 50
    source, target, camera = make_case(rng, n, n, dtype=dtype)
    source[3, 4, 2] = np.nan
    source[7, 0, 0] = np.inf  # the root
    source[12, :, :2] = 0.25  # zero extent: depth 0
    source[20, 2, 0] = np.finfo(dtype).max  # overflows to inf
    source[20, 3, 0] = -np.finfo(dtype).max
    pairing = rng.integers(0, n, n)
    pairing[[5, 40, 41]] = [n, -1, 10**12]  # out of range
    for kind in ("permutation", pairing):
        spec = P.resolve_pairing(kind, n, n, 5)
        want, _, _, want_status = _reference(source, target, camera, 0, 0, mode, spec)
        for name, view, make_out in _layouts(source):
            out = make_out(view)
            _, _, status = _ours(host, view, target, camera, 0, 0, mode, spec, out)
            assert_bits_equal(out, want)
            assert_status_equal(status, want_status), name
    assert want_status[:, 0].tolist() == [3, 1, 3, 0, 0, 0]


def test_large_tiles_opt_in_to_more_shared_memory(library, rng, monkeypatch):
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 256)
    monkeypatch.setattr(_config, "CUDA_TILE_BYTES", 96 * 1024)
    host = cupy_backend_on_host(library, 1)
    source, target, camera = make_case(rng, 300, 300)
    spec = P.resolve_pairing("permutation", 300, 300, 2)
    want = _reference(source, target, camera, 0, 0, "paired", spec)[0]
    out = np.empty_like(source)
    _ours(host, source, target, camera, 0, 0, "paired", spec, out)
    assert_bits_equal(out, want)
    (tiled,) = [x for x in host.cupy.counter["launches"] if x[0] == "gpa_tiled<double>"]
    assert tiled[3] == 240 * 17 * 3 * 8 > 48 * 1024  # 240 poses, above the default


def test_ptxas_table_occupancy_model(monkeypatch):
    # tools/ptxas_table.py (run by CI) derives launches from registers; its
    # model must give the driver's limits (CUDA occupancy calculator, sm_80)
    import importlib.util

    path = Path(__file__).parents[1] / "tools" / "ptxas_table.py"
    spec = importlib.util.spec_from_file_location("ptxas_table", path)
    table = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ptxas_table", table)  # for its dataclasses
    spec.loader.exec_module(table)
    sm80, sm90 = table.ARCHES
    assert [table.max_threads(r, sm80) for r in (32, 64, 72, 128, 150, 255)] == [
        1024, 1024, 896, 512, 384, 256]  # fmt: skip
    assert table.blocks_per_sm(32, 256, 0, sm80) == 8  # the warp limit
    assert table.blocks_per_sm(150, 192, 0, sm80) == 2  # registers
    assert table.blocks_per_sm(31, 256, 24_480, sm80) == 6  # shared memory
    assert table.blocks_per_sm(31, 256, 24_480, sm90) == 8
    assert table.launch("gpa_joint_errors<float, 2>", 150, sm80) == (192, 0)
    assert table.launch("gpa_tiled<float>", 31, sm80) == (256, 120 * 17 * 3 * 4)
    found = table.problems(
        {"gpa_strided<float>": {a.name: table.Resources(150, 0, 0, 0) for a in
                                table.ARCHES},
         "gpa_pair": {a.name: table.Resources(16, 8, 8, 8) for a in table.ARCHES}}
    )  # fmt: skip
    assert len(found) == 2 and "spills" in found[0] + found[1]
    if _config.CUDA_THREADS_PER_BLOCK <= 384:  # 150 registers still launch
        assert all("strided" not in f for f in found)


def test_tile_pitch_spreads_a_warps_reads_over_all_banks():
    for joints in range(1, 65):
        for values in (3 * joints, 2 * joints):
            pitch = _cuda.tile_pitch(values)
            assert pitch in (values, values + 1)
            # float32: the 32 lanes read words p * pitch; at most 2 per bank
            banks = np.bincount(np.arange(32) * pitch % 32, minlength=32)
            assert banks.max() <= 2, (joints, values)
    assert _cuda.tile_pitch(48) == 49 and _cuda.tile_pitch(51) == 51
    # J = 16: 16-way conflicts unpadded; the tile holds the padding
    assert _cuda.tile_poses(16, 4) == 125  # 24,576 // (49 * 4)
    plan = _cuda.gpa_plan(10_000, 16, 4, True, 132, _cuda.FEATURE_PROJECT)
    assert plan.shared == plan.tile * (49 + 33) * 4 <= _config.CUDA_TILE_BYTES


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("joints", [14, 16, 24])
def test_padded_tiles_equal_numpy(host, rng, dtype, joints):
    # 3 J or 2 J a multiple of 4: the tiles are staged at an odd pitch
    n = 45
    source, target, camera = centred_case(rng, n, 31, dtype, joints=joints)
    spec = P.resolve_pairing("permutation", n, 31, 5)
    records, _ = numpy_.prepare_records(target, camera, 0)
    for project in (False, True):
        want, got = np.empty_like(source), np.empty_like(source)
        want2d = got2d = None
        if project:
            want2d, got2d = (np.empty((n, joints, 2), dtype) for _ in range(2))
        assert numpy_.gpa_records(source, records, want, 0, spec, want2d) is None
        pending = host.gpa_records(source, records, got, 0, spec, got2d)
        assert host.read_status(pending) == [None]
        assert_bits_equal(got, want)
        if project:
            assert_bits_equal(got2d, want2d)
    kernels = {launch[0].split("<")[0] for launch in host.cupy.counter["launches"]}
    assert {"gpa_tiled", "gpa_tiled_ext"} <= kernels


def test_launches_fit_each_kernels_limits(library, rng, monkeypatch):
    # a configured block above what the registers of the heavy kernels allow,
    # and tiles above the device's opt-in shared memory: every launch is
    # clamped to its kernel and device, and tiles are planned from the clamped
    # values (each would fail on a device: LaunchError here)
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 512)
    monkeypatch.setattr(_config, "CUDA_TILE_BYTES", 512 * 1024)
    limits = {"gpa_tiled<double>": 256, "gpa_strided<double>": 128,
              "gpa_joint_errors<double, 2>": 384, "gpa_prepare<double>": 64}  # fmt: skip
    host = cupy_backend_on_host(library, 1, limits)
    source, target, camera = make_case(rng, 700, 300)
    spec = P.resolve_pairing("permutation", 700, 300, 2)
    want = _reference(source, target, camera, 0, 0, "paired", spec)[0]
    for view in (source, np.asfortranarray(source)):  # tiled, strided
        out = np.empty_like(view)
        _ours(host, view, target, camera, 0, 0, "paired", spec, out)
        assert_bits_equal(out, want)
    predicted, truth = _metric_case(rng, 40, np.float64)
    joints = np.arange(17, dtype=np.int64)
    got, _ = host.joint_errors(predicted, truth, joints, 0, numpy_.ALIGN_PROCRUSTES)
    np.testing.assert_allclose(
        got, numpy_.joint_errors(predicted, truth, joints, 0, 2)[0], rtol=1e-10
    )
    launches = {name: (block, shared) for name, _, block, shared in
                host.cupy.counter["launches"]}  # fmt: skip
    # 256 threads allowed, 569 poses of 408 bytes fit the opt-in limit: the
    # tile is the 256 poses the clamped block computes
    assert launches["gpa_tiled<double>"] == (256, 256 * 17 * 3 * 8)
    assert launches["gpa_strided<double>"] == (128, 0)
    assert launches["gpa_joint_errors<double, 2>"] == (384, 0)
    assert launches["gpa_prepare<double>"] == (64, 0)
    assert all(shared <= SHARED_OPTIN for _, shared in launches.values())
    # the stand-in refuses what a device would
    kernel = host._function("gpa", "gpa_tiled<double>")
    with pytest.raises(LaunchError):
        kernel.max_dynamic_shared_size_bytes = SHARED_OPTIN + 1
    with pytest.raises(LaunchError):
        kernel((1,), (257,), ())


_NO_TARGETS = """
import ctypes, sys
import numpy as np
from host_cuda import cupy_backend_on_host
from gpa_arrays import _pairing as P

host = cupy_backend_on_host(ctypes.CDLL(sys.argv[1]), 1)
rng = np.random.default_rng(0)
source = rng.normal(size=(40, 17, 3))
source[..., 2] += 5.0
index = np.arange(40)
spec = P.PairingSpec(P.KIND_ARRAY, 40, 0, index=index)
for dtype in (np.float32, np.float64):
    # no targets: empty records, passed as a null pointer as CuPy does
    records = host.cupy.empty((0, 8), dtype)
    for view in (source.astype(dtype), np.asfortranarray(source.astype(dtype))):
        out = np.empty_like(view)
        out2d = np.empty((40, 17, 2), dtype)
        for kw in ({}, {"out2d": out2d}, {"perspective": True}):
            pending = host.gpa_records(view, records, out, 0, spec, **kw)
            (status,) = host.read_status(pending)
            assert np.isnan(out).all() and status[2].tolist() == [40, 0]
print("read no record")
"""


def test_no_targets_reads_no_record(library):
    # N > 0, M = 0 never reaches a backend through the public API (below);
    # the kernels themselves must not read the (null) records either: in
    # paired mode they stand in for the camera, whose row 0 only poseda reads.
    # A null read kills the process, so the launches run in a child.
    tests = Path(__file__).parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tests.parent), str(tests)])
    result = subprocess.run(
        [sys.executable, "-c", _NO_TARGETS, library._name],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "read no record"


def test_api_refuses_no_targets_for_every_pairing_before_the_backend(device_api, rng):
    source, target, camera = make_case(rng, 6, 6)
    message = "target_2d: 6 sources need at least one target, got 0"
    for backend in ("auto", "numpy", "numba"):  # auto: the host-built CUDA
        for pairing in ("permutation", "random", np.zeros(6, np.int64)):
            with pytest.raises(ValueError, match=message):
                gpa_arrays.gpa(source, target[:0], camera[:0], pairing=pairing,
                               backend=backend)  # fmt: skip
            targets = gpa_arrays.prepare_targets(target[:0], camera[:0])
            with pytest.raises(ValueError, match=message):
                gpa_arrays.gpa(source, targets, pairing=pairing, backend=backend)
    assert not any(
        name.startswith(("gpa_tiled", "gpa_strided"))
        for name, *_ in device_api.cupy.counter["launches"]
    )


def test_gpa_kernel_without_status_counts_nothing(tiny, rng):
    source, target, camera = make_case(rng, 30, 30)
    source[2, 1, 1] = np.nan
    spec = P.resolve_pairing("random", 30, 30, 1)
    records, _ = tiny.prepare_records(target, camera, 0)
    loud = np.empty_like(source)
    quiet = np.empty_like(source)
    assert tiny.gpa_records(source, records, loud, 0, spec) is not None
    assert tiny.gpa_records(source, records, quiet, 0, spec, status=False) is None
    assert_bits_equal(quiet, loud)


def test_subnormal_values_are_kept(tiny):
    # float32 subnormals must not be flushed (CuPy compiles with -ftz=true; the
    # kernels' float arithmetic does not depend on it)
    tiny_value = np.float32(1e-41)
    source = np.zeros((2, 3, 3), np.float32)
    source[:, 1, :2] = 1.0
    source[:, 2, 0] = tiny_value
    source[:, :, 2] = 5.0
    target = np.array([[[0.0, 0.0], [0.1, 0.2], [tiny_value, 0.0]]] * 2, np.float32)
    camera = np.array([1.5, 1.5, tiny_value, -tiny_value], np.float32)
    camera = np.broadcast_to(camera, (2, 4))
    spec = P.resolve_pairing("identity", 2, 2, None)
    want = _reference(source, target, camera, 2, 2, "paired", spec)[0]
    out = np.empty_like(source)
    _ours(tiny, source, target, camera, 2, 2, "paired", spec, out)
    assert_bits_equal(out, want)
    assert (out != 0).any() and (np.abs(out[out != 0]) < 1e-37).any()


# --- return_2d, depth="perspective", projection and metrics on the host build -------


def centred_case(rng, n, m, dtype, cols=4, joints=17):
    """make_case with the root inside the body (a joint, not the root, nearest
    the camera), so that every perspective depth exists."""
    source, target, camera = make_case(
        rng, n, m, joints=joints, dtype=np.float64, camera_cols=cols
    )
    if joints > 1:
        source[:, 0] = source[:, 1:].mean(axis=1)
    return source.astype(dtype), target.astype(dtype), camera.astype(dtype)


def _launched(host):
    return {launch[0] for launch in host.cupy.counter["launches"]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_records_equal_numpy(host, rng, dtype):
    target, camera = _target_case(rng, dtype, m=40)
    camera = camera.copy()
    camera[[3, 17], [5, 8]] = [np.nan, -np.inf]
    records, _ = numpy_.prepare_records(target, camera, 0)
    want, want_status = numpy_.prepare_wide_records(records, camera)
    for cam in (camera, np.asfortranarray(camera), np.broadcast_to(camera[4], (40, 9))):
        expected = numpy_.prepare_wide_records(records, cam)
        got, pending = host.prepare_wide_records(records, cam)
        (status,) = host.read_status(pending)
        assert_bits_equal(got, expected[0])
        assert_status_equal(status, expected[1])
    assert want_status[3].tolist() == [2, 3]  # TARGET_DISTORTION: rows 3 and 17
    got, none = host.prepare_wide_records(records, camera, status=False)
    assert none is None
    assert_bits_equal(got, want)


def _gpa_2d_reference(source, records, wide, camera, root, mode, spec, perspective):
    out = np.empty_like(source)
    out2d = np.empty((*source.shape[:2], 2), source.dtype)
    if mode == "poseda":
        status = numpy_.gpa_poseda(source, records, camera, out, root, spec, out2d)
    elif wide is None:
        status = numpy_.gpa_records(
            source, records, out, root, spec, out2d, perspective=perspective
        )
    else:
        status = numpy_.gpa_records(
            source, wide[:, :8], out, root, spec, out2d, wide[:, 8:], perspective
        )
    return out, out2d, status


def _gpa_2d_ours(host, source, records, wide, camera, root, mode, spec, perspective,
                 out, out2d):  # fmt: skip
    if mode == "poseda":
        pending = host.gpa_poseda(source, records, camera, out, root, spec, out2d)
    elif wide is None:
        pending = host.gpa_records(
            source, records, out, root, spec, out2d, perspective=perspective
        )
    else:
        pending = host.gpa_records(
            source, wide[:, :8], out, root, spec, out2d, wide[:, 8:], perspective
        )
    (status,) = host.read_status(pending)
    return status


def _layouts_2d(source):
    """(name, source view, 3D out factory, 2D out factory)."""
    n, j = source.shape[:2]

    def c_2d(_):
        return np.empty((n, j, 2), source.dtype)

    def fortran_2d(_):
        return np.asfortranarray(np.empty((n, j, 2), source.dtype))

    def strided_2d(_):
        return np.empty((n, j, 5), source.dtype)[..., 1:5:2]

    return [
        ("contiguous", source, np.empty_like, c_2d),
        ("unaligned", np.concatenate([source[:1], source])[1:], np.empty_like, c_2d),
        ("fortran source", np.asfortranarray(source), np.empty_like, c_2d),
        ("fortran 2d", source, np.empty_like, fortran_2d),
        ("strided 2d", source, np.empty_like, strided_2d),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [4, 9])
@pytest.mark.parametrize(
    ("mode", "depth"),
    [("paired", "weak"), ("paired", "perspective"), ("poseda", "weak")],
)
def test_return_2d_kernels_equal_numpy(host, rng, dtype, cols, mode, depth):
    n = m = 45
    source, target, camera = centred_case(rng, n, m, dtype, cols)
    perspective = depth == "perspective"
    for kind in ("permutation", rng.integers(0, m, n)):
        spec = P.resolve_pairing(kind, n, m, 11, 2)
        if mode == "poseda":
            records, _ = numpy_.prepare_poseda_records(target, camera, 3)
            wide = None
        else:
            records, _ = numpy_.prepare_records(target, camera, 3)
            wide = (
                numpy_.prepare_wide_records(records, camera)[0] if cols == 9 else None
            )
        want, want_2d, want_status = _gpa_2d_reference(
            source, records, wide, camera, 0, mode, spec, perspective
        )
        assert want_status is None
        for name, view, make_out, make_out_2d in _layouts_2d(source):
            out, out2d = make_out(view), make_out_2d(view)
            status = _gpa_2d_ours(
                host, view, records, wide, camera, 0, mode, spec, perspective, out,
                out2d,
            )  # fmt: skip
            assert status is None, name
            assert_bits_equal(out, want)
            assert_bits_equal(out2d, want_2d)
    if perspective:
        # the solve moved the poses: the weak depth would give other bits
        weak = _gpa_2d_reference(source, records, wide, camera, 0, mode, spec, False)
        assert not np.array_equal(weak[0], want)
    features = (1 | (2 if perspective else 0)) if mode == "paired" else 1
    ctype = {np.float32: "float", np.float64: "double"}[dtype]
    assert {
        f"gpa_tiled_ext<{ctype}, {features}>",
        f"gpa_strided_ext<{ctype}, {features}>",
    } <= _launched(host)


@settings(max_examples=40)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    m=st.integers(1, 40),
    joints=st.integers(1, 23),
    dtype=st.sampled_from([np.float32, np.float64]),
    cols=st.sampled_from([4, 9]),
    features=st.sampled_from(_cuda.FEATURE_SETS),
)
def test_extended_kernels_property(library, seed, n, m, joints, dtype, cols, features):
    # any sizes (one joint: zero extent, flagged), either layout: the
    # host-built kernels give the reference's bits and statuses
    project = bool(features & _cuda.FEATURE_PROJECT)
    perspective = bool(features & _cuda.FEATURE_PERSPECTIVE)
    # hypothesis runs all examples in one test call: patch here, not by fixture
    with pytest.MonkeyPatch.context() as patch:
        host = backend_with_geometry(library, patch, "tiny")
        rng = np.random.default_rng(seed)
        source, target, camera = centred_case(rng, n, m, dtype, cols, joints)
        spec = P.resolve_pairing("random", n, m, seed)
        records, _ = numpy_.prepare_records(target, camera, 0)
        wide = numpy_.prepare_wide_records(records, camera)[0] if cols == 9 else None
        out2d = np.empty((n, joints, 2), dtype) if project else None
        rec, dist = (records, None) if wide is None else (wide[:, :8], wide[:, 8:])
        want = np.empty_like(source)
        want_status = numpy_.gpa_records(
            source, rec, want, 0, spec, out2d, dist, perspective
        )
        for view in (source, np.asfortranarray(source)):
            out = np.empty_like(source)
            got_2d = np.empty((n, joints, 2), dtype) if project else None
            pending = host.gpa_records(
                view, rec, out, 0, spec, got_2d, dist, perspective
            )
            (status,) = host.read_status(pending)
            assert_status_equal(status, want_status)
            assert_bits_equal(out, want)
            if project:
                assert_bits_equal(got_2d, out2d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_perspective_without_projection_equals_numpy(host, rng, dtype):
    n, m = 60, 23
    source, target, camera = centred_case(rng, n, m, dtype, joints=19)
    spec = P.resolve_pairing("random", n, m, 5)
    records, _ = numpy_.prepare_records(target, camera, 0)
    want = np.empty_like(source)
    assert numpy_.gpa_records(source, records, want, 0, spec, perspective=True) is None
    for name, view, make_out in _layouts(source):
        out = make_out(view)
        pending = host.gpa_records(view, records, out, 0, spec, perspective=True)
        assert host.read_status(pending) == [None], name
        assert_bits_equal(out, want)
    # in place, through the shared-memory tile
    inplace = source.copy()
    host.gpa_records(inplace, records, inplace, 0, spec, perspective=True)
    assert_bits_equal(inplace, want)
    ctype = {np.float32: "float", np.float64: "double"}[dtype]
    assert f"gpa_tiled_ext<{ctype}, 2>" in _launched(host)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_return_2d_kernels_flag_like_numpy(host, rng, dtype):
    n = 40
    source, target, camera = centred_case(rng, n, n, dtype, cols=9)
    source[2, 3, 1] = np.nan
    source[5, :, :2] = 0.5  # zero extent: depth 0, not attempted
    source[8, 4, 2] -= 30.0  # a joint far in front: behind the camera when weak
    # the root is the nearest joint and the others far behind: no perspective
    # depth gives a large target box
    source[11, 1:, 2] = source[11, 0, 2] + 3.0
    target[:, 1] = target[:, 0] + 0.9
    pairing = np.arange(n)
    pairing[[20, 30]] = [n, -3]
    spec = P.resolve_pairing(pairing, n, n, None)
    records, _ = numpy_.prepare_records(target, camera, 0)
    wide, _ = numpy_.prepare_wide_records(records, camera)
    for perspective in (False, True):
        want, want_2d, want_status = _gpa_2d_reference(
            source, records, wide, camera, 0, "paired", spec, perspective
        )
        for name, view, make_out, make_out_2d in _layouts_2d(source):
            out, out2d = make_out(view), make_out_2d(view)
            status = _gpa_2d_ours(
                host, view, records, wide, camera, 0, "paired", spec, perspective,
                out, out2d,
            )  # fmt: skip
            assert_status_equal(status, want_status), name
            # poses flagged for their input may hold NaN of another payload
            # where the reference's arithmetic differs; all others are exact
            fine = np.isfinite(want).all(axis=(1, 2))
            assert_bits_equal(out[fine], want[fine])
            assert_bits_equal(out2d[fine], want_2d[fine])
            assert np.isnan(out[~fine]).any(axis=(1, 2)).all()
        counts = want_status[:, 0].tolist()
        # non-finite, degenerate, index; no depth (perspective); behind (weak)
        assert counts[:3] == [1, 1, 2]
        assert (counts[3] > 0) == perspective
        assert (counts[4] > 0) != perspective


def _shrink_boxes(target, scales):
    """Target boxes scaled about their roots (joint 0): deeper placements."""
    root = target[:, :1]
    return (root + (target - root) * scales[:, None, None]).astype(target.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("mode", "depth", "cols"),
    [("paired", "weak", 4), ("paired", "perspective", 9), ("poseda", "weak", 9)],
)
def test_gpa_kernels_flag_precision_like_numpy(host, rng, dtype, mode, depth, cols):
    # box scales from 1 to 1e-7 (float32) or 1e-15 (float64) of the original:
    # the placements cross the output precision's threshold (POSE_PRECISION)
    n = 48
    source, target, camera = centred_case(rng, n, n, dtype, cols)
    low = -7 if dtype == np.float32 else -15
    target = _shrink_boxes(target, np.logspace(0, low, n))
    perspective = depth == "perspective"
    if mode == "poseda":
        records, _ = numpy_.prepare_poseda_records(target, camera, 0)
        wide = None
    else:
        records, _ = numpy_.prepare_records(target, camera, 0)
        wide = numpy_.prepare_wide_records(records, camera)[0] if cols == 9 else None
    rec = records if wide is None else wide[:, :8]
    spec = P.resolve_pairing("identity", n, n, None)
    for project in (False, True):
        if project:
            want, _, want_status = _gpa_2d_reference(
                source, records, wide, camera, 0, mode, spec, perspective
            )
        else:
            want = np.empty_like(source)
            if mode == "poseda":
                want_status = numpy_.gpa_poseda(source, rec, camera, want, 0, spec)
            else:
                want_status = numpy_.gpa_records(
                    source, rec, want, 0, spec, perspective=perspective
                )
        # flagged: a run at the end of the sweep, and nothing else
        count, first = want_status[_status.POSE_PRECISION].tolist()
        assert 3 < count < n - 3 and first == n - count
        assert want_status[:, 0].sum() == count
        for name, view, make_out, make_out_2d in _layouts_2d(source):
            out = make_out(view)
            if project:
                status = _gpa_2d_ours(
                    host, view, records, wide, camera, 0, mode, spec, perspective,
                    out, make_out_2d(view),
                )  # fmt: skip
            elif mode == "poseda":
                (status,) = host.read_status(
                    host.gpa_poseda(view, records, camera, out, 0, spec)
                )
            else:
                (status,) = host.read_status(
                    host.gpa_records(view, rec, out, 0, spec, perspective=perspective)
                )
            assert_status_equal(status, want_status), name
            assert_bits_equal(out, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [4, 9])
def test_project_points_equal_numpy(host, rng, dtype, cols):
    points = rng.normal(scale=0.5, size=(61, 3))
    points[:, 2] += 3.0
    camera = make_case(rng, 1, 61, dtype=np.float64, camera_cols=cols)[2]
    points, camera = points.astype(dtype), camera.astype(dtype)
    for per in (1, 61, 7):  # point rows, one camera, a camera per 7 points
        g = points.shape[0] // per
        pts = points[: g * per]
        cam = camera[:g]
        want = np.empty((g * per, 2), dtype)
        assert numpy_.project_points(pts, cam, per, want) is None
        for view, make_out in (
            (pts, lambda p: np.empty((p.shape[0], 2), dtype)),
            (
                np.asfortranarray(pts),
                lambda p: np.empty((p.shape[0], 3), dtype)[:, ::2],
            ),
        ):
            out = make_out(view)
            (status,) = host.read_status(host.project_points(view, cam, per, out))
            assert status is None
            assert_bits_equal(out, want)
    bad_points, bad_camera = points.copy(), camera[:9].copy()
    bad_points[[4, 20], 1] = np.nan
    bad_points[[9, 33, 60], 2] = [0.0, -1.0, np.nan]
    bad_camera[[2, 5], [0, cols - 1]] = [0.0, np.inf]
    per = 61 // 9
    bad_points = bad_points[: 9 * per]
    want = np.empty((9 * per, 2), dtype)
    want_status = numpy_.project_points(bad_points, bad_camera, per, want)
    got = np.empty_like(want)
    (status,) = host.read_status(host.project_points(bad_points, bad_camera, per, got))
    assert_status_equal(status, want_status)
    # non-finite: points 4 and 20, and the six points of row 5 (its infinite
    # value reaches their projections, point 33 included); behind: point 9;
    # cameras: rows 2 and 5 (point 60 is not projected: 9 rows of 6)
    assert want_status[:3, 0].tolist() == [8, 1, 2]
    assert_bits_equal(got, want)


def _metric_case(rng, n, dtype, joints=17):
    target = rng.normal(scale=0.3, size=(n, joints, 3))
    q = rng.normal(size=4)
    from gpa_arrays.camera import quaternion_to_matrix

    rotation = quaternion_to_matrix(q / np.linalg.norm(q))
    predicted = 0.9 * target @ rotation.T + rng.normal(scale=0.03, size=target.shape)
    predicted += rng.normal(size=(n, 1, 3))
    # collinear predictions: Horn's top eigenvalue repeats (the Jacobi path)
    predicted[3] = rng.normal(size=(joints, 1)) * rng.normal(size=(1, 3))
    predicted[4] = target[4] * [-1, 1, 1]  # a mirror image
    return predicted.astype(dtype), target.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_metric_kernels_equal_numba(tiny, rng, dtype):
    from gpa_arrays._backends import numba_

    predicted, target = _metric_case(rng, 50, dtype)
    subsets = [np.arange(17, dtype=np.int64), np.array([16, 2, 5, 9], dtype=np.int64)]
    views = [
        (predicted, target),
        (np.asfortranarray(predicted), target[::-1].copy()[::-1]),
    ]
    for joints in subsets:
        for p, t in views:
            for align in (
                numpy_.ALIGN_NONE,
                numpy_.ALIGN_SCALE,
                numpy_.ALIGN_PROCRUSTES,
            ):
                for root in (-1, 0, 7):
                    want, want_status = numba_.joint_errors(p, t, joints, root, align)
                    got, pending = tiny.joint_errors(p, t, joints, root, align)
                    (status,) = tiny.read_status(pending)
                    # the same float64 operations in the same order as Numba
                    assert_bits_equal(got, want)
                    assert_status_equal(status, want_status)
                    # and the NumPy oracle (SVD) to the stated tolerance
                    oracle, _ = numpy_.joint_errors(p, t, joints, root, align)
                    np.testing.assert_allclose(got, oracle, rtol=1e-10, atol=1e-12)
            want = numba_.procrustes_fit(p, t, joints)
            got = tiny.procrustes_fit(p, t, joints)
            for a, b in zip(got[:3], want[:3], strict=True):
                assert_bits_equal(a, b)
            assert tiny.read_status(got[3]) == [None] and want[3] is None
    assert tiny.cupy.counter["modules"][-1][2] == _cuda.name_expressions("metrics")


@pytest.mark.slow  # mixed-dtype Numba kernels (the oracle) of their own to compile
def test_metric_kernels_read_mixed_dtypes(tiny, rng):
    # the kernel is chosen by the prediction's dtype: the launcher gives the
    # target the same one (a float64 target read as float32 gave errors of
    # 566,717.6 mm for 17.32, and out-of-bounds reads on a device)
    from gpa_arrays._backends import numba_

    predicted, target = _metric_case(rng, 30, np.float64)
    joints = np.arange(17, dtype=np.int64)
    for p_dtype, t_dtype in ((np.float32, np.float64), (np.float64, np.float32)):
        p, t = predicted.astype(p_dtype), target.astype(t_dtype)
        for align in (numpy_.ALIGN_NONE, numpy_.ALIGN_SCALE, numpy_.ALIGN_PROCRUSTES):
            want, want_status = numba_.joint_errors(p, t, joints, 0, align)
            got, pending = tiny.joint_errors(p, t, joints, 0, align)
            assert tiny.read_status(pending) == [None] and want_status is None
            assert_bits_equal(got, want)
        want = numba_.procrustes_fit(p, t, joints)
        got = tiny.procrustes_fit(p, t, joints)
        for a, b in zip(got[:3], want[:3], strict=True):
            assert_bits_equal(a, b)
        assert tiny.read_status(got[3]) == [None]


def test_launchers_read_every_input_in_the_kernels_dtype(tiny, rng):
    # a kernel reads all its inputs as one type T: the launchers convert
    # records, cameras and clip anchors to it (as the public API does first),
    # and refuse outputs of another dtype
    f32 = np.float32
    source, target, camera = make_case(rng, 30, 20, camera_cols=9)
    s32, t32, c32 = (a.astype(f32) for a in (source, target, camera))
    spec = P.resolve_pairing("permutation", 30, 20, 3)
    want, _ = tiny.prepare_records(t32, c32, 0)
    assert_bits_equal(tiny.prepare_records(t32, camera, 0)[0], want)
    assert_bits_equal(
        tiny.prepare_wide_records(want, camera)[0],
        tiny.prepare_wide_records(want, c32)[0],
    )
    records = tiny.prepare_records(target, camera, 0)[0]  # float64
    for call in (
        lambda r, c, out: tiny.gpa_records(s32, r, out, 0, spec),
        lambda r, c, out: tiny.gpa_poseda(s32[:20], r, c, out[:20], 0,
                                          spec.chunk(0, 20)),
        lambda r, c, out: tiny.gpa_records(s32, r, out, 0, spec,
                                           np.empty((30, 17, 2), f32)),
    ):  # fmt: skip
        want, got = np.zeros_like(s32), np.zeros_like(s32)
        tiny.read_status(call(records.astype(f32), c32, want))
        tiny.read_status(call(records, camera, got))
        assert_bits_equal(got, want)
    points = source.reshape(-1, 3)[:40].astype(f32)
    want, got = np.empty((40, 2), f32), np.empty((40, 2), f32)
    tiny.read_status(tiny.project_points(points, c32[:4], 10, want))
    tiny.read_status(tiny.project_points(points, camera[:4], 10, got))
    assert_bits_equal(got, want)
    with pytest.raises(TypeError, match="out: expected dtype float32, got float64"):
        tiny.gpa_records(s32, records, np.empty_like(source), 0, spec)


def test_metric_kernels_flag_like_numba(tiny, rng):
    from gpa_arrays._backends import numba_

    predicted, target = _metric_case(rng, 30, np.float64)
    predicted[6, 2, 0] = np.inf
    target[9, 0, 1] = np.nan
    predicted[12] = 2.0  # all joints coincide: no scale
    joints = np.arange(17, dtype=np.int64)
    for align in (numpy_.ALIGN_NONE, numpy_.ALIGN_SCALE, numpy_.ALIGN_PROCRUSTES):
        want, want_status = numba_.joint_errors(predicted, target, joints, 0, align)
        got, pending = tiny.joint_errors(predicted, target, joints, 0, align)
        (status,) = tiny.read_status(pending)
        assert_status_equal(status, want_status)
        assert_bits_equal(got, want)
        degenerate = 0 if align == numpy_.ALIGN_NONE else 1
        assert status[:2, 0].tolist() == [2, degenerate]
    want = numba_.procrustes_fit(predicted, target, joints)
    got = tiny.procrustes_fit(predicted, target, joints)
    for a, b in zip(got[:3], want[:3], strict=True):
        assert_bits_equal(a, b)
    assert_status_equal(tiny.read_status(got[3])[0], want[3])


# --- the public API's device path, on the host kernels --------------------------------


@pytest.fixture
def device_api(tiny, monkeypatch):
    """gpa_arrays' public functions routed to the CuPy backend on the host.

    ``backend="auto"`` (the default) runs the host-built CUDA kernels; a host
    backend named explicitly still runs, as the reference to compare with.
    """
    from gpa_arrays import camera, metrics

    resolve = _api._resolve_backend

    def routed(backend, device=None):
        if backend == "auto":
            return "cupy", tiny
        return resolve(backend, device)

    for module in (_api, camera, metrics):
        monkeypatch.setattr(module, "_resolve_backend", routed)
    return tiny


def test_api_device_path_synchronises_once(device_api, rng):
    counter = device_api.cupy.counter
    source, target, camera = make_case(rng, 80, 31, dtype=np.float32)
    want = gpa_arrays.gpa(source, target, camera, seed=3, backend="numpy")

    def waits(*args, **kwargs):
        before = counter["synchronize"]
        got = gpa_arrays.gpa(source, *args, seed=3, **kwargs)
        np.testing.assert_array_equal(got, want)
        return counter["synchronize"] - before

    assert waits(target, camera) == 1  # targets and poses: one round trip
    assert waits(target, camera, check=False) == 0  # fully asynchronous
    targets = gpa_arrays.prepare_targets(target, camera)
    assert targets.backend == "cupy"
    assert waits(targets) == 1
    assert waits(targets, check=False) == 0
    index = gpa_arrays.pair_indices(80, 31, seed=3)
    # explicit indices are range-checked even without check: one read
    assert waits(target, camera, pairing=index, check=False) == 1
    # the module compiled is the kernel source with the backend's options
    ((code, options, names),) = counter["modules"]
    assert code == _cuda.source() and options == _cuda.OPTIONS
    assert names == _cuda.name_expressions()


def test_api_device_path_raises_like_the_host(device_api, rng):
    source, target, camera = make_case(rng, 20, 20)
    bad = source.copy()
    bad[4, 2, 1] = np.nan
    with pytest.raises(ValueError, match="1 of 20 pose gives non-finite output"):
        gpa_arrays.gpa(bad, target, camera, seed=0)
    flat = target.copy()
    flat[6] = 0.1
    # target problems come first, although both kernels ran before the read
    with pytest.raises(ValueError, match="target_2d: 1 of 20 target has a degenerate"):
        gpa_arrays.gpa(bad, flat, camera, seed=0)
    with pytest.raises(
        ValueError, match=r"target_2d: 1 of 20 target .*first at index 6"
    ):
        gpa_arrays.gpa(source, flat, camera, seed=0, mode="poseda")
    with pytest.raises(ValueError, match="first at index 6"):
        gpa_arrays.prepare_targets(flat, camera)
    gpa_arrays.gpa(bad, flat, camera, seed=0, check=False)  # quiet
    index = np.arange(20)
    index[[3, 9]] = [20, -5]
    with pytest.raises(
        ValueError, match=r"pairing: 2 of 20 target indices .*position 3 \(value 20\)"
    ):
        gpa_arrays.gpa(source, target, camera, pairing=index, check=False)


def test_api_device_path_return_2d_and_perspective(device_api, rng):
    counter = device_api.cupy.counter
    for cols in (4, 9):
        source, target, camera = centred_case(rng, 70, 31, np.float64, cols)
        for depth in ("weak", "perspective"):
            kw = dict(seed=4, depth=depth, return_2d=True)
            want = gpa_arrays.gpa(source, target, camera, backend="numba", **kw)
            before = counter["synchronize"]
            got = gpa_arrays.gpa(source, target, camera, **kw)
            # records, wide records and poses: one round trip for all statuses
            assert counter["synchronize"] - before == 1
            assert_bits_equal(got[0], want[0])
            assert_bits_equal(got[1], want[1])
            got = gpa_arrays.gpa(source, target, camera, check=False, **kw)
            assert counter["synchronize"] - before == 1
            assert_bits_equal(got[1], want[1])
            # prepared on the "device", wide records included
            before = counter["synchronize"]
            targets = gpa_arrays.prepare_targets(target, camera)
            assert counter["synchronize"] - before == 1
            assert (targets.distortion is None) == (cols == 4)
            out = (np.empty_like(source), np.asfortranarray(np.empty((70, 17, 2))))
            got = gpa_arrays.gpa(source, targets, out=out, **kw)
            assert got[0] is out[0] and got[1] is out[1]
            assert_bits_equal(got[0], want[0])
            assert_bits_equal(np.ascontiguousarray(got[1]), want[1])
        kw = dict(seed=4, mode="poseda", return_2d=True)
        want = gpa_arrays.gpa(source[:31], target, camera, backend="numpy", **kw)
        got = gpa_arrays.gpa(source[:31], target, camera, **kw)
        assert_bits_equal(got[1], want[1])


def test_api_device_path_raises_2d_and_depth_problems(device_api):
    source = np.array([[[0.0, 0.0, 3.0], [0.3, 0.3, 2.0]]])
    target = np.array([[[0.0, 0.0], [1.0, 1.0]]])
    camera = [1.5, 1.5, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"source_3d: 1 of 1 aligned pose has a joint"):
        gpa_arrays.gpa(source, target, camera, return_2d=True)
    far = np.array([[[0.0, 0.0, 5.0], [0.1, 0.1, 6.0], [-0.1, -0.1, 6.0]]])
    target = np.array([[[0.0, 0.0], [0.5, 0.5]]])
    with pytest.raises(ValueError, match=r"depth: 1 of 1 poses* ha[sv]e* no depth"):
        gpa_arrays.gpa(far, target, camera, depth="perspective")
    distorted = np.array([1.5, 1.5, 0.0, 0.0, 0.1, np.nan, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"camera: 1 of 1 row has a non-finite dist"):
        gpa_arrays.gpa(far, target, distorted, return_2d=True)
    with pytest.raises(ValueError, match=r"camera: 1 of 1 row has a non-finite dist"):
        gpa_arrays.prepare_targets(target, distorted)


def test_api_device_path_project_and_metrics(device_api, rng):
    from gpa_arrays import camera as camera_module
    from gpa_arrays import metrics

    counter = device_api.cupy.counter
    points = rng.normal(scale=0.3, size=(12, 17, 3))
    points[..., 2] += 4.0
    cams = make_case(rng, 1, 12, camera_cols=9)[2]
    want = camera_module.project(points, cams, backend="numpy")
    before = counter["synchronize"]
    assert_bits_equal(camera_module.project(points, cams), want)
    assert_bits_equal(camera_module.project(points, cams[0]), camera_module.project(
        points, cams[0], backend="numpy"))  # fmt: skip
    assert counter["synchronize"] - before == 2
    camera_module.project(points, cams, check=False)
    assert counter["synchronize"] - before == 2  # unchecked: asynchronous
    bad = points.copy()
    bad[3, 5, 2] = -1.0
    with pytest.raises(
        ValueError, match=r"1 of 204 point lies at or behind .*\(3, 5\)"
    ):
        camera_module.project(bad, cams)

    predicted, target = _metric_case(rng, 24, np.float64)
    predicted = predicted.reshape(4, 6, 17, 3)
    target = target.reshape(4, 6, 17, 3)
    for metric, kwargs in (
        (metrics.mpjpe, {"root": 0}),
        (metrics.n_mpjpe, {"root": 0}),
        (metrics.p_mpjpe, {}),
        (metrics.pck, {"root": 0, "align": "procrustes"}),
        (metrics.auc, {"root": 0}),
    ):
        for reduction in ("mean", "pose", "none"):
            want = metric(predicted, target, reduction=reduction, backend="numba",
                          **kwargs)  # fmt: skip
            got = metric(predicted, target, reduction=reduction, **kwargs)
            np.testing.assert_array_equal(got, want)
    want = metrics.procrustes(predicted, target, backend="numba")
    got = metrics.procrustes(predicted, target)
    for a, b in zip(got, want, strict=True):
        assert_bits_equal(a, b)
    # mixed dtypes: one rule for every backend (both read as float64)
    for p, t in ((predicted.astype(np.float32), target), (predicted, target.astype(
            np.float32)), (predicted.astype(np.float32), target.astype(np.int32))):  # fmt: skip
        for backend in ("numba", "numpy"):
            want = metrics.mpjpe(p, t, reduction="none", backend=backend)
            np.testing.assert_allclose(
                metrics.mpjpe(p, t, reduction="none"), want, rtol=1e-12
            )
        want = metrics.procrustes(p, t, backend="numba")
        for a, b in zip(metrics.procrustes(p, t), want, strict=True):
            assert_bits_equal(a, b)
    flat = predicted.copy()
    flat[2, 3] = 1.0
    with pytest.raises(
        ValueError, match=r"1 of 24 pose has all scored joints at one point.*\(2, 3\)"
    ):
        metrics.p_mpjpe(flat, target)
    # the joint subset is uploaded once per subset, not once per call
    uploads = len(device_api._joint_cache.arrays)
    metrics.mpjpe(predicted, target, joints=[1, 2, 3])
    metrics.mpjpe(predicted, target, joints=[1, 2, 3])
    assert len(device_api._joint_cache.arrays) == uploads + 1


def test_api_device_path_clips(device_api, rng):
    # clip-consistent GPA on the device: the reference frames through the GPA
    # kernels, the clip translation through gpa_clip, the 2D through gpa_project
    counter = device_api.cupy.counter
    for cols in (4, 9):
        source, target, camera = centred_case(rng, 24, 19, np.float64, cols)
        clips = source[:, None] + rng.normal(scale=0.01, size=(24, 5, 17, 3))
        for dtype in (np.float32, np.float64):
            clips_d, target_d, camera_d = (
                a.astype(dtype) for a in (clips, target, camera)
            )
            for kw in ({}, {"return_2d": True}, {"depth": "perspective"}):
                kw = dict(seed=7, reference_frame=1, **kw)
                want = gpa_arrays.gpa(
                    clips_d, target_d, camera_d, backend="numba", **kw
                )
                got = gpa_arrays.gpa(clips_d, target_d, camera_d, **kw)
                pairs = (
                    zip(got, want, strict=True) if "return_2d" in kw else [(got, want)]
                )
                for a, b in pairs:
                    assert_bits_equal(a, b)
    assert "gpa_clip<float>" in _launched(device_api)
    assert "gpa_clip<double>" in _launched(device_api)
    # in place, prepared targets, no status without check
    targets = gpa_arrays.prepare_targets(target, camera)
    want = gpa_arrays.gpa(clips, targets, seed=2, backend="numba")
    inplace = clips.copy()
    before = counter["synchronize"]
    got = gpa_arrays.gpa(inplace, targets, seed=2, out=inplace, check=False)
    assert counter["synchronize"] == before  # fully asynchronous
    assert got is inplace
    assert_bits_equal(inplace, want)
    # a bad frame outside the reference frame is reported by clip
    bad = clips.copy()
    bad[[3, 5, 5], [0, 4, 2], 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"2 of 24 poses give non-finite .*index 3"):
        gpa_arrays.gpa(bad, targets, seed=2)
