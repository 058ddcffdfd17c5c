"""The ``gpa-arrays`` command line (also ``python -m gpa_arrays``).

Commands
--------
``demo``
    Generate the built-in synthetic domains (:mod:`gpa_arrays.synthetic`), run
    GPA, print the scale / root-x / root-y statistics before and after with
    their Wasserstein-1 distance to the target, and write the paper's figure.
``augment SOURCE TARGET -o OUT``
    GPA on your own arrays, streamed chunk by chunk (inputs larger than memory
    work as memory-mapped ``.npy`` files); the output is written atomically.
``info``
    Version, backends, devices and the versions of optional dependencies.
``bench``
    The side-by-side timing of :mod:`gpa_arrays._bench`.
``experiment``
    The paper's claim in miniature (:mod:`gpa_arrays.experiments`, needs
    torch): lifters trained on a source domain with and without GPA, scored
    on a target domain; the built-in synthetic domains by default, or
    Human3.6M -> MPI-INF-3DHP from the files users have.

Errors in the input give one line on stderr and exit status 2.

File formats of ``augment``
---------------------------
SOURCE
    ``.npy``: the ``(N, J, 3)`` source poses (camera space, metres), or
    ``(N, T, J, 3)`` clips moved as wholes (see ``--reference-frame``), memory
    mapped. ``.npz``: the array under ``--source-key`` (default ``source_3d``),
    loaded into memory.
TARGET
    ``.npz`` holding ``--target-key`` (default ``target_2d``, ``(M, Jt, 2)``
    or clips ``(M, Tt, Jt, 2)``, normalised screen coordinates) and
    ``--camera-key`` (default ``camera``, ``(M, 4)``, ``(M, 9)``, ``(4,)`` or
    ``(9,)`` rows ``[fx, fy, cx, cy, ...]``);
    or a ``.npy`` of target poses, with the cameras given by ``--camera``.
``--camera``
    A ``.npy`` file of camera rows, or one row as comma-separated numbers;
    overrides the camera key of TARGET.
``--pairing``
    ``permutation`` (default), ``random``, ``identity`` or a ``.npy`` file of
    ``N`` target indices.
OUT
    ``.npy``: the aligned poses ``(N, J, 3)`` (clips: ``(N, T, J, 3)``).
    ``.npz``: ``aligned_3d`` (the aligned poses), ``pair_index`` (``(N,)``
    int64, the target each source pose or clip was paired with) and ``seed``
    (uint64, the pairing seed, also printed).

Memory
------
In paired mode, source poses are read, aligned and written ``--chunk`` poses at a
time, so memory holds the prepared targets (64 bytes per target) and one chunk,
whatever N is. The pairing of a pose depends on its global index only, so the
output equals one in-memory :func:`gpa_arrays.gpa` call bit for bit, for every
chunk size. ``--mode poseda`` (the published arithmetic, N = M) runs in one
piece in memory.

Dask (``pip install "gpa-arrays[dask]"``)
-----------------------------------------
``--dask`` aligns the chunks with :func:`gpa_arrays.dask.gpa` on the default
Dask scheduler (threads in this process); ``--workers N`` starts a local
``distributed`` cluster of N single-threaded worker processes for the run, and
``--scheduler ADDRESS`` sends the work to a running ``distributed`` scheduler
(its workers must see the SOURCE path when it is a ``.npy`` file); both imply
``--dask``. Each ``--chunk`` of poses is one Dask block: a ``.npy`` SOURCE is
read by the workers through a memory map, the targets are prepared once here
and shared, and the aligned blocks come back in order and are written to OUT
as they arrive, a few per worker thread in flight. The output is the same file,
bit for bit, as without Dask. Paired mode only.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import inspect
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

__all__ = ["main"]

PROG = "gpa-arrays"

#: Default figure file of ``demo``, in the working directory.
DEMO_FIGURE = "gpa_distribution.png"

#: Joint layouts ``augment`` knows: (number of joints, root joint).
#: (To be replaced by ``gpa_arrays.skeletons`` once that module exists.)
LAYOUTS = {"h36m-17": (17, 0), "h36m-16": (16, 0), "3dhp-17": (17, 14)}

_DEFAULT_CHUNK = 1 << 18


class CommandError(Exception):
    """A problem with the user's input: reported as one line, exit status 2."""


# --- entry point -------------------------------------------------------------------


def main(argv=None):
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 for bad input, 130 when interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Global Position Alignment (PoseDA, ICCV 2023) as array kernels.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="GPA on built-in synthetic data: statistics table and the paper's figure",
        description=(
            "Generate a studio source domain and an in-the-wild target domain, run "
            "GPA (paired mode), print the 2D scale and root statistics before and "
            "after with their Wasserstein-1 distance to the target, and write the "
            "3x3 distribution figure of the paper."
        ),
    )
    demo.add_argument(
        "-n", "--n", type=_positive, default=100_000, help="source poses (100000)"
    )
    demo.add_argument(
        "--n-target",
        type=_positive,
        default=None,
        help="target poses (default 2/3 of n, like 3DHP's training set next to H36M's)",
    )
    demo.add_argument("--seed", type=_seed, default=0, help="data and pairing seed (0)")
    demo.add_argument(
        "-o",
        "--output",
        default=None,
        help=f"figure file, .png/.pdf/.svg (default {DEMO_FIGURE} in the working "
        "directory)",
    )
    demo.add_argument("--no-figure", action="store_true", help="only print the table")
    demo.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    demo.add_argument("--backend", default="auto", help="auto, numba or numpy")
    demo.set_defaults(run=_demo)

    augment = commands.add_parser(
        "augment",
        help="GPA on .npy/.npz files, chunked, written atomically",
        description=__doc__[__doc__.index("File formats") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    augment.add_argument("source", metavar="SOURCE", help="source poses, .npy or .npz")
    augment.add_argument("target", metavar="TARGET", help="target poses, .npz or .npy")
    augment.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output, .npz or .npy"
    )
    augment.add_argument("--source-key", default="source_3d")
    augment.add_argument("--target-key", default="target_2d")
    augment.add_argument("--camera-key", default="camera")
    augment.add_argument(
        "--camera", default=None, help="cameras: a .npy file or one row 'fx,fy,cx,cy'"
    )
    augment.add_argument(
        "--source-layout",
        choices=sorted(LAYOUTS),
        default=None,
        help="joint layout of the source (checks J, sets --root)",
    )
    augment.add_argument(
        "--target-layout",
        choices=sorted(LAYOUTS),
        default=None,
        help="joint layout of the targets (checks Jt, sets --target-root)",
    )
    augment.add_argument("--root", type=int, default=None, help="source root joint")
    augment.add_argument(
        "--target-root", type=int, default=None, help="target root joint"
    )
    augment.add_argument(
        "--pairing",
        default="permutation",
        help="permutation (default), random, identity, or a .npy of target indices",
    )
    augment.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="pairing seed (default: fresh, printed)",
    )
    augment.add_argument(
        "--reference-frame",
        type=int,
        default=None,
        help="with clips: the frame aligned (default: the centre frame)",
    )
    augment.add_argument("--mode", choices=("paired", "poseda"), default="paired")
    augment.add_argument(
        "--depth",
        choices=_depth_choices(),
        default="weak",
        help="depth rule (the ones gpa() accepts here)",
    )
    augment.add_argument(
        "--dtype",
        choices=("auto", "float32", "float64"),
        default="auto",
        help="output dtype (auto: gpa()'s rule, float32/float64 kept)",
    )
    augment.add_argument("--backend", default="auto", help="auto, numba or numpy")
    augment.add_argument(
        "--chunk",
        type=_positive,
        default=_DEFAULT_CHUNK,
        help=f"poses per chunk (default {_DEFAULT_CHUNK})",
    )
    augment.add_argument(
        "--compress", action="store_true", help="deflate the .npz members"
    )
    parallel = augment.add_argument_group(
        'Dask (pip install "gpa-arrays[dask]")',
        "Align the chunks with gpa_arrays.dask; the output is the same, bit for bit.",
    )
    parallel.add_argument(
        "--dask",
        action="store_true",
        help="run on the default Dask scheduler (threads in this process)",
    )
    where = parallel.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="start a local distributed cluster of N worker processes for this run "
        "(implies --dask)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="use a running distributed scheduler, e.g. tcp://host:8786 (implies "
        "--dask; its workers must see a .npy SOURCE at the same path)",
    )
    progress = augment.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress bar (default: when there is more than one chunk)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    augment.set_defaults(run=_augment)

    info = commands.add_parser(
        "info", help="version, backends, devices, optional dependencies"
    )
    info.set_defaults(run=_info)

    bench = commands.add_parser(
        "bench",
        help="side-by-side timing: ours, the published torch function, stream bound",
    )
    from . import _bench

    _bench.add_arguments(bench)
    bench.set_defaults(run=_bench_command)

    experiment = commands.add_parser(
        "experiment",
        help="cross-domain 2D-to-3D lifting with and without GPA (needs torch)",
        description=(
            "Train SemGCN, SimpleBaseline, ST-GCN and VideoPose3D-style lifters on "
            "a source domain without augmentation, with GPA (weak depth) and with "
            "GPA (perspective depth), all else equal and seeded, and print MPJPE, "
            "P-MPJPE, PCK@150 "
            "and AUC on the target domain. Default: the built-in synthetic studio "
            "-> wild domains, sized for a CPU; --gpu-size for the papers' network "
            "sizes; --h36m/--h36m-cameras/--3dhp for Human3.6M -> MPI-INF-3DHP."
        ),
    )
    experiment.add_argument(
        "--seeds", type=_seed_list, default=(0, 1, 2),
        help="training seeds, comma separated (0,1,2)",
    )  # fmt: skip
    experiment.add_argument("--steps", type=_positive, default=None,
                            help="training steps per run (CPU 1000)")  # fmt: skip
    experiment.add_argument("--batch-size", type=_positive, default=None)
    experiment.add_argument("--n-source", type=_positive, default=None,
                            help="synthetic source clips (CPU 2000)")  # fmt: skip
    experiment.add_argument("--n-target", type=_positive, default=None,
                            help="synthetic target clips (CPU 2000)")  # fmt: skip
    experiment.add_argument("--n-test", type=_positive, default=None,
                            help="synthetic test clips (CPU 1000)")  # fmt: skip
    experiment.add_argument("--data-seed", type=_seed, default=0,
                            help="seed of the synthetic data (0)")  # fmt: skip
    experiment.add_argument(
        "--lifters", type=_lifter_list, default="all",
        help="all (default), or comma separated: " + ", ".join(_LIFTERS),
    )  # fmt: skip
    experiment.add_argument(
        "--variants", type=_choice_list("none", "weak", "perspective"),
        default=("none", "weak", "perspective"),
        help="comma separated: none, weak, perspective (all)",
    )  # fmt: skip
    experiment.add_argument(
        "--gpu-size", action="store_true",
        help="the papers' sizes: 1024 units and channels (SemGCN 128 channels, "
        "4 blocks; ST-GCN 128 channels, 7 frames), 20000 steps of 1024, 50000 "
        "source clips (use with --device cuda)",
    )  # fmt: skip
    experiment.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    experiment.add_argument("--dtype", choices=("float32", "float64"), default=None)
    experiment.add_argument("--threads", type=_positive, default=None,
                            help="torch CPU threads (default: torch's)")  # fmt: skip
    experiment.add_argument("--h36m", default=None, metavar="NPZ",
                            help="VideoPose3D's data_3d_h36m.npz (source)")  # fmt: skip
    experiment.add_argument(
        "--h36m-cameras", default=None, metavar="JSON",
        help="VideoPose3D's camera tables as JSON: {intrinsic, extrinsic}",
    )  # fmt: skip
    experiment.add_argument(
        "--h36m-subjects", default="S1,S5,S6,S7,S8",
        help="Human3.6M subjects to train on (S1,S5,S6,S7,S8)",
    )  # fmt: skip
    experiment.add_argument("--3dhp", dest="hp3d", default=None, metavar="NPZ",
                            help="a 3DHP test .npz (target, test)")  # fmt: skip
    experiment.add_argument("--quiet", action="store_true", help="only the table")
    experiment.set_defaults(run=_experiment)
    return parser


def _positive(text):
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer seed, got {text!r}"
        ) from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**64), got {value}")
    return value


def _seed_list(text):
    seeds = [_seed(part) for part in text.split(",") if part.strip()]
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2, got {text!r}")
    return tuple(seeds)


def _choice_list(*choices):
    def parse(text):
        items = tuple(part.strip() for part in text.split(",") if part.strip())
        bad = [i for i in items if i not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma separated selection of {', '.join(choices)}, "
                f"got {text!r}"
            )
        return items

    return parse


def _depth_choices():
    """Depth rules the installed :func:`gpa_arrays.gpa` accepts."""
    from ._api import gpa

    parameter = inspect.signature(gpa).parameters.get("depth")
    if parameter is None:
        return ("weak",)
    # the camera issue adds ``depth={"weak", "perspective"}``
    return ("weak", "perspective")


# --- demo ----------------------------------------------------------------------------


def demo_statistics(n=100_000, n_target=None, *, seed=0, backend="auto", dtype=None):
    """Everything the ``demo`` command prints and draws.

    Parameters
    ----------
    n : int
        Source poses.
    n_target : int, optional
        Target poses; default ``2 * n // 3``.
    seed : int
        Seed of the synthetic data and of the pairing.
    backend : str
        GPA and statistics backend.
    dtype : numpy dtype, optional
        Data dtype (default float64).

    Returns
    -------
    dict
        ``source``, ``aligned``, ``target``: :class:`~gpa_arrays.stats.PoseStatistics`;
        ``before``, ``after``: W1 distance to the target per statistic;
        ``seconds_data``, ``seconds_gpa``; ``backend``; ``n``, ``n_target``.
    """
    from . import _api, stats, synthetic
    from ._projection import project_linear

    n_target = max(1, (2 * n) // 3) if n_target is None else n_target
    dtype = np.float64 if dtype is None else dtype
    start = time.perf_counter()
    domains = synthetic.make_domains(n, n_target, seed=seed, dtype=dtype)
    seconds_data = time.perf_counter() - start
    name, _ = _api._resolve_backend(backend)
    # warm up (JIT compile or cache load of the serial and the parallel kernel)
    # so that the timing is the kernel's
    for size in (1, min(n, 4096)):
        _api.gpa(
            domains.source_3d[:size], domains.target_2d, domains.target_camera,
            seed=seed, backend=name,
        )  # fmt: skip
    start = time.perf_counter()
    aligned = _api.gpa(
        domains.source_3d, domains.target_2d, domains.target_camera,
        seed=seed, backend=name,
    )  # fmt: skip
    seconds_gpa = time.perf_counter() - start
    # paired mode: each pose is seen through its paired target's camera
    pair = _api.pair_indices(n, n_target, seed=seed, backend=name)
    aligned_2d = project_linear(aligned, domains.target_camera[pair])
    source = stats.pose_statistics(domains.source_2d, backend=name)
    after = stats.pose_statistics(aligned_2d, backend=name)
    target = stats.pose_statistics(domains.target_2d, backend=name)
    return {
        "source": source,
        "aligned": after,
        "target": target,
        "before": source.wasserstein(target, backend=name),
        "after": after.wasserstein(target, backend=name),
        "seconds_data": seconds_data,
        "seconds_gpa": seconds_gpa,
        "backend": name,
        "n": n,
        "n_target": n_target,
    }


def _ratio(before, after):
    if after == 0:
        return "inf"
    ratio = before / after
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def format_table(result):
    """The before/after table of :func:`demo_statistics`, as text."""
    from .stats import STATISTICS

    labels = {"scale": "2D scale", "root_x": "root x", "root_y": "root y"}
    groups = ("source", "aligned", "target")
    gap = "   "
    lines = [
        f"{'':10s}"
        + gap.join(f"{title:^15s}" for title in ("source", "after GPA", "target"))
        + gap
        + f"{'W1 distance to target':^27s}",
        f"{'':10s}"
        + gap.join(f"{'mean':>8s}{'sigma':>7s}" for _ in groups)
        + gap
        + f"{'before':>9s}{'after':>10s}{'drop':>8s}",
    ]
    for name in STATISTICS:
        cells = []
        for group in groups:
            values = getattr(result[group], name)
            # + 0.0 turns a rounded -0.000 into 0.000
            mean = round(float(values.mean()), 3) + 0.0
            cells.append(f"{mean:8.3f}{float(values.std()):7.3f}")
        before, after = result["before"][name], result["after"][name]
        lines.append(
            f"{labels[name]:10s}"
            + gap.join(cells)
            + gap
            + f"{before:9.4f}{after:10.5f}{_ratio(before, after):>8s}"
        )
    return "\n".join(line.rstrip() for line in lines)


def _demo(args):
    figure = None if args.no_figure else (args.output or DEMO_FIGURE)
    if figure is not None:
        _check_figure_path(figure)
        if not _have("matplotlib"):
            if args.output is not None:
                raise CommandError(
                    "matplotlib is needed to write the figure: "
                    "pip install 'gpa-arrays[plot]'"
                )
            print(
                "note: figure skipped, matplotlib is not installed "
                "(pip install 'gpa-arrays[plot]')",
                file=sys.stderr,
            )
            figure = None
    dtype = np.dtype(args.dtype)
    try:
        result = demo_statistics(
            args.n, args.n_target, seed=args.seed, backend=args.backend, dtype=dtype
        )
    except (ValueError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    print(
        f"{PROG} demo: GPA on the built-in synthetic domains (seed {args.seed})\n"
        f"  source: {result['n']:,} poses, studio (4 fixed cameras, f ~2.29, "
        "4.6-5.6 m, subjects centred)\n"
        f"  target: {result['n_target']:,} poses, in the wild (f 1.1-2.4, 2.5-8 m, "
        "off-centre)\n"
        f"  data generated in {result['seconds_data']:.2f} s; GPA ({result['backend']}"
        f", paired mode, {dtype.name}) in {result['seconds_gpa'] * 1e3:.1f} ms\n"
        "  after GPA: source poses projected through their paired target cameras\n"
    )
    print(format_table(result))
    if figure is not None:
        from . import plot

        fig = plot.distribution_figure(
            result["source"], result["aligned"], result["target"]
        )
        suffix = os.path.splitext(figure)[1].lstrip(".").lower()
        with _atomic_file(figure) as handle:
            fig.savefig(handle, format=suffix, dpi=fig.dpi)
        print(f"\nfigure: {figure}")
    return 0


def _check_figure_path(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps"):
        raise CommandError(
            f"--output {path}: expected a .png, .pdf or .svg file name, got "
            f"suffix {suffix or 'none'!r}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"--output {path}: directory {directory} does not exist")


def _have(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- atomic output -----------------------------------------------------------------


@contextlib.contextmanager
def _atomic_file(path):
    """A binary file object that becomes `path` only if the block succeeds.

    Writes go to a temporary file in the same directory (so the final rename
    is atomic on POSIX and Windows), which is flushed, synced and moved over
    `path` with :func:`os.replace` at the end; on any exception, including
    KeyboardInterrupt, it is removed and `path` is left as it was.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    try:
        fd, temporary = tempfile.mkstemp(
            dir=directory, prefix=f".{name}.", suffix=".part"
        )
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the usual mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class _ArrayWriter:
    """Writes ``.npy`` arrays into an open file or into ``.npz`` members, in blocks."""

    def __init__(self, handle, npz, compress):
        self._handle = handle
        self._zip = None
        if npz:
            method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            self._zip = zipfile.ZipFile(
                handle, "w", compression=method, allowZip64=True
            )

    @contextlib.contextmanager
    def array(self, name, shape, dtype):
        """Context yielding ``write(block)``; the blocks must fill `shape` in order."""
        dtype = np.dtype(dtype)
        expected = int(np.prod(shape)) * dtype.itemsize
        if self._zip is None:
            stream = self._handle
            closing = contextlib.nullcontext(stream)
        else:
            closing = self._zip.open(f"{name}.npy", "w", force_zip64=True)
        with closing as stream:
            header = {
                "descr": np.lib.format.dtype_to_descr(dtype),
                "fortran_order": False,
                "shape": tuple(shape),
            }
            np.lib.format.write_array_header_1_0(stream, header)
            written = 0

            def write(block):
                nonlocal written
                block = np.ascontiguousarray(block, dtype=dtype)
                if block.size:  # memoryview cannot cast an empty array
                    stream.write(memoryview(block).cast("B"))
                written += block.nbytes

            yield write
            if written != expected:  # a bug, never the user's input
                raise RuntimeError(
                    f"{name}: wrote {written} bytes, expected {expected}"
                )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # also on failure: an unclosed ZipFile would try to finish the archive
        # when garbage-collected, after the file is gone
        if self._zip is not None:
            self._zip.close()


# --- progress ----------------------------------------------------------------------


class _Progress:
    """tqdm when it is installed, else a plain bar on stderr."""

    def __init__(self, total, enabled, description):
        self._bar = None
        self._total = total
        self._done = 0
        self._enabled = enabled
        self._description = description
        self._last = 0.0
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(
            total=total, unit="pose", desc=description, file=sys.stderr, leave=True
        )

    def update(self, count):
        self._done += count
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.monotonic()
        if now - self._last >= 0.2 or self._done >= self._total:
            self._last = now
            fraction = self._done / self._total if self._total else 1.0
            filled = int(fraction * 30)
            sys.stderr.write(
                f"\r{self._description}: {fraction:4.0%} |{'#' * filled:<30s}| "
                f"{self._done}/{self._total} poses"
            )
            sys.stderr.flush()

    def close(self):
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()


# --- augment -----------------------------------------------------------------------


def _load(path, key, what):
    """An array from a ``.npy`` (memory-mapped) or ``.npz`` (key) file."""
    if not os.path.exists(path):
        raise CommandError(f"{what} {path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if key not in archive.files:
                    keys = ", ".join(archive.files) or "none"
                    raise CommandError(
                        f"{what} {path}: no array {key!r} (keys: {keys})"
                    )
                return archive[key]
    except CommandError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CommandError(f"{what} {path}: cannot read it ({exc})") from None
    raise CommandError(f"{what} {path}: expected a .npy or .npz file")


def _camera_argument(text):
    if text.lower().endswith(".npy"):
        return _load(text, None, "--camera")
    try:
        row = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise CommandError(
            f"--camera {text!r}: expected a .npy file or 4 or 9 comma-separated "
            "numbers fx,fy,cx,cy[,k1,k2,k3,p1,p2]"
        ) from None
    if row.shape not in ((4,), (9,)):
        raise CommandError(
            f"--camera {text!r}: expected 4 or 9 numbers, got {row.shape[0]}"
        )
    return row


def _check_array(array, name, path, last):
    """Poses ``(N, J, last)`` or clips ``(N, T, J, last)`` of a real dtype."""
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise CommandError(
            f"{path}: {name}: expected a real floating or integer dtype, got "
            f"{array.dtype}"
        )
    if array.ndim not in (3, 4) or array.shape[-1] != last or 0 in array.shape[1:]:
        expected = {
            3: "(N, J, 3) (poses, joints, xyz) or (N, T, J, 3) (clips)",
            2: "(M, Jt, 2) or (M, Tt, Jt, 2)",
        }[last]
        raise CommandError(
            f"{path}: {name}: expected shape {expected}, got {array.shape}"
        )


def _layout_root(layout, joints, root, default, name, path):
    """The root joint from ``--root``/``--*-layout``, checked against `joints`."""
    if layout is not None:
        count, layout_root = LAYOUTS[layout]
        if joints != count:
            raise CommandError(
                f"{path}: {name} has {joints} joints, layout {layout} has {count}"
            )
        default = layout_root
    root = default if root is None else root
    if not -joints <= root < joints:
        raise CommandError(f"{path}: {name}: root joint {root} outside [0, {joints})")
    return root % joints


def _native(dtype):
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def _pairing_argument(text, n, m):
    if text in ("permutation", "random", "identity"):
        return text
    if not text.lower().endswith(".npy"):
        raise CommandError(
            f"--pairing {text!r}: expected permutation, random, identity or a .npy "
            "file of target indices"
        )
    index = _load(text, None, "--pairing")
    if index.dtype.kind not in "iu" or index.shape != (n,):
        raise CommandError(
            f"--pairing {text}: expected ({n},) integer target indices, got "
            f"{index.shape} {index.dtype}"
        )
    # checked here, in chunks, so that a bad index stops the run before any
    # output is written
    for offset in range(0, n, _DEFAULT_CHUNK):
        block = np.asarray(index[offset : offset + _DEFAULT_CHUNK]).astype(np.int64)
        bad = (block < 0) | (block >= m)
        if bad.any():
            first = int(np.argmax(bad))
            raise CommandError(
                f"--pairing {text}: target indices outside [0, {m}); first at "
                f"position {offset + first} (value {block[first]})"
            )
    # in memory (8 bytes per pose), writable, int64: what the kernels take
    return np.array(index, dtype=np.int64)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _augment(args):
    from . import _api
    from ._pairing import resolve_pairing, resolve_seed

    out_suffix = os.path.splitext(args.output)[1].lower()
    if out_suffix not in (".npy", ".npz"):
        raise CommandError(f"-o {args.output}: expected a .npy or .npz file name")
    inputs = [args.source, args.target]
    inputs += [p for p in (args.camera, args.pairing) if p and p.endswith(".npy")]
    for path in inputs:
        if os.path.exists(args.output) and _same_file(path, args.output):
            raise CommandError(
                f"-o {args.output}: is an input file; inputs are never overwritten"
            )
    if args.depth != "weak":
        raise CommandError(
            f"--depth {args.depth}: not supported by the chunked driver yet"
        )
    option = _dask_option(args)
    if option is not None:
        if args.mode == "poseda":
            raise CommandError(
                f"{option}: --mode poseda is not supported with Dask (its depth "
                "uses camera row 0 of the whole call, so it runs in one piece in "
                "memory); leave out the Dask options"
            )
        gdask = _import_dask(option, args.workers or args.scheduler)

    source = _load(args.source, args.source_key, "SOURCE")
    _check_array(source, "source_3d", args.source, 3)
    target = _load(args.target, args.target_key, "TARGET")
    _check_array(target, "target_2d", args.target, 2)
    frame = target_frame = None
    try:
        if source.ndim == 4:
            frame = _api._frame(
                args.reference_frame, source.shape[1], "--reference-frame",
                "source clips",
            )  # fmt: skip
        if target.ndim == 4:
            target_frame = _api._frame(
                args.reference_frame, target.shape[1], "--reference-frame",
                "target clips",
            )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    if args.reference_frame is not None and source.ndim == target.ndim == 3:
        raise CommandError(
            "--reference-frame: only for clips, (N, T, J, 3) SOURCE or (M, Tt, Jt, "
            "2) TARGET"
        )
    if args.mode == "poseda" and source.ndim == 4:
        raise CommandError(
            "--mode poseda: the published per-pose arithmetic takes (N, J, 3) "
            "poses; clips need the paired mode"
        )
    if args.camera is not None:
        camera = _camera_argument(args.camera)
    elif args.target.lower().endswith(".npz"):
        camera = _load(args.target, args.camera_key, "TARGET")
    else:
        raise CommandError(
            f"TARGET {args.target}: a .npy target needs --camera (a .npy file or "
            "one row fx,fy,cx,cy)"
        )
    n, joints = source.shape[0], source.shape[-2]
    m = target.shape[0]
    root = _layout_root(
        args.source_layout, joints, args.root, 0, "source_3d", args.source
    )
    # as in gpa(): the target root defaults to the source root
    target_root = _layout_root(
        args.target_layout, target.shape[-2], args.target_root, root, "target_2d",
        args.target,
    )  # fmt: skip

    if args.dtype == "auto":
        try:
            dtype = _api._result_dtype(_native(source.dtype), "source_3d")
        except TypeError as exc:
            raise CommandError(f"{args.source}: {exc}") from None
    else:
        dtype = np.dtype(args.dtype)
    seed = resolve_seed(args.seed)
    pairing = _pairing_argument(args.pairing, n, m)
    try:
        name, _ = _api._resolve_backend(args.backend)
        spec = resolve_pairing(pairing, n, m, seed)
        if args.mode == "poseda":
            run = _poseda_in_memory(source, target, camera, seed, pairing, root,
                                    target_root, dtype, name)  # fmt: skip
        else:
            targets = _prepare_chunks(
                target, camera, target_root, dtype, name, args.chunk, target_frame
            )
            run = _paired_chunks(source, targets, spec, root, dtype, name, frame)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None

    chunk = args.chunk
    with contextlib.ExitStack() as stack:
        if option is None:
            where = ""
            blocks = (run(i, min(chunk, n - i)) for i in range(0, n, chunk))
        else:
            client, where = _dask_scheduler(args, stack)
            if args.source.lower().endswith(".npy"):
                # read by the workers, by path (a memory map would be pickled
                # whole into the graph)
                lazy_source = gdask._NpyFile(
                    os.path.abspath(args.source), "SOURCE"
                ).to_dask(chunk)
            else:
                import dask.array as da

                lazy_source = da.from_array(
                    source, chunks=(chunk,) + (-1,) * (source.ndim - 1)
                )
            try:
                # the same records, pairing and dtype as the chunked loop: each
                # block runs the same kernel call on the same numbers
                lazy = gdask.gpa(
                    lazy_source.astype(dtype), targets, pairing=pairing, seed=seed,
                    root=root, reference_frame=frame, backend=name,
                )  # fmt: skip
            except (ValueError, TypeError) as exc:
                raise CommandError(str(exc)) from None
            blocks = stack.enter_context(contextlib.closing(_dask_blocks(lazy, client)))
            where = f", Dask: {where}"
        _write_aligned(args, blocks, source.shape, m, dtype, seed, spec, name, where)
    return 0


def _write_aligned(args, blocks, shape, m, dtype, seed, spec, name, where):
    """Write the aligned `blocks` (in pose order) and the pairing to OUT, atomically."""
    from . import _backends

    out_suffix = os.path.splitext(args.output)[1].lower()
    n = shape[0]
    what = "source clips" if len(shape) == 4 else "source poses"
    chunk = args.chunk
    chunks = -(-n // chunk) if n else 0
    show = chunks > 1 if args.progress is None else args.progress
    print(
        f"{PROG} augment: {n:,} {what}, {m:,} targets, seed {seed}, "
        f"{args.mode} mode, {name} backend, {dtype.name}, {chunks} chunk(s)"
        f"{where}",
        file=sys.stderr,
    )
    progress = _Progress(n, show, "aligning")
    try:
        with (
            _atomic_file(args.output) as handle,
            _ArrayWriter(handle, out_suffix == ".npz", args.compress) as writer,
        ):
            with writer.array("aligned_3d", tuple(shape), dtype) as write:
                for block in blocks:
                    write(block)
                    progress.update(block.shape[0])
            if out_suffix == ".npz":
                module = _backends.load(name)
                with writer.array("pair_index", (n,), np.int64) as write:
                    for offset in range(0, n, chunk):
                        count = min(chunk, n - offset)
                        write(module.pair_indices(spec.chunk(offset, count)))
                with writer.array("seed", (), np.uint64) as write:
                    write(np.uint64(seed))
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"-o {args.output}: {exc}") from None
    finally:
        progress.close()
    keys = "aligned_3d, pair_index, seed" if out_suffix == ".npz" else "aligned_3d"
    dims = ", ".join(map(str, shape))
    print(f"wrote {args.output}: {keys} ({dims}) {dtype.name}, seed {seed}")


def _dask_option(args):
    """The Dask option the user gave (for messages), or None without Dask."""
    if args.workers is not None:
        return f"--workers {args.workers}"
    if args.scheduler is not None:
        return f"--scheduler {args.scheduler}"
    return "--dask" if args.dask else None


def _import_dask(option, needs_distributed):
    """:mod:`gpa_arrays.dask`, or a CommandError naming the extra to install."""
    try:
        import dask.array  # noqa: F401

        from . import dask as gdask

        if needs_distributed:
            import distributed  # noqa: F401
    except ImportError as exc:
        raise CommandError(
            f"{option} needs Dask and distributed, which are not installed "
            f'({exc}): pip install "gpa-arrays[dask]"'
        ) from None
    return gdask


def _dask_scheduler(args, stack):
    """Start or connect the run's scheduler, closed by `stack`.

    Returns ``(client, words)``: the ``distributed`` client (None for the
    default scheduler) and a description for the summary line.
    """
    import dask

    if args.workers is None and args.scheduler is None:
        # Dask arrays compute on threads unless the user's Dask config says else
        return None, f"{dask.config.get('scheduler', None) or 'threads'} scheduler"
    import logging

    import distributed

    if args.workers is not None:
        # one task per worker, each task's kernels on its share of the cores;
        # a NUMBA_NUM_THREADS of the user's own is inherited instead
        env = {}
        if "NUMBA_NUM_THREADS" not in os.environ:
            env["NUMBA_NUM_THREADS"] = str(
                max(1, (os.cpu_count() or 1) // args.workers)
            )
        try:
            address = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=args.workers,
                    processes=True,
                    threads_per_worker=1,
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.ERROR,
                    env=env,
                )
            )
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise CommandError(
                f"--workers {args.workers}: cannot start a local cluster ({exc})"
            ) from None
        words = f"local cluster of {args.workers} worker process(es)"
    else:
        address = args.scheduler
        words = f"scheduler {args.scheduler}"
    try:
        client = stack.enter_context(distributed.Client(address, set_as_default=False))
    except (OSError, TimeoutError, ValueError) as exc:
        raise CommandError(
            f"{_dask_option(args)}: cannot connect to the scheduler ({exc})"
        ) from None
    # the scheduler of gpa_arrays.dask.gpa too (it scatters the targets there)
    stack.enter_context(dask.config.set(scheduler=client))
    return client, words


def _dask_blocks(lazy, client):
    """The blocks of `lazy` (chunked along axis 0 only), computed, in order.

    A bounded number are in flight so that memory holds a few blocks per
    worker thread whatever the number of blocks: a sliding window of futures on
    a ``distributed`` client, else windows of one :func:`dask.compute` each.
    """
    import dask

    count = lazy.numblocks[0]
    if client is not None:
        # two per thread: the workers keep busy while this process writes
        window = 2 * max(1, sum(client.nthreads().values()))
        pending = collections.deque()
        try:
            for index in range(count):
                pending.append(client.compute(lazy.blocks[index]))
                if len(pending) >= window:
                    yield _result(pending.popleft())
            while pending:
                yield _result(pending.popleft())
        finally:
            for future in pending:
                future.cancel()
        return
    window = dask.config.get("num_workers", None) or os.cpu_count() or 1
    for first in range(0, count, window):
        last = min(count, first + window)
        yield from dask.compute(*(lazy.blocks[i] for i in range(first, last)))


def _result(future):
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise CommandError(
            f"a Dask worker died while aligning ({exc}); if it ran out of memory, "
            "try a smaller --chunk or fewer --workers"
        ) from None


def _prepare_chunks(target, camera, root, dtype, backend, chunk, frame=None):
    """:func:`gpa_arrays.prepare_targets` over chunks of a (memory-mapped) target.

    Only the records (64 bytes per float64 target) stay in memory. The records
    of a target depend on that target and its camera only, so they equal those
    of one call on the whole array.
    """
    from ._api import prepare_targets
    from ._backends.numpy_ import RECORD_WIDTH
    from ._targets import Targets

    m, joints = target.shape[0], target.shape[-2]
    camera = np.asarray(camera)
    if camera.shape not in ((4,), (9,), (m, 4), (m, 9)):
        raise ValueError(
            f"camera: expected shape (4,), (9,), ({m}, 4) or ({m}, 9) (one row per "
            f"target pose), got {camera.shape}"
        )
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
        rows = camera if camera.ndim == 1 else camera[offset : offset + count]
        try:
            part = prepare_targets(block, rows, root=root, backend=backend, dtype=dtype)
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
    from ._api import _gpa_block

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
            return _gpa_block(
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
    from ._api import gpa

    result = gpa(
        np.asarray(source).astype(dtype, copy=False), np.asarray(target),
        np.asarray(camera), pairing=pairing, seed=seed, root=root,
        target_root=target_root, mode="poseda", backend=backend,
    )  # fmt: skip

    def run(offset, count):
        return result[offset : offset + count]

    return run


# --- info, bench -------------------------------------------------------------------


def _version(distribution):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _cupy_line():
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        return "not installed"
    try:
        import cupy
    except Exception as exc:  # a broken install must not break `info`
        return f"installed, import failed ({type(exc).__name__}: {exc})"
    try:
        names = []
        for index in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(index)
            names.append(props["name"].decode(errors="replace"))
    except Exception as exc:  # no driver, no device
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"{cupy.__version__}; no usable CUDA device ({message})"
    return f"{cupy.__version__}; CUDA devices: {', '.join(names) or 'none'}"


def _torch_line():
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "not installed"
    try:
        import torch

        line = torch.__version__
        if torch.cuda.is_available():
            names = [
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
            ]
            return f"{line}; CUDA devices: {', '.join(names)}"
        return f"{line}; CUDA not available"
    except Exception as exc:
        return f"installed, import failed ({type(exc).__name__}: {exc})"


def _numba_line():
    version = _version("numba")
    if version is None:
        return "not installed"
    try:
        import numba

        layer = numba.config.THREADING_LAYER
        return f"{version}; {numba.get_num_threads()} threads, threading layer {layer}"
    except Exception as exc:
        return f"{version}, import failed ({type(exc).__name__}: {exc})"


def _info(args):
    import platform

    from . import __version__, backends

    usable = backends()
    lines = [
        f"gpa-arrays {__version__}",
        f"python     {platform.python_version()} ({sys.executable})",
        f"platform   {platform.platform()}, {os.cpu_count()} CPUs",
        f"numpy      {np.__version__}",
        f"backends   {', '.join(usable)} (auto: {usable[0]})",
        f"numba      {_numba_line()}",
        f"cupy       {_cupy_line()}",
        f"torch      {_torch_line()}",
    ]
    extras = []
    for distribution in ("matplotlib", "tqdm", "scipy", "dask"):
        version = _version(distribution)
        extras.append(f"{distribution} {version or '-'}")
    lines.append(f"optional   {', '.join(extras)}")
    print("\n".join(lines))
    return 0


_LIFTERS = ("semgcn", "simple_baseline", "stgcn", "videopose3d")


def _lifter_list(text):
    """``--lifters``: ``all`` or a comma separated selection of the lifters."""
    if text.strip() == "all":
        return _LIFTERS
    return _choice_list(*_LIFTERS)(text)


def _experiment(args):
    try:
        from . import experiments
    except ImportError as exc:  # pragma: no cover - the package itself is numpy-only
        raise CommandError(str(exc)) from None
    try:
        import torch
    except ImportError:
        raise CommandError(
            "the experiment trains PyTorch models: pip install torch"
        ) from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CommandError(f"--device {args.device}: torch sees no CUDA device")
    config = experiments._with(
        experiments.GPU if args.gpu_size else experiments.CPU,
        steps=args.steps, batch_size=args.batch_size, n_source=args.n_source,
        n_target=args.n_target, n_test=args.n_test, dtype=args.dtype,
    )  # fmt: skip
    real = (args.h36m, args.h36m_cameras, args.hp3d)
    if any(real) and not all(real):
        raise CommandError("--h36m, --h36m-cameras and --3dhp go together")
    start = time.perf_counter()
    try:
        if all(real):
            # clips long enough for the longest window of the chosen lifters
            frames = max([1] + [
                config.receptive_field if lifter == "videopose3d"
                else config.stgcn_frames if lifter == "stgcn" else 1
                for lifter in args.lifters
            ])  # fmt: skip
            source = experiments.load_h36m_npz(
                args.h36m, args.h36m_cameras, frames=frames,
                subjects=tuple(s.strip() for s in args.h36m_subjects.split(",")),
            )  # fmt: skip
            target = experiments.load_3dhp_test_npz(args.hp3d, frames=frames)
            inputs = {
                "source_3d": source["source_3d"],
                "source_camera": source["source_camera"],
                **{k: target[k] for k in ("target_2d", "target_camera", "test_2d",
                                          "test_3d")},
            }  # fmt: skip
            description = (
                f"Human3.6M ({len(inputs['source_3d'])} clips) -> MPI-INF-3DHP test "
                f"({len(inputs['test_2d'])} frames), all 17 joints"
            )
        else:
            inputs = experiments.synthetic_inputs(config, seed=args.data_seed)
            description = (
                f"Synthetic studio -> wild: {config.n_source} source, "
                f"{config.n_target} target, {config.n_test} test clips of "
                f"{config.frames} frames; {config.steps} steps of "
                f"{config.batch_size}"
            )
        result = experiments.run_experiment(
            **inputs, lifters=args.lifters, variants=args.variants,
            seeds=args.seeds, config=config, device=args.device,
            description=description,
            progress=None if args.quiet else _stderr_line,
        )  # fmt: skip
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(experiments.format_table(result))
    if not args.quiet:
        print(f"({time.perf_counter() - start:.0f} s on {args.device})")
    return 0


def _stderr_line(message):
    print(message, file=sys.stderr, flush=True)


def _bench_command(args):
    from . import _bench

    _bench.run_args(args)
    return 0
