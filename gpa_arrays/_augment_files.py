"""The ``gpa-arrays augment`` job: input files in, one output file out.

The command line parses its arguments into an :class:`AugmentRequest` and
reports the :class:`InputError` this module raises; everything else is here.
Every input is read and checked (:mod:`gpa_arrays._files`), the output path
checked, the targets prepared and the pairing resolved before the first source
pose is aligned; the aligned blocks then go through the shared out-of-core
driver (:mod:`gpa_arrays._outofcore`), from a loop over chunks or from Dask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os

import numpy as np

from . import _api, _files, _outofcore, skeletons
from ._pairing import resolve_pairing, resolve_seed
from ._validate import camera_rows, frame_index, joint_index, result_dtype

__all__ = ["LAYOUT_ALIASES", "AugmentRequest", "InputError", "layout_names", "run"]

#: Layout names of earlier releases, still accepted: alias -> skeletons name.
LAYOUT_ALIASES = {
    "h36m-17": "h36m_17",
    "h36m-16": "h36m_16",
    "3dhp-17": "mpi_inf_3dhp_17",
}

#: Rows read at a time when checking an explicit pairing file.
_CHECK_ROWS = 1 << 18


class InputError(ValueError):
    """A problem with the user's input or output: one line, exit status 2."""


def layout_names():
    """Accepted ``--*-layout`` values: skeletons names, then the old aliases."""
    return (*skeletons.names(), *LAYOUT_ALIASES)


@dataclasses.dataclass(frozen=True)
class AugmentRequest:
    """What ``gpa-arrays augment`` was asked to do (see its ``--help``).

    `camera` is None (the camera key of TARGET), a ``.npy`` path, or one row
    of numbers parsed by the command line; `camera_text` is how the user wrote
    it. The other fields are the command's options of the same name.
    """

    source: str
    target: str
    output: str
    source_key: str = "source_3d"
    target_key: str = "target_2d"
    camera_key: str = "camera"
    camera: object = None
    camera_text: str | None = None
    source_layout: str | None = None
    target_layout: str | None = None
    root: int | None = None
    target_root: int | None = None
    pairing: str = "permutation"
    seed: int | None = None
    reference_frame: int | None = None
    mode: str = "paired"
    depth: str = "weak"
    dtype: str = "auto"
    backend: str = "auto"
    chunk: int = 1 << 18
    compress: bool = False
    dask: bool = False
    workers: int | None = None
    scheduler: str | None = None

    @property
    def dask_option(self):
        """The Dask option the user gave (for messages), or None without Dask."""
        if self.workers is not None:
            return f"--workers {self.workers}"
        if self.scheduler is not None:
            return f"--scheduler {self.scheduler}"
        return "--dask" if self.dask else None


@dataclasses.dataclass
class _Plan:
    """Everything checked and resolved before the first pose is aligned."""

    source: np.ndarray
    dtype: np.dtype
    seed: int
    spec: object
    backend: str
    m: int
    run: object  # run(offset, count) -> aligned block, without Dask
    targets: object = None  # prepared Targets (paired mode)
    pairing: object = None
    root: int = 0
    frame: int | None = None


def run(request, *, log, progress):
    """Do the job; returns the summary line's facts as a dict.

    Parameters
    ----------
    request : AugmentRequest
    log : callable
        ``log(text)`` prints a status line (stderr).
    progress : callable
        ``progress(total, chunks)`` returns an object with ``update(count)``
        and ``close()``.

    Raises
    ------
    InputError
        Bad input, options or output path; nothing is written.
    gpa_arrays._outofcore.Terminated, KeyboardInterrupt
        A signal; the output is untouched and no temporary is left.
    """
    output = _check_paths(request)
    gdask = _check_dask(request)
    with contextlib.ExitStack() as stack:
        # created first: an output that cannot be written stops the job here
        try:
            target = stack.enter_context(_outofcore.AtomicOutput(output, "-o"))
        except _outofcore.OutputError as exc:
            raise InputError(str(exc)) from None
        try:
            plan = _plan(request)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise InputError(_one_line(exc)) from None
        if gdask is None:
            where = ""
            blocks = _outofcore.local_blocks(plan.run, len(plan.source), request.chunk)
        else:
            blocks, where = _dask_blocks(request, plan, gdask, stack)
        return _write(request, target, plan, blocks, where, log, progress)


def _one_line(exc):
    return " ".join(str(exc).split())


def _check_paths(request):
    """The absolute output path, checked; inputs are never overwritten."""
    try:
        output = _outofcore.check_output(request.output, "-o", (".npy", ".npz"))
    except _outofcore.OutputError as exc:
        raise InputError(str(exc)) from None
    inputs = [request.source, request.target]
    for path in (request.camera, request.pairing):
        if isinstance(path, str) and path.lower().endswith(".npy"):
            inputs.append(path)
    for path in inputs:
        if os.path.exists(output) and _same_file(path, output):
            raise InputError(
                f"-o {request.output}: is an input file; inputs are never overwritten"
            )
    if request.depth != "weak":
        raise InputError(
            f"--depth {request.depth}: not supported by the chunked driver yet"
        )
    return output


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _check_dask(request):
    """:mod:`gpa_arrays.dask` when a Dask option is given, else None."""
    option = request.dask_option
    if option is None:
        return None
    if request.mode == "poseda":
        raise InputError(
            f"{option}: --mode poseda is not supported with Dask (its depth "
            "uses camera row 0 of the whole call, so it runs in one piece in "
            "memory); leave out the Dask options"
        )
    try:
        import dask.array  # noqa: F401

        from . import dask as gdask

        if request.workers or request.scheduler:
            import distributed  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"{option} needs Dask and distributed, which are not installed "
            f'({exc}): pip install "gpa-arrays[dask]"'
        ) from None
    return gdask


# --- reading and checking ----------------------------------------------------------


def _load(path, key, what, name, kinds=_files.REAL):
    try:
        return _files.load(path, key, what, name, kinds)
    except _files.FileError as exc:
        raise InputError(str(exc)) from None


def _check_shape(array, name, path, last):
    """Poses ``(N, J, last)`` or clips ``(N, T, J, last)``."""
    if array.ndim not in (3, 4) or array.shape[-1] != last or 0 in array.shape[1:]:
        expected = {
            3: "(N, J, 3) (poses, joints, xyz) or (N, T, J, 3) (clips)",
            2: "(M, Jt, 2) or (M, Tt, Jt, 2)",
        }[last]
        raise InputError(
            f"{path}: {name}: expected shape {expected}, got {array.shape}"
        )


def _frames(request, source, target):
    """Reference frames of source and target clips (None for poses)."""
    frame = target_frame = None
    if source.ndim == 4:
        frame = frame_index(request.reference_frame, source.shape[1],
                            "--reference-frame", "source clips")  # fmt: skip
    if target.ndim == 4:
        target_frame = frame_index(request.reference_frame, target.shape[1],
                                   "--reference-frame", "target clips")  # fmt: skip
    if request.reference_frame is not None and source.ndim == target.ndim == 3:
        raise InputError(
            "--reference-frame: only for clips, (N, T, J, 3) SOURCE or (M, Tt, Jt, "
            "2) TARGET"
        )
    if request.mode == "poseda" and source.ndim == 4:
        raise InputError(
            "--mode poseda: the published per-pose arithmetic takes (N, J, 3) "
            "poses; clips need the paired mode"
        )
    return frame, target_frame


def _camera(request, m):
    """Camera rows broadcast to ``(M, C)``, checked by the shared validator."""
    if isinstance(request.camera, str):
        camera = _load(request.camera, None, "--camera", "camera")
    elif request.camera is not None:
        camera = request.camera
    elif request.target.lower().endswith(".npz"):
        camera = _load(request.target, request.camera_key, "TARGET", "camera")
    else:
        raise InputError(
            f"TARGET {request.target}: a .npy target needs --camera (a .npy file or "
            "one row fx,fy,cx,cy)"
        )
    try:
        return camera_rows(camera, m, "target pose")
    except (ValueError, TypeError) as exc:
        if request.camera is None:
            raise
        raise InputError(f"--camera {request.camera_text!r}: {exc}") from None


def _root(layout, joints, root, default, option, name, path):
    """A root joint from ``--root``/``--*-layout``, by the shared joint-index rule."""
    if layout is not None:
        skeleton = skeletons.get(LAYOUT_ALIASES.get(layout, layout))
        if joints != len(skeleton):
            raise InputError(
                f"{path}: {name} has {joints} joints, layout {layout} has "
                f"{len(skeleton)}"
            )
        default = skeleton.root
    return joint_index(default if root is None else root, joints, option)


def _pairing(text, n, m):
    """A pairing kind, or the explicit indices of a ``.npy`` file, range-checked."""
    if text in ("permutation", "random", "identity"):
        return text
    if not text.lower().endswith(".npy"):
        raise InputError(
            f"--pairing {text!r}: expected permutation, random, identity or a .npy "
            "file of target indices"
        )
    index = _load(text, None, "--pairing", "pairing")
    if index.dtype.kind not in _files.INTEGER or index.shape != (n,):
        raise InputError(
            f"--pairing {text}: expected ({n},) integer target indices, got "
            f"{index.shape} {index.dtype}"
        )
    # checked here, in chunks, so that a bad index stops the run before any
    # output is written
    for offset in range(0, n, _CHECK_ROWS):
        block = np.asarray(index[offset : offset + _CHECK_ROWS]).astype(np.int64)
        bad = (block < 0) | (block >= m)
        if bad.any():
            first = int(np.argmax(bad))
            raise InputError(
                f"--pairing {text}: target indices outside [0, {m}); first at "
                f"position {offset + first} (value {block[first]})"
            )
    # in memory (8 bytes per pose), writable, int64: what the kernels take
    return np.array(index, dtype=np.int64)


def _plan(request):
    """Read and check every input, prepare the targets: a :class:`_Plan`."""
    source = _load(request.source, request.source_key, "SOURCE", "source_3d")
    _check_shape(source, "source_3d", request.source, 3)
    target = _load(request.target, request.target_key, "TARGET", "target_2d")
    _check_shape(target, "target_2d", request.target, 2)
    frame, target_frame = _frames(request, source, target)
    n, m = source.shape[0], target.shape[0]
    camera = _camera(request, m)
    root = _root(request.source_layout, source.shape[-2], request.root, 0, "--root",
                 "source_3d", request.source)  # fmt: skip
    # as in gpa(): the target root defaults to the source root
    target_root = _root(
        request.target_layout, target.shape[-2], request.target_root, root,
        "--target-root" if request.target_root is not None else "--root (the "
        "default target root)", "target_2d", request.target,
    )  # fmt: skip
    if request.dtype == "auto":
        dtype = result_dtype(source.dtype, "source_3d")
    else:
        dtype = np.dtype(request.dtype)
    seed = resolve_seed(request.seed)
    pairing = _pairing(request.pairing, n, m)
    backend, _ = _api._resolve_backend(request.backend)
    spec = resolve_pairing(pairing, n, m, seed)
    plan = _Plan(source, dtype, seed, spec, backend, m, None, pairing=pairing,
                 root=root, frame=frame)  # fmt: skip
    if request.mode == "poseda":
        plan.run = _poseda_in_memory(source, target, camera, seed, pairing, root,
                                     target_root, dtype, backend)  # fmt: skip
    else:
        plan.targets = _prepare_chunks(target, camera, target_root, dtype, backend,
                                       request.chunk, target_frame)  # fmt: skip
        plan.run = _paired_chunks(source, plan.targets, spec, root, dtype, backend,
                                  frame)  # fmt: skip
    return plan


# --- aligning ----------------------------------------------------------------------


def _prepare_chunks(target, camera, root, dtype, backend, chunk, frame=None):
    """:func:`gpa_arrays.prepare_targets` over chunks of a (memory-mapped) target.

    `camera` is ``(M, C)`` (from :func:`_camera`). Only the records (64 bytes
    per float64 target) stay in memory. The records of a target depend on that
    target and its camera only, so they equal those of one call on the whole
    array.
    """
    from ._backends.numpy_ import RECORD_WIDTH
    from ._targets import Targets

    m, joints = target.shape[0], target.shape[-2]
    buffer = np.empty((min(chunk, m), joints, 2), dtype=dtype)
    records = []
    for offset in range(0, m, chunk):
        count = min(chunk, m - offset)
        block = buffer[:count]
        # a writable copy in the records' dtype (see _paired_chunks)
        rows_2d = target[offset : offset + count]
        if frame is not None:  # target clips: their reference frame
            rows_2d = rows_2d[:, frame]
        np.copyto(block, rows_2d, casting="unsafe")
        rows = camera[offset : offset + count]
        try:
            part = _api.prepare_targets(block, rows, target_root=root, backend=backend,
                                        dtype=dtype)  # fmt: skip
        except ValueError as exc:
            raise ValueError(
                f"targets [{offset}, {offset + count}) of TARGET: {exc}"
            ) from None
        records.append(part._records)
    if not records:
        records.append(np.empty((0, RECORD_WIDTH), dtype=dtype))
    return Targets(np.concatenate(records), root, joints, backend)


def _paired_chunks(source, targets, spec, root, dtype, backend, frame=None):
    """``run(offset, count)`` -> the aligned poses (or clips) of one chunk.

    Paired mode; `frame` is the reference frame of clips.
    """
    item = source.shape[1:]
    buffers = {}

    def run(offset, count):
        if count not in buffers:
            buffers.clear()
            buffers[count] = (
                np.empty((count, *item), dtype=dtype),
                np.empty((count, *item), dtype=dtype),
            )
        block, out = buffers[count]
        # Copy the chunk into a writable buffer of the output dtype: this reads
        # the memory-mapped pages once, converts the dtype, and hands the kernel
        # the same array type as an in-memory call (a read-only memory map would
        # make Numba compile a separate read-only specialisation).
        np.copyto(block, source[offset : offset + count], casting="unsafe")
        try:
            return _api._gpa_block(
                block, targets._records, spec.chunk(offset, count), root, backend,
                True, out=out, frame=frame,
            )  # fmt: skip
        except ValueError as exc:
            raise ValueError(
                f"poses [{offset}, {offset + count}) of SOURCE: {exc}"
            ) from None

    return run


def _poseda_in_memory(source, target, camera, seed, pairing, root, target_root,
                      dtype, backend):  # fmt: skip
    """``run(offset, count)`` slicing one in-memory ``mode="poseda"`` result."""
    result = _api.gpa(
        np.asarray(source).astype(dtype, copy=False), np.asarray(target),
        np.asarray(camera), pairing=pairing, seed=seed, root=root,
        target_root=target_root, mode="poseda", backend=backend,
    )  # fmt: skip

    def run(offset, count):
        return result[offset : offset + count]

    return run


def _dask_blocks(request, plan, gdask, stack):
    """The aligned blocks from :func:`gpa_arrays.dask.gpa`, and where they ran."""
    client, where = _dask_scheduler(request, stack)
    chunk, source = request.chunk, plan.source
    if request.source.lower().endswith(".npy"):
        # read by the workers, by path (a memory map would be pickled whole
        # into the graph)
        lazy_source = gdask._NpyFile(os.path.abspath(request.source), "SOURCE")
        lazy_source = lazy_source.to_dask(chunk)
    else:
        import dask.array as da

        lazy_source = da.from_array(source, chunks=(chunk,) + (-1,) * (source.ndim - 1))
    try:
        # the same records, pairing and dtype as the chunked loop: each block
        # runs the same kernel call on the same numbers
        lazy = gdask.gpa(
            lazy_source.astype(plan.dtype), plan.targets, pairing=plan.pairing,
            seed=plan.seed, root=plan.root, reference_frame=plan.frame,
            backend=plan.backend,
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise InputError(_one_line(exc)) from None
    blocks = _outofcore.dask_blocks(lazy, client)
    return stack.enter_context(contextlib.closing(blocks)), f", Dask: {where}"


def _dask_scheduler(request, stack):
    """Start or connect the run's scheduler, closed by `stack`.

    Returns ``(client, words)``: the ``distributed`` client (None for the
    default scheduler) and a description for the summary line.
    """
    import dask

    if request.workers is None and request.scheduler is None:
        # Dask arrays compute on threads unless the user's Dask config says else
        return None, f"{dask.config.get('scheduler', None) or 'threads'} scheduler"
    import distributed

    if request.workers is not None:
        address = _local_cluster(request.workers, stack)
        words = f"local cluster of {request.workers} worker process(es)"
    else:
        address = request.scheduler
        words = f"scheduler {request.scheduler}"
    try:
        client = stack.enter_context(distributed.Client(address, set_as_default=False))
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"{request.dask_option}: cannot connect to the scheduler ({exc})"
        ) from None
    # the scheduler of gpa_arrays.dask.gpa too (it scatters the targets there)
    stack.enter_context(dask.config.set(scheduler=client))
    return client, words


def _local_cluster(workers, stack):
    import distributed

    # one task per worker, each task's kernels on its share of the cores; a
    # NUMBA_NUM_THREADS of the user's own is inherited instead
    env = {}
    if "NUMBA_NUM_THREADS" not in os.environ:
        env["NUMBA_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    try:
        return stack.enter_context(
            distributed.LocalCluster(
                n_workers=workers, processes=True, threads_per_worker=1,
                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR, env=env,
            )
        )  # fmt: skip
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise InputError(
            f"--workers {workers}: cannot start a local cluster ({exc})"
        ) from None


# --- writing -----------------------------------------------------------------------


def _members(request, plan, blocks):
    """The output's arrays: the aligned poses, then the pairing and the seed."""
    from . import _backends

    n, chunk = len(plan.source), request.chunk

    def pair_blocks():
        module = _backends.load(plan.backend)
        for offset in range(0, n, chunk):
            yield module.pair_indices(plan.spec.chunk(offset, min(chunk, n - offset)))

    return [
        _outofcore.Member("aligned_3d", plan.source.shape, plan.dtype, blocks),
        _outofcore.Member("pair_index", (n,), np.dtype(np.int64), pair_blocks()),
        _outofcore.Member("seed", (), np.dtype(np.uint64), [np.uint64(plan.seed)]),
    ]


def _write(request, output, plan, blocks, where, log, progress):
    """Log the summary line, stream the members into `output` and commit it."""
    shape, n = plan.source.shape, len(plan.source)
    chunks = -(-n // request.chunk) if n else 0
    what = "source clips" if len(shape) == 4 else "source poses"
    log(
        f"{n:,} {what}, {plan.m:,} targets, seed {plan.seed}, {request.mode} mode, "
        f"{plan.backend} backend, {plan.dtype.name}, {chunks} chunk(s){where}"
    )
    for path in output.removed:
        log(f"removed {path}, left by an earlier run that was killed")
    bar = progress(n, chunks)
    try:
        _outofcore.write_into(
            output, _members(request, plan, blocks), compress=request.compress,
            on_block=bar.update,
        )  # fmt: skip
        output.commit()
    except (ValueError, TypeError, _outofcore.WorkerError) as exc:
        raise InputError(_one_line(exc)) from None
    finally:
        bar.close()
    npz = output.path.lower().endswith(".npz")
    return {
        "keys": "aligned_3d, pair_index, seed" if npz else "aligned_3d",
        "shape": shape,
        "dtype": plan.dtype,
        "seed": plan.seed,
    }
