"""tools/gpu_check.py: its refusal without a GPU, its stages and its one screen."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpa_arrays import _bench, _peers

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gpu_check.py"

# the sdist ships the tests but not tools/ (a development script)
pytestmark = pytest.mark.skipif(not TOOL.exists(), reason="no tools/ in this tree")


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("gpu_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_one_line_and_nonzero(tmp_path):
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""  # no device, even on a GPU host
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(TOOL), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("gpu_check: no usable GPU here (")
    assert lines[0].endswith("); nothing was run")
    assert not out.exists()


def test_the_goals_are_the_bench_targets(tool):
    for name, _ in tool.GOALS:
        assert name in _bench.TARGETS
    assert "torch eager" in _peers.FORMULA_PEERS  # the peer the bench stage asks for


def canned(**changes):
    """A result of :func:`check` in which every goal is met."""
    result = {
        "device": "NVIDIA H100 80GB HBM3",
        "tests": {
            "status": "ok",
            "seconds": 95.2,
            "passed": 61,
            "failed": 0,
            "errors": 0,
            "skipped": 2,
        },
        "bench": {
            "status": "ok",
            "seconds": 71.0,
            "n": 10_000_000,
            "ms": {
                "prepared, out=": 2.41,
                "one-shot, out=": 2.93,
                "copy bound": 2.02,
                "torch eager": 61.7,
            },
            "ratios": {},
            "host us per call": 12.5,
            "checks": {
                "gpu: prepared, out= / copy bound [float32]": [1.19, True],
                "gpu: torch / prepared, out= [float32]": [25.6, True],
                "gpu: batch of 1024, prepared, host us per call [float32]": [
                    12.5,
                    True,
                ],
            },
        },
        "seconds": 180.4,
        "budget": 480,
        "out": "/tmp/out",
    }
    for path, value in changes.items():
        *keys, last = path.split("/")
        node = result
        for key in keys:
            node = node[key]
        node[last] = value
    return result


def goal_lines(screen):
    return [line for line in screen.splitlines() if line.endswith(("met", "MISSED"))]


def test_screen_all_met(tool):
    screen = tool.format_screen(canned(), _bench.TARGETS)
    lines = screen.splitlines()
    assert len(lines) <= 24 and max(map(len, lines)) <= 100  # one screen
    assert lines[0] == "gpa_arrays GPU check on NVIDIA H100 80GB HBM3"
    assert "ms at N = M = 10,000,000, float32: prepared 2.41, one-shot 2.93" in screen
    goals = goal_lines(screen)
    assert len(goals) == 5
    assert all(line.endswith(" met") for line in goals)
    assert "61 passed, 0 failed, 0 errors, 2 skipped" in goals[0]
    assert "gpu: prepared, out= / copy bound <= 1.3 (issue 3): 1.19" in goals[1]
    assert "gpu: torch / prepared, out= >= 10 (issue 3): 25.60" in goals[2]
    assert "host us per call <= 15 (issue 3): 12.50" in goals[3]
    assert "whole check <= 8 min (issue 15): 180 s" in goals[4]
    assert tool.all_met(screen)


def test_screen_misses(tool):
    result = canned(**{"tests/failed": 3, "tests/passed": 58, "seconds": 500.0})
    result["bench"]["checks"]["gpu: torch / prepared, out= [float32]"] = [7.5, False]
    del result["bench"]["checks"][
        "gpu: batch of 1024, prepared, host us per call [float32]"
    ]
    screen = tool.format_screen(result, _bench.TARGETS)
    missed = [line for line in goal_lines(screen) if line.endswith("MISSED")]
    assert len(missed) == 4
    assert "58 passed, 3 failed" in missed[0]
    assert ">= 10 (issue 3): 7.50" in missed[1]
    assert "host us per call <= 15: not measured" in missed[2]
    assert "500 s" in missed[3]
    assert not tool.all_met(screen)


def test_screen_stages_that_did_not_finish(tool):
    result = canned()
    result["tests"] = {"status": "stopped at its 270 s limit", "seconds": 270.0}
    result["bench"] = {"status": "exit status 1", "seconds": 3.0}
    screen = tool.format_screen(result, _bench.TARGETS)
    goals = goal_lines(screen)
    assert goals[0].startswith("  gpu-marked tests: stopped at its 270 s limit")
    assert goals[1].startswith("  GPU benchmark rows: exit status 1")
    assert goals[0].endswith("MISSED") and goals[1].endswith("MISSED")
    assert "N = M" not in screen
    assert not tool.all_met(screen)


def test_junit_counts(tool, tmp_path):
    path = tmp_path / "report.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        '<testsuite name="pytest" errors="1" failures="2" skipped="3" tests="20">'
        "</testsuite></testsuites>"
    )
    assert tool.junit_counts(path) == {
        "passed": 14,
        "failed": 2,
        "errors": 1,
        "skipped": 3,
    }


def test_stage_time_limit(tool, tmp_path):
    # the stage starts a process of its own: both go at the limit
    script = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    status, seconds = tool._run_stage(
        [sys.executable, "-c", script], tmp_path / "log.txt", timeout=3
    )
    assert status == "stopped at its 3 s limit"
    assert 3 <= seconds < 30
    assert not _running(int((tmp_path / "log.txt").read_text()))
    status, _ = tool._run_stage(
        [sys.executable, "-c", "raise SystemExit(4)"], tmp_path / "log.txt", timeout=60
    )
    assert status == "exit status 4"


def _running(pid):
    """Whether process `pid` still runs (a killed one may linger as a zombie)."""
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":
            return False
        time.sleep(0.05)
    return True


def test_bench_summary_of_the_bench_rows(tool):
    # the shape _bench._gpu_blocks returns: rows (one per dtype) and checks
    row = {
        "device": "gpu",
        "dtype": "float32",
        "n": 1000,
        "ms": {"prepared, out=": 1.0, "copy bound": 0.9},
        "ratios": {"prepared, out= / copy bound": 1.11},
        "formula peers": {},
        "host us per call": 9.0,
    }
    checks = {"gpu: prepared, out= / copy bound [float32]": (1.11, True)}
    summary = tool.bench_summary([row], checks)
    assert summary == {
        "n": 1000,
        "ms": row["ms"],
        "ratios": row["ratios"],
        "host us per call": 9.0,
        "checks": {"gpu: prepared, out= / copy bound [float32]": [1.11, True]},
    }
