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
    The side-by-side timing of :mod:`gpa_arrays._bench`: ours, the published
    function's peers (NumPy, eager and compiled torch, ``jax.jit``), the bound.
``experiment``
    The paper's claim in miniature (:mod:`gpa_arrays.experiments`, needs
    torch): lifters trained on a source domain with and without GPA, scored
    on a target domain; the built-in synthetic domains by default, or
    Human3.6M -> MPI-INF-3DHP from the files users have.

Errors in the input, the output path or the arguments give one line on stderr
and exit status 2 (argument errors end with where ``--help`` is); SIGINT ends a
command with status 130, SIGTERM and SIGHUP with 128 + the signal number.

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
``--source-layout``, ``--target-layout``
    A :mod:`gpa_arrays.skeletons` name (``h36m_17``, ``h36m_16``,
    ``mpi_inf_3dhp_17``) or an alias of earlier releases (``h36m-17``,
    ``h36m-16``, ``3dhp-17``): checks the joint count, sets the root.
OUT
    ``.npy``: the aligned poses ``(N, J, 3)`` (clips: ``(N, T, J, 3)``).
    ``.npz``: ``aligned_3d`` (the aligned poses), ``pair_index`` (``(N,)``
    int64, the target each source pose or clip was paired with) and ``seed``
    (uint64, the pairing seed, also printed).
    Written to ``.<name>.<host>.<pid>.<random>.part`` beside OUT and renamed
    over it when complete: after an error or a signal OUT is absent or
    untouched and the temporary is gone; one left by SIGKILL is removed by the
    next run to the same OUT on the same host.

Every input file is checked (header, dtype kind, declared size, shape) before
any pose is aligned; object arrays are refused, never unpickled.

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
import inspect
import os
import sys
import time

import numpy as np

__all__ = ["main"]

PROG = "gpa-arrays"

#: Default figure file of ``demo``, in the working directory.
DEMO_FIGURE = "gpa_distribution.png"

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
        0 on success, 2 for bad input or arguments, 130 when interrupted
        (SIGINT), 128 + the signal number when terminated (SIGTERM, SIGHUP).
    """
    from ._augment_files import InputError
    from ._outofcore import Terminated

    args = _parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (CommandError, InputError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the exception said
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return exc.exit_status


class _Parser(argparse.ArgumentParser):
    """argparse, with errors in one line (the problem, then where help is)."""

    def error(self, message):
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser():
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Global Position Alignment (PoseDA, ICCV 2023) as array kernels.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(commands)
    _add_augment(commands)
    info = commands.add_parser(
        "info", help="version, backends, devices, optional dependencies"
    )
    info.set_defaults(run=_info)
    _add_bench(commands)
    _add_experiment(commands)
    return parser


def _add_demo(commands):
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


def _add_augment(commands):
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
    _add_augment_joints(augment)
    _add_augment_options(augment)
    _add_augment_dask(augment)
    augment.set_defaults(run=_augment)


def _add_augment_joints(augment):
    from . import skeletons
    from ._augment_files import LAYOUT_ALIASES, layout_names

    aliases = ", ".join(f"{old} = {new}" for old, new in LAYOUT_ALIASES.items())
    for who, option, letter in (("source", "--root", "J"),
                                ("target", "--target-root", "Jt")):  # fmt: skip
        augment.add_argument(
            f"--{who}-layout",
            choices=layout_names(),
            default=None,
            metavar="LAYOUT",
            help=f"joint layout of the {who} (gpa_arrays.skeletons name: "
            f"{', '.join(skeletons.names())}; aliases {aliases}); checks {letter}, "
            f"sets {option}",
        )
    augment.add_argument("--root", type=int, default=None, help="source root joint")
    augment.add_argument(
        "--target-root", type=int, default=None, help="target root joint"
    )


def _add_augment_options(augment):
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
    progress = augment.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress bar (default: when there is more than one chunk)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")


def _add_augment_dask(augment):
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


def _add_bench(commands):
    bench = commands.add_parser(
        "bench",
        help="side-by-side timing: ours, the published function (NumPy, torch "
        "eager and compiled, jax.jit), stream bound",
    )
    from . import _bench

    _bench.add_arguments(bench)
    bench.set_defaults(run=_bench_command)


def _add_experiment(commands):
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
        "4 blocks; ST-GCN 128 channels, 5 frames), 20000 steps of 1024, 50000 "
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


def demo_statistics(
    n=100_000, n_target=None, *, seed=0, backend="auto", dtype=None, notice=None
):
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
        GPA backend, timed against targets prepared once (the training-loop
        case). The one-off steps around it (the synthetic data, the target
        records, the pairing and projection of the aligned poses, the
        statistics) run on the NumPy reference, whose results are the same:
        compiling or loading their Numba kernels would cost a first run more
        than it saves.
    dtype : numpy dtype, optional
        Data dtype (default float64).
    notice : file-like, optional
        Where to write one line when the GPA kernels are about to be compiled
        for the first time (not found in Numba's on-disk cache); nothing is
        written when they are cached.

    Returns
    -------
    dict
        ``source``, ``aligned``, ``target``: :class:`~gpa_arrays.stats.PoseStatistics`;
        ``before``, ``after``: W1 distance to the target per statistic;
        ``seconds_data``, ``seconds_gpa`` (the GPA call); ``backend``; ``n``,
        ``n_target``.
    """
    from . import _api, stats, synthetic

    n_target = max(1, (2 * n) // 3) if n_target is None else n_target
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    start = time.perf_counter()
    domains = synthetic.make_domains(n, n_target, seed=seed, dtype=dtype)
    seconds_data = time.perf_counter() - start
    name, _ = _api._resolve_backend(backend)
    targets = _api.prepare_targets(
        domains.target_2d, domains.target_camera, backend="numpy"
    )
    if name == "numba" and notice is not None:
        _compile_notice(n, dtype, notice)
    _warm_up(domains.source_3d, targets, seed, name)
    start = time.perf_counter()
    aligned = _api.gpa(domains.source_3d, targets, seed=seed, backend=name)
    seconds_gpa = time.perf_counter() - start
    # paired mode: each pose is seen through its paired target's camera
    pair = _api.pair_indices(n, n_target, seed=seed, backend="numpy")
    aligned_2d = synthetic._pinhole(aligned, domains.target_camera[pair])
    source, after, target = (
        stats.pose_statistics(poses, backend="numpy")
        for poses in (domains.source_2d, aligned_2d, domains.target_2d)
    )
    return {
        "source": source,
        "aligned": after,
        "target": target,
        "before": source.wasserstein(target, backend="numpy"),
        "after": after.wasserstein(target, backend="numpy"),
        "seconds_data": seconds_data,
        "seconds_gpa": seconds_gpa,
        "backend": name,
        "n": n,
        "n_target": n_target,
    }


def _warm_up(source, targets, seed, backend):
    """One small GPA call that compiles (or loads) the kernel the timed call runs.

    So that the demo's timing is the kernel's. Its size launches the same twin
    (serial or parallel, see ``_config.PARALLEL_MIN_POSES``) as all the poses
    of `source` do, so a first run compiles one twin, not both.
    """
    from . import _api

    size = _warm_up_size(source.shape[0])
    _api.gpa(source[:size], targets, seed=seed, backend=backend)


#: Seconds the 2-core development machine takes to compile the demo's kernel
#: (one GPA twin, one dtype): about 10.6 s of CPU under load, 9.5 s idle by the
#: issue's own measurement scaled (docs/benchmarks.md, "Cold start"). Shown in
#: the notice.
_COMPILE_SECONDS = 10


def _compile_notice(n, dtype, stream):
    """Write one line to `stream` if the demo's Numba kernel is not cached yet."""
    from ._backends import numba_

    # the twin the warm-up launches
    parallel = numba_.use_parallel(_warm_up_size(n))
    kernel = numba_._gpa_parallel if parallel else numba_._gpa_serial
    if _in_disk_cache(kernel, dtype):
        return
    print(
        f"{PROG} demo: compiling the CPU kernels for first use (~{_COMPILE_SECONDS} s"
        " on 2 cores); later runs load them from the cache",
        file=stream,
        flush=True,
    )


def _warm_up_size(n):
    """Poses of the warm-up call: at least the parallel threshold, if `n` is."""
    from . import _config

    return min(n, max(4096, _config.PARALLEL_MIN_POSES))


def _in_disk_cache(kernel, dtype):
    """Whether Numba's on-disk cache holds `kernel` compiled for `dtype` arrays.

    Reads the kernel's cache index (a small pickle) the way Numba does before
    it compiles: an entry counts when it was made from the current source (the
    index is stamped with it), for this machine and Numba (the codegen's magic
    tuple) and from the current bytecode, and its first argument is an array
    of `dtype`. These are Numba internals: if they change, the answer is True
    (no notice) rather than an error.
    """
    import numba

    try:
        cache = kernel._cache
        index = cache._cache_file._load_index()
        codegen = kernel.targetctx.codegen()
        wanted = numba.from_dtype(dtype)
        return any(
            key == cache._index_key(key[0], codegen) and key[0][0].dtype == wanted
            for key in index
        )
    except Exception:  # any change of those internals: stay quiet
        return True


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
            args.n,
            args.n_target,
            seed=args.seed,
            backend=args.backend,
            dtype=dtype,
            notice=sys.stderr,
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
        f", paired mode, {dtype.name}, prepared targets) in "
        f"{result['seconds_gpa'] * 1e3:.1f} ms\n"
        "  after GPA: source poses projected through their paired target cameras\n"
    )
    print(format_table(result))
    if figure is not None:
        from . import plot

        fig = plot.distribution_figure(
            result["source"], result["aligned"], result["target"]
        )
        suffix = os.path.splitext(figure)[1].lstrip(".").lower()
        _save_figure(fig, figure, suffix)
        print(f"\nfigure: {figure}")
    return 0


def _save_figure(fig, path, suffix):
    """Write the figure through the shared atomic writer."""
    from ._outofcore import AtomicOutput, OutputError

    try:
        with AtomicOutput(path, "--output") as output:
            fig.savefig(output.file, format=suffix, dpi=fig.dpi)
            output.commit()
    except OutputError as exc:
        raise CommandError(str(exc)) from None


def _check_figure_path(path):
    from ._outofcore import OutputError, check_output

    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps"):
        raise CommandError(
            f"--output {path}: expected a .png, .pdf or .svg file name, got "
            f"suffix {suffix or 'none'!r}"
        )
    try:
        check_output(path, "--output")
    except OutputError as exc:
        raise CommandError(str(exc)) from None


def _have(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


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


def _camera_argument(text):
    """``--camera``: a ``.npy`` path, or one row of numbers (checked by the job)."""
    if text is None or text.lower().endswith(".npy"):
        return text
    try:
        return np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise CommandError(
            f"--camera {text!r}: expected a .npy file or 4 or 9 comma-separated "
            "numbers fx,fy,cx,cy[,k1,k2,k3,p1,p2]"
        ) from None


def _augment(args):
    from ._augment_files import AugmentRequest, run

    fields = AugmentRequest.__dataclass_fields__
    options = {k: v for k, v in vars(args).items() if k in fields}
    options["camera"] = _camera_argument(args.camera)
    request = AugmentRequest(camera_text=args.camera, **options)

    def log(text):
        print(f"{PROG} augment: {text}", file=sys.stderr)

    def progress(total, chunks):
        show = chunks > 1 if args.progress is None else args.progress
        return _Progress(total, show, "aligning")

    done = run(request, log=log, progress=progress)
    dims = ", ".join(map(str, done["shape"]))
    print(
        f"wrote {args.output}: {done['keys']} ({dims}) {done['dtype'].name}, "
        f"seed {done['seed']}"
    )
    return 0


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
