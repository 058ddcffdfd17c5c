"""The GPU check: the gpu-marked tests and the GPU benchmark rows, one screen.

For the first CUDA machine at hand (issue 15). From the repository root, with the
``cuda`` extra installed (``pip install -e ".[cuda,test]"``)::

    python tools/gpu_check.py --out DIR

runs, each stage in its own process with its own time limit:

1. ``pytest -m gpu``: every test marked ``gpu`` (``tests/test_gpu.py``), the CUDA
   backend held bit for bit to the NumPy reference;
2. the GPU rows of ``gpa-arrays bench`` (``gpa_arrays._bench``), float32 only:
   N = M = 10,000,000 poses with prepared targets and ``out=`` against the
   device's copy of the same bytes (the copy bound), the published PoseDA
   function on CUDA tensors (eager torch), and the host-side cost of one call
   of a 1024-pose batch;

then prints one screen with a ``met`` / ``MISSED`` line per goal. The goals are
the GPU targets of ``gpa_arrays._bench.TARGETS`` (issue 3: at most 1.3x the copy
bound, at least 10x the published torch function, at most 15 us of host time
per 1024-pose call), all gpu-marked tests passing, and the whole check within
8 minutes (issue 15). Everything else goes to files under ``--out``:
``summary.txt`` (the screen), ``environment.txt`` (``nvidia-smi``, versions),
``pytest_gpu.log`` and ``.xml``, ``bench_gpu.log`` and ``bench_gpu.json``.

Without a usable CUDA device (CuPy missing, no device, or the ``cupy`` backend
not loadable) it prints one line on stderr and exits with status 3, before
running anything. Exit status 0 when every goal is met, 1 otherwise.

The CI check of the CUDA kernels that needs no GPU (registers, spills and
launch limits from ``ptxas`` for sm_80 and sm_90) is ``tools/ptxas_table.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The whole check's time limit (issue 15: "under 8 minutes in all"), seconds.
BUDGET_SECONDS = 480
#: Time limits of the two stages; together they leave a minute for start-up.
TEST_SECONDS = 270
BENCH_SECONDS = 150
#: Exit status when no GPU is usable (nothing was run).
NO_GPU = 3

#: The GPU goals of ``gpa_arrays._bench.TARGETS``, in screen order, with where
#: they were stated.
GOALS = (
    ("gpu: prepared, out= / copy bound", "issue 3"),
    ("gpu: torch / prepared, out=", "issue 3"),
    ("gpu: batch of 1024, prepared, host us per call", "issue 3"),
)


def _python_env():
    """Environment in which child processes import this checkout of gpa_arrays."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def gpu_unusable():
    """Why the check cannot run here (a short phrase), or ``None`` if it can."""
    sys.path.insert(0, str(ROOT))
    from gpa_arrays import _bench, backends

    usable, why = _bench._gpu_available()
    if not usable:
        return why
    if "cupy" not in backends():
        return "CuPy sees a CUDA device but the 'cupy' backend is not usable"
    return None


# --- the stages (each in a child process) --------------------------------------------


def _run_stage(command, log, timeout):
    """Run `command`, output to `log`; ``(status, seconds)``, status "ok" or why not.

    The child leads its own process group, so that a stage stopped at its limit
    takes the processes it started (tests that run subprocesses) with it.
    """
    start = time.perf_counter()
    with open(log, "w") as file:
        child = subprocess.Popen(
            command, cwd=ROOT, env=_python_env(), stdout=file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code = child.wait(timeout=timeout)
            status = "ok" if code == 0 else f"exit status {code}"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            status = f"stopped at its {timeout} s limit"
    return status, time.perf_counter() - start


def junit_counts(path):
    """``passed, failed, errors, skipped`` of a pytest JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {key: 0 for key in ("tests", "failures", "errors", "skipped")}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
    failed, errors, skipped = total["failures"], total["errors"], total["skipped"]
    return {
        "passed": total["tests"] - failed - errors - skipped,
        "failed": failed,
        "errors": errors,
        "skipped": skipped,
    }


def run_tests(out, timeout=TEST_SECONDS):
    """Stage 1: the gpu-marked tests; their counts, status and seconds."""
    xml = out / "pytest_gpu.xml"
    command = [
        sys.executable, "-m", "pytest", "-m", "gpu", "-v", "--durations=15",
        "-p", "no:cacheprovider",
        f"--junitxml={xml}", "tests",
    ]  # fmt: skip
    status, seconds = _run_stage(command, out / "pytest_gpu.log", timeout)
    result = {"status": status, "seconds": seconds}
    if xml.exists():
        result.update(junit_counts(xml))
    # pytest's exit status 1 means failed tests, which the counts already say
    if status == "exit status 1" and "failed" in result:
        result["status"] = "ok"
    return result


def run_bench(out, gpu_n, timeout=BENCH_SECONDS):
    """Stage 2: the GPU benchmark rows, in a child; its results, status, seconds."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--stage", "bench",
        "--out", str(out), "--gpu-n", str(gpu_n),
    ]  # fmt: skip
    status, seconds = _run_stage(command, out / "bench_gpu.log", timeout)
    result = {"status": status, "seconds": seconds}
    path = out / "bench_gpu.json"
    if path.exists():
        result.update(json.loads(path.read_text()))
    return result


def bench_stage(out, gpu_n):
    """The benchmark child: ``_bench``'s GPU rows, written to ``bench_gpu.json``."""
    sys.path.insert(0, str(ROOT))
    from gpa_arrays import _bench

    # the published function on CUDA tensors is the peer the goal names; the
    # compiled peers would spend the budget compiling
    rows, checks, _, _ = _bench._gpu_blocks(
        gpu_n, 17, ("float32",), ("torch eager",), 9, 1024, 2000
    )
    (out / "bench_gpu.json").write_text(json.dumps(bench_summary(rows, checks)))


def bench_summary(rows, checks):
    """The parts of ``_bench._gpu_blocks``' result the screen shows (JSON-ready)."""
    row = rows[0]
    return {
        "n": row["n"],
        "ms": row["ms"],
        "ratios": row["ratios"],
        "host us per call": row.get("host us per call"),
        "checks": {
            name: [float(value), bool(met)] for name, (value, met) in checks.items()
        },
    }


def environment(out):
    """Record the device and versions in ``environment.txt``; the device's name."""
    lines = [f"python {sys.version.split()[0]}"]
    try:
        smi = subprocess.run(
            ["nvidia-smi"], capture_output=True, text=True, timeout=30, check=False
        )
        lines.append(smi.stdout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        lines.append(f"nvidia-smi: {exc}")
    import cupy

    from gpa_arrays import __version__

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines.append(f"device 0: {name}; cupy {cupy.__version__}; gpa_arrays {__version__}")
    (out / "environment.txt").write_text("\n".join(lines) + "\n")
    return name


# --- the screen ----------------------------------------------------------------------


#: The benchmark cases the screen shows the times of, and their short labels.
_TIMES = (
    ("prepared, out=", "prepared"),
    ("one-shot, out=", "one-shot"),
    ("copy bound", "copy bound"),
    ("torch eager", "torch"),
)


def _goal_line(text, met):
    return f"  {text:<72s} {'met' if met else 'MISSED'}"


def _test_lines(tests):
    if tests["status"] != "ok" or "passed" not in tests:
        return [_goal_line(f"gpu-marked tests: {tests['status']}", False)]
    counts = (
        f"{tests['passed']} passed, {tests['failed']} failed, "
        f"{tests['errors']} errors, {tests['skipped']} skipped"
    )
    met = tests["passed"] > 0 and tests["failed"] == 0 and tests["errors"] == 0
    return [_goal_line(f"gpu-marked tests all pass: {counts}", met)]


def _bench_lines(bench, targets):
    if "checks" not in bench:
        return [_goal_line(f"GPU benchmark rows: {bench['status']}", False)]
    lines = []
    for name, source in GOALS:
        limit, kind = targets[name]
        sign = ">=" if kind == "min" else "<="
        found = bench["checks"].get(f"{name} [float32]")
        if found is None:
            lines.append(_goal_line(f"{name} {sign} {limit:g}: not measured", False))
            continue
        value, met = found
        lines.append(
            _goal_line(f"{name} {sign} {limit:g} ({source}): {value:.2f}", met)
        )
    return lines


def format_screen(result, targets):
    """The check's one screen, from its `result` dict (see :func:`check`).

    `targets` maps each goal's name to ``(limit, "min" | "max")``, as
    ``gpa_arrays._bench.TARGETS`` does.
    """
    tests, bench = result["tests"], result["bench"]
    lines = [
        f"gpa_arrays GPU check on {result['device']}",
        f"  tests {tests['seconds']:.0f} s ({tests['status']}), "
        f"benchmark {bench['seconds']:.0f} s ({bench['status']}), "
        f"total {result['seconds']:.0f} s",
    ]
    if "ms" in bench:
        ms = bench["ms"]
        times = ", ".join(
            f"{label} {ms[name]:.2f}" for name, label in _TIMES if name in ms
        )
        lines.append(f"  ms at N = M = {bench['n']:,}, float32: {times}")
    lines.append("goals:")
    lines += _test_lines(tests)
    lines += _bench_lines(bench, targets)
    budget = result["budget"]
    lines.append(
        _goal_line(
            f"whole check <= {budget // 60} min (issue 15): {result['seconds']:.0f} s",
            result["seconds"] <= budget,
        )
    )
    lines.append(f"logs: {result['out']}")
    return "\n".join(lines)


def all_met(screen):
    """Whether every goal line of `screen` says ``met``."""
    return " MISSED" not in screen


# --- entry point ---------------------------------------------------------------------


def check(out, gpu_n):
    """Run both stages; the result dict :func:`format_screen` shows."""
    start = time.perf_counter()
    device = environment(out)
    tests = run_tests(out)
    bench = run_bench(out, gpu_n)
    return {
        "device": device,
        "tests": tests,
        "bench": bench,
        "seconds": time.perf_counter() - start,
        "budget": BUDGET_SECONDS,
        "out": str(out),
    }


def main(argv=None):
    """Command-line entry point; returns the exit status (see the module notes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the logs")
    parser.add_argument(
        "--gpu-n", type=int, default=10_000_000, help="poses of the GPU rows (1e7)"
    )
    parser.add_argument(
        "--stage", choices=("all", "bench"), default="all", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    why = gpu_unusable()
    if why is not None:
        print(
            f"gpu_check: no usable GPU here ({why}); nothing was run", file=sys.stderr
        )
        return NO_GPU
    out.mkdir(parents=True, exist_ok=True)
    if args.stage == "bench":
        bench_stage(out, args.gpu_n)
        return 0
    from gpa_arrays._bench import TARGETS

    screen = format_screen(check(out, args.gpu_n), TARGETS)
    (out / "summary.txt").write_text(screen + "\n")
    print(screen)
    return 0 if all_met(screen) else 1


if __name__ == "__main__":
    sys.exit(main())
