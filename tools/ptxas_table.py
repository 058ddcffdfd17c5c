"""Resource table of the CUDA kernels, from ``ptxas -v``, for sm_80 and sm_90.

No GPU needed. Every NVRTC module of :data:`gpa_arrays._backends._cuda.MODULES` is
compiled to PTX exactly as CuPy compiles it (the backend's options, then CuPy's
``-ftz=true`` and the architecture), the PTX is assembled by ``ptxas -v``, and for
every kernel instantiation the table gives its registers, spills, stack frame, the
launch configuration the backend chooses for it (threads per block and dynamic
shared memory, at J = 17 for the tiled kernels) and how many such blocks an SM
holds. The table is written as reStructuredText (``docs/cuda_resources.inc``,
included by ``docs/backends.rst``).

The run fails (exit status 1) when a kernel spills registers to local memory or
cannot launch at the configured block size (``CUDA_THREADS_PER_BLOCK``, and the
``roundup(tile, 32)`` threads of a tiled kernel) or shared memory
(``CUDA_TILE_BYTES``): the backend would then clamp the launch, or the kernel would
be slow. Without NVRTC or ptxas it skips (exit 0), unless
``GPA_ARRAYS_STRICT_TOOLCHAIN=1`` (CI) makes that an error.

ptxas is taken from ``$PTXAS``, else from the ``nvidia-cuda-nvcc-cu12`` wheel
(the CUDA 12 assembler, the release of the NVRTC wheel the tests use), else from
``PATH``. Usage::

    python tools/ptxas_table.py                 # write docs/cuda_resources.inc
    python tools/ptxas_table.py --output -      # print the table only
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpa_arrays import _config  # noqa: E402
from gpa_arrays._backends import _cuda  # noqa: E402

DEFAULT_OUTPUT = ROOT / "docs" / "cuda_resources.inc"
STRICT = os.environ.get("GPA_ARRAYS_STRICT_TOOLCHAIN") == "1"

#: Joints of the pose the tiled kernels' launch is planned for (Human3.6M-17).
JOINTS = 17


@dataclass(frozen=True)
class Arch:
    """The per-SM limits of one architecture.

    From the CUDA C++ Programming Guide, table "Technical Specifications per
    Compute Capability"; the multiprocessors are those of an A100 and an H100
    SXM (they only size the grid, which no column depends on).
    """

    name: str
    shared_per_sm: int  # bytes, the largest carve-out
    shared_optin: int  # bytes one block may opt in to
    multiprocessors: int  # of the reference part (A100 SXM, H100 SXM)
    registers_per_sm: int = 65536
    partitions: int = 4  # an SM's register file is split between 4 schedulers
    max_warps: int = 64
    max_blocks: int = 32
    reserved_shared: int = 1024  # per block, used by the system (sm_80 and later)


ARCHES = (
    Arch("sm_80", 164 * 1024, 163 * 1024, 108),
    Arch("sm_90", 228 * 1024, 227 * 1024, 132),
)


@dataclass
class Resources:
    """What ``ptxas -v`` reports for one kernel (bytes, except registers)."""

    registers: int
    stack: int
    spill_stores: int
    spill_loads: int


# --- compiling ----------------------------------------------------------------------


def skip(reason):
    """Exit: 0 with a note, or 1 under GPA_ARRAYS_STRICT_TOOLCHAIN=1."""
    print(f"ptxas_table: {reason}", file=sys.stderr)
    sys.exit(1 if STRICT else 0)


def find_ptxas():
    """The ptxas to run, or None."""
    if os.environ.get("PTXAS"):
        return os.environ["PTXAS"]
    try:
        import nvidia  # the namespace package of NVIDIA's CUDA wheels
    except ImportError:
        nvidia = None
    for base in getattr(nvidia, "__path__", []):
        candidate = Path(base) / "cuda_nvcc" / "bin" / "ptxas"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("ptxas")


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        skip("cuda-bindings is not installed (pip install '.[test]')")
    return nvrtc


def _checked(nvrtc, result):
    error, *values = result
    if error != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"NVRTC: {error}")
    return values


def compile_ptx(nvrtc, module, arch):
    """``(ptx, {mangled name: name expression})`` of one module, as CuPy builds it."""
    main, names = _cuda.MODULES[module]
    source = _cuda.source(main).encode()
    (program,) = _checked(nvrtc, nvrtc.nvrtcCreateProgram(source, b"k.cu", 0, [], []))
    try:
        for name in names:
            _checked(nvrtc, nvrtc.nvrtcAddNameExpression(program, name.encode()))
        options = [*_cuda.OPTIONS, "-ftz=true", f"-arch=compute_{arch.name[3:]}"]
        encoded = [o.encode() for o in options]
        (result,) = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            (size,) = _checked(nvrtc, nvrtc.nvrtcGetProgramLogSize(program))
            log = b" " * size
            _checked(nvrtc, nvrtc.nvrtcGetProgramLog(program, log))
            raise RuntimeError(f"NVRTC failed on {module}:\n{log.decode()}")
        (size,) = _checked(nvrtc, nvrtc.nvrtcGetPTXSize(program))
        ptx = b" " * size
        _checked(nvrtc, nvrtc.nvrtcGetPTX(program, ptx))
        lowered = {}
        for name in names:
            (mangled,) = _checked(
                nvrtc, nvrtc.nvrtcGetLoweredName(program, name.encode())
            )
            mangled = mangled.decode() if isinstance(mangled, bytes) else mangled
            lowered[mangled] = name
        return ptx.rstrip(b"\0 "), lowered
    finally:
        nvrtc.nvrtcDestroyProgram(program)


_FUNCTION = re.compile(r"Compiling entry function '(\w+)'")
_FRAME = re.compile(
    r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads"
)
_USED = re.compile(r"Used (\d+) registers")


def assemble(ptxas, ptx, arch):
    """``{mangled name: Resources}`` from ``ptxas -v`` of one PTX module."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "module.ptx"
        path.write_bytes(ptx)
        command = [ptxas, "-v", f"-arch={arch.name}", str(path), "-o", os.devnull]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{run.stderr}")
    found, current, frame = {}, None, None
    for line in (run.stdout + run.stderr).splitlines():
        if match := _FUNCTION.search(line):
            current = match.group(1)
        elif (match := _FRAME.search(line)) and current:
            frame = [int(v) for v in match.groups()]
        elif (match := _USED.search(line)) and current:
            found[current] = Resources(int(match.group(1)), *(frame or (0, 0, 0)))
            current, frame = None, None
    return found


# --- launch configuration and occupancy ---------------------------------------------


def max_threads(registers, arch):
    """``max_threads_per_block`` the driver derives from a kernel's registers.

    Registers are allocated per warp in units of 256, within one of the SM's
    four scheduler partitions (65,536 registers in all); a block's warps are
    spread over the partitions.
    """
    per_warp = -(-max(registers, 1) * 32 // 256) * 256
    per_partition = arch.registers_per_sm // arch.partitions // per_warp
    return min(1024, 32 * per_partition * arch.partitions)


def blocks_per_sm(registers, block, shared, arch):
    """Resident blocks of `block` threads and `shared` dynamic bytes on one SM."""
    warps = -(-block // 32)
    per_warp = -(-max(registers, 1) * 32 // 256) * 256
    register_warps = arch.registers_per_sm // arch.partitions // per_warp
    limits = [
        arch.max_blocks,
        arch.max_warps // warps,
        register_warps * arch.partitions // warps,
        arch.shared_per_sm // (shared + arch.reserved_shared),
    ]
    return max(0, min(limits))


def _family(name):
    """``gpa_tiled_ext<float, 3>`` -> (``gpa_tiled_ext``, float32, 3)."""
    kernel, _, rest = name.partition("<")
    args = [a.strip() for a in rest.rstrip(">").split(",")] if rest else []
    dtype = {"float": np.float32, "double": np.float64}.get(args[0]) if args else None
    features = int(args[1]) if len(args) > 1 else 0
    return kernel, dtype, features


def launch(name, registers, arch, clamp=True):
    """``(threads, shared bytes)`` the backend launches `name` with.

    With `clamp` the kernel's register limit applies, as at run time; without
    it, the configured sizes alone (what must fit for the configuration to
    launch unclamped).
    """
    kernel, dtype, features = _family(name)
    if clamp:
        limit = max_threads(registers, arch)
        tile_bytes = min(_config.CUDA_TILE_BYTES, arch.shared_optin)
    else:
        limit = max(1024, _config.CUDA_THREADS_PER_BLOCK)
        tile_bytes = _config.CUDA_TILE_BYTES
    if kernel.startswith(("gpa_tiled", "gpa_strided")):
        itemsize = np.dtype(dtype).itemsize
        contiguous = kernel.startswith("gpa_tiled")
        plan = _cuda.gpa_plan(
            10**6, JOINTS, itemsize, contiguous, arch.multiprocessors, features,
            lambda _: limit, tile_bytes,
        )  # fmt: skip
        return plan.block, plan.shared
    return _cuda.block_size(limit), 0


# --- the table ----------------------------------------------------------------------


def measure(ptxas):
    """``{name expression: {arch name: Resources}}`` for every kernel instance."""
    nvrtc = _nvrtc()
    table = {}
    for module in _cuda.MODULES:
        for arch in ARCHES:
            ptx, lowered = compile_ptx(nvrtc, module, arch)
            for mangled, resources in assemble(ptxas, ptx, arch).items():
                # a module also holds every non-template kernel of its file
                # (gpa_pair in each gpa.cu module): each is listed once
                if mangled in lowered:
                    table.setdefault(lowered[mangled], {})[arch.name] = resources
    return table


def problems(table):
    """What makes the run fail: spills, and launches the configuration cannot make."""
    found = []
    for name, per_arch in table.items():
        for arch in ARCHES:
            r = per_arch[arch.name]
            if r.spill_stores or r.spill_loads:
                found.append(f"{name} ({arch.name}) spills: {r}")
            threads, shared = launch(name, r.registers, arch, clamp=False)
            if threads > max_threads(r.registers, arch):
                found.append(
                    f"{name} ({arch.name}): {r.registers} registers allow "
                    f"{max_threads(r.registers, arch)} threads per block, the "
                    f"configuration launches {threads}"
                )
            if shared > arch.shared_optin:
                found.append(
                    f"{name} ({arch.name}): {shared} bytes of shared memory, "
                    f"above the {arch.shared_optin} a block may opt in to"
                )
    return found


def _row(name, per_arch):
    cells = [f"``{name}``"]
    cells.append(" / ".join(str(per_arch[a.name].registers) for a in ARCHES))
    cells.append(
        " / ".join(
            f"{r.spill_stores + r.spill_loads} ({r.stack})"
            for r in (per_arch[a.name] for a in ARCHES)
        )
    )
    launches = [launch(name, per_arch[a.name].registers, a) for a in ARCHES]
    cells.append(" / ".join(str(t) for t, _ in launches))
    cells.append(" / ".join(f"{s:,}" if s else "0" for _, s in launches))
    cells.append(
        " / ".join(
            str(blocks_per_sm(per_arch[a.name].registers, t, s, a))
            for a, (t, s) in zip(ARCHES, launches, strict=True)
        )
    )
    cells.append(
        " / ".join(
            str(blocks_per_sm(per_arch[a.name].registers, t, s, a) * -(-t // 32))
            for a, (t, s) in zip(ARCHES, launches, strict=True)
        )
    )
    return cells


def render(table, ptxas_version):
    """The table as reStructuredText."""
    header = ["kernel", "registers", "spilled (stack)", "threads",
              "shared bytes", "blocks / SM", "warps / SM"]  # fmt: skip
    rows = [_row(name, table[name]) for name in sorted(table)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        padded = (c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    lines = [
        ".. Generated by tools/ptxas_table.py; do not edit.",
        "",
        f"Each pair of values is sm_80 / sm_90 ({ptxas_version}; NVRTC with the "
        "backend's options). Spilled: bytes of spill stores and loads, with the "
        "stack frame in parentheses. Launches as the backend plans them with "
        f"``CUDA_THREADS_PER_BLOCK={_config.CUDA_THREADS_PER_BLOCK}`` and "
        f"``CUDA_TILE_BYTES={_config.CUDA_TILE_BYTES}``, tiled kernels at "
        f"J = {JOINTS}; blocks and warps per SM at that launch (64 warps is full "
        "occupancy).",
        "",
        rule,
        line(header),
        rule,
        *(line(r) for r in rows),
        rule,
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    """Write the table; 1 when a kernel spills or cannot launch as configured."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="file to write, or - to print"
    )
    args = parser.parse_args(argv)
    ptxas = find_ptxas()
    if ptxas is None:
        skip("no ptxas ($PTXAS, the nvidia-cuda-nvcc-cu12 wheel or PATH)")
    version = subprocess.run(
        [ptxas, "--version"], capture_output=True, text=True, check=True
    ).stdout
    release = re.search(r"release (\d+\.\d+), V([\d.]+)", version)
    ptxas_version = f"ptxas {release.group(2)}" if release else "ptxas"
    table = measure(ptxas)
    text = render(table, ptxas_version)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    found = problems(table)
    for problem in found:
        print(f"ptxas_table: {problem}", file=sys.stderr)
    print(f"ptxas_table: {len(table)} kernels, {len(found)} problems ({ptxas_version})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
