"""Global Position Alignment on Dask arrays, for data sets beyond one machine.

``pip install "gpa-arrays[dask]"``. This module imports Dask; ``import
gpa_arrays`` never does.

:func:`~gpa_arrays.dask.gpa` takes source poses as a :class:`dask.array.Array`
chunked along the pose axis and returns a lazy Dask array with the same chunks,
equal bit for bit to :func:`gpa_arrays.gpa` on the whole array with the same
seed, whatever the chunking, the scheduler and the number of workers.
:func:`~gpa_arrays.dask.gpa_npy` aligns a ``.npy`` file into another block by
block, for inputs larger than memory.

How the work is split
---------------------
*Pairing.* The pairing is a counter-based function of the seed and the global
pose index (see ``gpa_arrays/_pairing.py``), so each block evaluates the pairing
of its own poses from its global offset (``PairingSpec.chunk``) and needs
nothing from other blocks. ``seed=None`` is drawn once, on the client, when the
graph is built: the whole result is a function of that one seed.

*Targets, prepared once.* Targets in memory are reduced to their compact records
on the client (errors in them surface immediately) and shared by every block
through one graph key: scattered to the workers when a ``distributed`` client is
the active scheduler, otherwise embedded once in the graph. Targets given as a
Dask array are prepared lazily, one task per target block, and concatenated by a
single task whose key every block reads. Either way the records exist once per
worker, never once per task.

*Errors.* Each block checks its poses as the in-memory call does and raises
``ValueError`` naming the block and the global index of its first bad
pose. Dask (and ``distributed``, which re-raises a worker's exception on the
client) reports the first failing task; when several blocks hold bad poses,
which of them is reported depends on the order they ran.

*Clips.* Every rule above is about axis 0 only (offsets, pairing, chunking), and
the per-block body is the backend's own entry point, so sources with more axes
after the pose axis (clips ``(N, T, J, 3)``) will follow the same path: pairing
over clips, chunks along ``N`` only.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.sizeof import sizeof

from . import _api, _files, _interop, _outofcore
from ._pairing import KIND_ARRAY, MAX_POSES, PairingSpec, resolve_pairing
from ._targets import Targets
from ._validate import (
    Options,
    as_array,
    camera_rows,
    camera_shape,
    clips_3d,
    count,
    frame_index,
    joint_index,
    no_reference_frame,
    pairing_argument,
    poses_2d,
    poses_3d,
    prepared,
    result_dtype,
    target_frame,
)

__all__ = ["gpa", "gpa_npy"]

#: Default poses per block of :func:`gpa_npy`: 2**17 poses of 17 joints are 27 MB
#: in float32 and 53 MB in float64, within the 10-100 MB per chunk that the Dask
#: documentation recommends.
DEFAULT_CHUNK_POSES = 2**17


# --- argument checks -------------------------------------------------------------


def _is_dask_array(x):
    return isinstance(x, da.Array)


def _check_known_chunks(array, name):
    if any(math.isnan(c) for c in array.chunks[0]):
        raise ValueError(
            f"{name}: the Dask array has unknown chunk sizes along axis 0 (nan), so "
            "the global index of each pose is unknown; call "
            f"{name}.compute_chunk_sizes() first"
        )


def _check_source(source_3d):
    if not _is_dask_array(source_3d):
        raise TypeError(
            "source_3d: expected a dask.array.Array (use gpa_arrays.gpa for arrays "
            f"in memory, or dask.array.from_array), got {type(source_3d).__name__}"
        )
    source = source_3d
    if source.ndim == 4:
        clips_3d(source)
    else:
        poses_3d(source)
    _check_known_chunks(source, "source_3d")
    split = [axis for axis in range(1, source.ndim) if source.numblocks[axis] > 1]
    if split:
        # Refused rather than rechunked behind the caller's back (the policy of
        # dask.array.apply_gufunc): merging blocks changes their memory footprint.
        fix = ", ".join(f"{axis}: -1" for axis in range(1, source.ndim))
        raise ValueError(
            f"source_3d: expected chunks along axis 0 (poses) only, got "
            f"{source.numblocks[split[0]]} chunks along axis {split[0]} "
            f"(chunks {source.chunks}); use source_3d.rechunk({{{fix}}})"
        )
    meta = source._meta
    if not isinstance(meta, np.ndarray):
        raise TypeError(
            "source_3d: expected a Dask array of NumPy blocks, got blocks of type "
            f"{type(meta).__module__}.{type(meta).__name__}; usable backends here: "
            f"{', '.join(_api.backends())}"
        )
    return source


def _default_client():
    """The ``distributed`` client that computes Dask collections now, or None."""
    if "distributed" not in sys.modules:  # no client can exist without it
        return None
    from distributed import Client

    scheduler = dask.base.get_scheduler()
    # a Client, or (older Dask) its bound ``get`` method
    for candidate in (scheduler, getattr(scheduler, "__self__", None)):
        if isinstance(candidate, Client):
            return candidate
    return None


class _SharedRecords:
    """Target records shared by every block of a call.

    A worker receives the records once, from the client or from another worker,
    and the deserialised array can lie at any address (an odd one, measured
    with distributed 2026.8): every 32-byte record then straddles two cache
    lines in the kernels' random gather, and Numba compiles an unaligned
    variant of each kernel. Unpickling this wrapper copies the array into a
    fresh allocation, once per worker, instead of once per task.
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return _restore_records, (self.array,)


def _restore_records(array):
    return _SharedRecords(np.array(array, order="C"))


def _concatenate_records(parts):
    return _SharedRecords(np.concatenate(parts) if len(parts) > 1 else parts[0])


@sizeof.register(_SharedRecords)
def _sizeof_records(records):
    # for the workers' memory accounting
    return records.array.nbytes


def _share(records, scatter):
    """One graph dependency holding `records`, for every block to read."""
    records = _SharedRecords(records)
    client = None if scatter is False else _default_client()
    if scatter is True and client is None:
        raise ValueError(
            "scatter: True needs a distributed Client as the active scheduler; "
            "none is active"
        )
    if client is not None:
        # hash=False: a fresh key per call. With content-hashed keys, a call on
        # the same targets as an earlier, just released result re-sends the data
        # under a key the scheduler is still releasing; the workers may drop the
        # new copy, and the blocks then fail with "lost dependencies" or wait
        # forever (3 runs of 5 of tests/test_dask.py, distributed 2026.8).
        return client.scatter(records, broadcast=True, hash=False)
    token = tokenize(records.array)
    return dask.delayed(records, pure=True, name=f"gpa-records-{token}")


# --- targets -------------------------------------------------------------------------


def _records(target_2d, camera, root, target_root, dtype, options, scatter):
    """``(shared records, M)``: targets reduced once, as one graph dependency.

    With ``return_2d`` and 9-value cameras the records are wide (the distortion
    coefficients beside each record; see :func:`gpa_arrays._api._gpa_block`).
    """
    if isinstance(target_2d, Targets):
        targets = prepared(target_2d, camera, target_root, dtype)
        records = targets._records
        if options.return_2d and targets._wide is not None:
            records = targets._wide
        if not isinstance(records, np.ndarray):
            raise TypeError(
                "target_2d: expected Targets prepared from NumPy arrays, got records "
                f"of type {type(records).__name__}"
            )
        return _share(records, scatter), len(targets)
    if _is_dask_array(target_2d) or _is_dask_array(camera):
        return _lazy_records(target_2d, camera, root, target_root, dtype, options)
    target = poses_2d(as_array(target_2d, "target_2d"))
    t_root = root if target_root is None else target_root
    targets = _api._prepare_targets(
        target, camera, t_root, options.backend, dtype, options.check, np,
        _interop.HOST,
    )  # fmt: skip
    records = targets._records
    if options.return_2d and targets._wide is not None:
        records = targets._wide
    return _share(records, scatter), target.shape[0]


def _lazy_records(target_2d, camera, root, target_root, dtype, options):
    """Records of Dask targets: one task per target block, one concatenation."""
    target = target_2d
    if not _is_dask_array(target):
        target = da.from_array(as_array(target, "target_2d"))
    poses_2d(target)
    _check_known_chunks(target, "target_2d")
    m, jt = target.shape[0], target.shape[1]
    t_root = root if target_root is None else target_root
    t_root = joint_index(t_root, jt, "target_root")
    # targets are only read by the preparation, so merging their joint axis is
    # invisible to the caller
    target = target.rechunk({1: -1, 2: -1})
    cameras = _camera_blocks(camera, m, target.chunks[0])
    offsets = np.cumsum((0, *target.chunks[0][:-1])).tolist()
    prepare = dask.delayed(_api._prepare_block, pure=True)
    backend, check, wide = options.backend, options.check, options.return_2d
    parts = [
        prepare(block, cam, t_root, dtype, backend, check, offset, m, wide)
        for block, cam, offset in zip(
            target.to_delayed().ravel(), cameras, offsets, strict=True
        )
    ]
    return dask.delayed(_concatenate_records, pure=True)(parts), m


def _camera_blocks(camera, m, chunks):
    """Camera rows for each target block: blocks of a Dask array, or NumPy rows."""
    if camera is None or not _is_dask_array(camera):
        camera = camera_rows(camera, m, "target pose")
        if camera.strides[0] == 0:  # one row for all targets
            row = np.ascontiguousarray(camera[0])
            return [row] * len(chunks)
        camera = da.from_array(camera, chunks=(chunks, -1))
    camera_shape(camera, m, "target pose")
    _check_known_chunks(camera, "camera")
    if camera.ndim == 1:
        return [camera.rechunk(-1).to_delayed()[0]] * len(chunks)
    return list(camera.rechunk((chunks, -1)).to_delayed().ravel())


# --- pairing -------------------------------------------------------------------------


def _resolve(pairing, n, m, seed, chunks):
    """``(spec, index)``: the call's pairing and its explicit indices as Dask blocks.

    The spec never carries an index array (it is sent with every task); explicit
    indices travel as a Dask array chunked like the source instead.
    """
    pairing = pairing_argument(pairing)
    if not _is_dask_array(pairing):
        spec = resolve_pairing(pairing, n, m, seed)
        if spec.kind != KIND_ARRAY:
            return spec, None
        index = da.from_array(spec.index, chunks=(chunks,))
        return PairingSpec(KIND_ARRAY, n, m), index
    if n > MAX_POSES or m > MAX_POSES:
        raise ValueError(
            f"pairing: at most {MAX_POSES} sources and targets are supported, "
            f"got {n} sources and {m} targets"
        )
    if pairing.dtype.kind not in "iu" or pairing.dtype == np.bool_:
        raise TypeError(
            f"pairing: expected an integer array, got dtype {pairing.dtype}"
        )
    if pairing.shape != (n,):
        raise ValueError(
            f"pairing: expected shape ({n},) (one target index per source pose), "
            f"got {pairing.shape}"
        )
    _check_known_chunks(pairing, "pairing")
    return PairingSpec(KIND_ARRAY, n, m), pairing.rechunk((chunks,))


# --- the public functions -------------------------------------------------------


def _align_block(source, index, records, spec, root, backend, check, frame,
                 perspective, return_2d, block_info=None):  # fmt: skip
    """One task: the block's global offset turns the call's pairing into its own.

    With `return_2d` the block is the 3D result and the projections side by
    side, (count, ..., 5): one array per task, split lazily by :func:`gpa`.
    """
    offset = block_info[0]["array-location"][0][0]
    count = source.shape[0]
    if not source.flags.aligned:
        # a block received over the network can lie at any address (see
        # _SharedRecords); one copy beats an unaligned variant of every kernel
        source = np.array(source)
    if index is not None:
        # int64 as in resolve_pairing: uint64 values above 2**63 become negative
        # and are reported out of range, never wrapped
        index = index.reshape(count).astype(np.int64, copy=False)
    chunk = spec.chunk(offset, count, index)
    records = records.array
    out_2d = None
    if return_2d:
        out_2d = np.empty((*source.shape[:-1], 2), dtype=records.dtype)
    out = _api._gpa_block(
        source, records, chunk, root, backend, check, frame=frame,
        perspective=perspective, out_2d=out_2d,
    )  # fmt: skip
    return out if out_2d is None else np.concatenate([out, out_2d], axis=-1)


def gpa(
    source_3d, target_2d, camera=None, *,
    pairing="permutation", seed=None, root=0, target_root=None, reference_frame=None,
    mode="paired", depth="weak", return_2d=False, backend="auto", check=True,
    scatter=None,
):  # fmt: skip
    """Global Position Alignment of a Dask array of source poses, lazily.

    The same alignment as :func:`gpa_arrays.gpa`, split over the blocks of
    `source_3d`: the result equals ``gpa_arrays.gpa(source_3d.compute(), ...)``
    with the same seed bit for bit, for any chunking, scheduler and number of
    workers. Nothing is computed on the source until the result is.

    Parameters
    ----------
    source_3d : (N, J, 3) or (N, T, J, 3) dask.array.Array, metres, camera space
        Source poses or clips, chunked along axis 0 only (any chunk sizes, which must be
        known); the joint and coordinate axes must be single chunks (else
        ``ValueError``; ``source_3d.rechunk({1: -1, 2: -1})`` fixes it). Blocks
        are NumPy arrays of any real dtype.
    target_2d : (M, Jt, 2) array, (M, Jt, 2) dask.array.Array or Targets
        Target 2D poses in normalised screen coordinates, or targets prepared by
        :func:`gpa_arrays.prepare_targets` (of the result dtype). Targets in
        memory are prepared now, on the client; Dask targets are prepared
        lazily, one task per block. Either way the records are computed once
        and shared by all blocks.
    camera : (4,), (9,), (M, 4) or (M, 9) array or dask.array.Array, optional
        ``[fx, fy, cx, cy, ...]`` normalised; row ``j`` belongs to target ``j``.
        Required with target arrays, refused with Targets.
    pairing : {"permutation", "random", "identity"} or (N,) integer array
        As in :func:`gpa_arrays.gpa`. An explicit array may be a NumPy array or
        a Dask array (rechunked to the source's chunks); its entries are
        range-checked block by block.
    seed : None, int or numpy.random.Generator
        ``None`` draws a seed once, now: all blocks use it, and recomputing the
        result gives the same poses. A Generator is advanced once, now.
    root, target_root : int
        Root joints, as in :func:`gpa_arrays.gpa`.
    reference_frame : int, optional
        With clips, ``source_3d`` of shape (N, T, J, 3) chunked along N, or
        target clips (M, Tt, Jt, 2): the frame aligned, as in
        :func:`gpa_arrays.gpa` (default the centre frame).
    mode : {"paired"}
        Only ``"paired"``. ``mode="poseda"`` reproduces the published per-batch
        function, whose depth uses camera row 0 *of the call* for every pose:
        over a chunked data set that row is not the batch the original code saw.
        Apply :func:`gpa_arrays.gpa` with ``mode="poseda"`` per batch instead
        (for example with ``dask.array.Array.map_blocks``).
    depth : {"weak", "perspective"}
        As in :func:`gpa_arrays.gpa`.
    return_2d : bool
        As in :func:`gpa_arrays.gpa`: also return the aligned poses projected
        through their paired targets' cameras, a second Dask array computed by
        the same tasks.
    backend : {"auto", "numba", "numpy"}
        Backend of every task, resolved now (``"auto"`` is the fastest usable on
        the client); all give identical results.
    check : bool
        As in :func:`gpa_arrays.gpa`. Bad targets in memory raise now; bad poses,
        pairing indices and Dask targets raise when the result is computed,
        naming the block and the global index of the first bad pose.
    scatter : None or bool
        How in-memory target records reach the workers. ``None``: scattered
        (``distributed.Client.scatter``, broadcast) when a ``distributed``
        client is the active scheduler, else embedded once in the graph.
        ``True``: require the client. ``False``: embed (the result can then be
        computed by any scheduler). Dask targets are always a task of the graph.

    Returns
    -------
    (N, J, 3) dask.array.Array, or a pair of it and an (N, J, 2) one
        Lazy; same chunks as `source_3d`; dtype by the rule of
        :func:`gpa_arrays.gpa` (float32 and float64 kept, float16 gives
        float32, integers float64). With ``return_2d=True``, the poses and
        their projections (clips keep their (N, T, J, ...) shape).

    Raises
    ------
    TypeError
        A source that is not a Dask array, non-NumPy blocks, wrong dtypes, a
        missing camera.
    ValueError
        Wrong shapes, chunks along the joint axes, unknown chunk sizes,
        ``mode="poseda"``, bad roots or pairing; bad values (see `check`).

    Notes
    -----
    The Numba kernels of each task use Numba's thread pool. When Dask already
    runs one task per core (the threaded scheduler, or single-threaded workers),
    set ``NUMBA_NUM_THREADS=1`` in the workers to avoid oversubscription.

    Examples
    --------
    >>> import dask.array as da, numpy as np, gpa_arrays, gpa_arrays.dask
    >>> rng = np.random.default_rng(0)
    >>> source = rng.normal(scale=0.3, size=(1000, 17, 3)) + [0, 0, 5]
    >>> target = rng.normal(scale=0.1, size=(800, 17, 2))  # pose-like 2D
    >>> camera = np.array([1.5, 1.5, 0.0, 0.0])
    >>> lazy = gpa_arrays.dask.gpa(
    ...     da.from_array(source, chunks=300), target, camera, seed=0
    ... )
    >>> lazy.chunks[0]
    (300, 300, 300, 100)
    >>> whole = gpa_arrays.gpa(source, target, camera, seed=0)
    >>> bool((lazy.compute() == whole).all())
    True
    """
    options = Options.make(mode, depth, return_2d, check, backend)
    if options.poseda:
        raise ValueError(
            "mode: gpa_arrays.dask.gpa supports 'paired' only; 'poseda' takes the "
            "depth focal length from camera row 0 of the whole call, which has no "
            "meaning for a chunked data set. Apply gpa_arrays.gpa(..., "
            "mode='poseda') to each batch instead (e.g. with map_blocks)"
        )
    if scatter not in (None, True, False):
        raise TypeError(f"scatter: expected None, True or False, got {scatter!r}")
    source = _check_source(source_3d)
    dtype = result_dtype(source.dtype, "source_3d")
    n, j = source.shape[0], source.shape[-2]
    root = joint_index(root, j, "root")
    frame = None
    if source.ndim == 4:
        frame = frame_index(
            reference_frame, source.shape[1], "reference_frame", "source clips"
        )
    if getattr(target_2d, "ndim", 3) == 4:
        if not _is_dask_array(target_2d):
            target_2d = as_array(target_2d, "target_2d")
        # the reference frame of each target clip (lazily for a Dask array)
        target_2d = target_frame(target_2d, reference_frame)
    elif frame is None:
        no_reference_frame(
            reference_frame, source.shape, getattr(target_2d, "shape", None)
        )
    name, _ = _api._resolve_backend(options.backend)
    options = Options.make(mode, depth, return_2d, check, name)
    records, m = _records(target_2d, camera, root, target_root, dtype, options, scatter)
    spec, index = _resolve(pairing, n, m, seed, source.chunks[0])
    # the spec's content (the drawn seed included) names the result
    key = (spec.kind, spec.n, spec.m, spec.seed, spec.step, options)
    if index is not None:
        # a (N, 1, 1) view lines the indices up with the source's pose axis
        index = index[(slice(None),) + (None,) * (source.ndim - 1)]
    width = 5 if options.return_2d else 3
    result = da.map_blocks(
        _align_block, source, index, records, spec, root, name, options.check,
        frame, options.perspective, options.return_2d,
        dtype=dtype,
        chunks=(*source.chunks[:-1], (width,)),
        meta=np.empty((0,) * source.ndim, dtype=dtype),
        name="gpa-" + tokenize(source, index, records, key, root, name, frame),
    )  # fmt: skip
    if options.return_2d:
        return result[..., :3], result[..., 3:]
    return result


# --- .npy files larger than memory -----------------------------------------------


class _NpyFile:
    """A ``.npy`` file read lazily: each task maps it read-only, by path.

    Passing the path rather than a :class:`numpy.memmap` keeps the graph small:
    a memmap would be pickled with its whole content for every worker.
    """

    __slots__ = ("dtype", "path", "shape")

    def __init__(self, path, name):
        path = os.fspath(path)
        if path.lower().endswith(".npz"):
            raise ValueError(f"{name}: expected a .npy file, got {path!r}")
        try:
            # the header is checked before any data is mapped (dtype, declared
            # shape against the file's size; never a pickle)
            array = _files.load_npy(path, name, name)
        except _files.FileError as exc:
            raise ValueError(f"{name}: cannot map {path!r}: {exc}") from None
        self.path = path
        self.shape = array.shape
        self.dtype = array.dtype

    @property
    def ndim(self):
        """Number of axes."""
        return len(self.shape)

    def __getitem__(self, key):
        return np.array(np.load(self.path, mmap_mode="r")[key])

    def to_dask(self, chunk):
        """The file as a Dask array of `chunk` rows per block."""
        stat = os.stat(self.path)
        return da.from_array(
            self,
            chunks=(chunk,) + (-1,) * (self.ndim - 1),
            name="npy-" + tokenize(self.path, stat.st_mtime_ns, stat.st_size),
            lock=False,
            fancy=False,
            meta=np.empty((0,) * self.ndim, dtype=self.dtype),
        )


_PAIRING_KINDS = ("permutation", "random", "identity")


def _lazy_input(value, name, chunk, kinds=()):
    """`value`, or the ``.npy`` file it names as a Dask array."""
    if isinstance(value, os.PathLike) or (
        isinstance(value, str) and value not in kinds
    ):
        return _NpyFile(value, name).to_dask(chunk)
    return value


def gpa_npy(
    source_path,
    target_2d,
    camera=None,
    *,
    out_path,
    chunk_poses=DEFAULT_CHUNK_POSES,
    pairing="permutation",
    seed=None,
    root=0,
    target_root=None,
    backend="auto",
    check=True,
):
    """Align the poses of a ``.npy`` file into a new ``.npy`` file, block by block.

    For inputs larger than memory, through the out-of-core driver of the
    command line's ``augment``: the source is memory-mapped and read
    `chunk_poses` poses at a time, each block is aligned by
    :func:`~gpa_arrays.dask.gpa` on the active Dask scheduler (threads by
    default, or a ``distributed`` cluster whose workers see the input files at
    the same paths), and the blocks are written into the output file here, in
    order, as they arrive. Memory use is a few blocks per worker thread plus
    the target records. The output equals :func:`gpa_arrays.gpa` on the whole
    arrays with the same seed, bit for bit.

    Parameters
    ----------
    source_path : str or os.PathLike
        ``.npy`` file of ``(N, J, 3)`` source poses, metres.
    target_2d : (M, Jt, 2) array, dask.array.Array, Targets, str or os.PathLike
        Target poses, or a ``.npy`` file of them (read in blocks too).
    camera : array, dask.array.Array, str or os.PathLike, optional
        As in :func:`~gpa_arrays.dask.gpa`, or a ``.npy`` file.
    out_path : str or os.PathLike
        Where to write the ``(N, J, 3)`` result (a ``.npy`` file, replaced if it
        exists). The aligned blocks come back in order, a bounded number in
        flight, and are streamed into a temporary file beside `out_path` that
        is synced and renamed over it when complete (the writer of
        ``gpa-arrays augment``): on an error, SIGINT, SIGTERM or SIGHUP the
        temporary is removed and `out_path` is left as it was (SIGTERM and
        SIGHUP then end the process as they would have); a temporary left by
        a killed process is removed by the next call to the same `out_path`.
    chunk_poses : int
        Poses per block.
    pairing : {"permutation", "random", "identity"}, array, str or os.PathLike
        As in :func:`~gpa_arrays.dask.gpa`; an explicit pairing may be a
        ``.npy`` file (any string other than the three kinds is a path).
    seed, root, target_root, backend, check
        As in :func:`~gpa_arrays.dask.gpa`.

    Returns
    -------
    pathlib.Path
        `out_path`.

    Raises
    ------
    ValueError, TypeError
        As :func:`~gpa_arrays.dask.gpa`, for unreadable files, and for an
        output path that is the source file, a directory or in a directory
        that does not exist or cannot be written (checked before any work).
    """
    chunk = count(chunk_poses, "chunk_poses")
    if chunk == 0:
        raise ValueError("chunk_poses: expected a positive int, got 0")
    source = _NpyFile(source_path, "source_path").to_dask(chunk)
    out_path = Path(out_path)
    if out_path.exists() and os.path.samefile(out_path, source_path):
        raise ValueError(
            f"out_path: {os.fspath(out_path)!r} is the source file; write to "
            "another file (blocks are read while others are written)"
        )
    output = _outofcore.check_output(out_path, "out_path")
    result = gpa(
        source,
        _lazy_input(target_2d, "target_2d", chunk),
        _lazy_input(camera, "camera", chunk),
        pairing=_lazy_input(pairing, "pairing", chunk, _PAIRING_KINDS),
        seed=seed,
        root=root,
        target_root=target_root,
        backend=backend,
        check=check,
    )
    blocks = _outofcore.dask_blocks(result, _default_client())
    member = _outofcore.Member("aligned_3d", result.shape, result.dtype, blocks)
    try:
        with contextlib.closing(blocks):  # cancels the blocks in flight on errors
            _outofcore.write(output, [member], name="out_path")
    except _outofcore.Terminated as exc:
        # the temporary is gone and the default handler is back: end the
        # process as the signal would have without the writer
        signal.raise_signal(exc.signum)
        raise
    return out_path
