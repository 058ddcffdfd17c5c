#!/usr/bin/env bash
# Packaging check, run by .ci/run after the tests: build the sdist and the wheel
# (the wheel from the sdist, so the sdist is proven complete), check their
# metadata (twine check --strict) and contents (.ci/dist_contents.py: every
# module, the CUDA sources, py.typed, LICENSE), install the wheel with its real
# dependencies into a fresh virtual environment (no editable install, no extras)
# and smoke-test it there (.ci/smoke_test.py, `gpa-arrays --version`), then let
# mypy check a user's script against the installed wheel (PEP 561).
#
# Needs, in the calling environment: build, twine, mypy and PyYAML (the dist,
# typing and dask extras). Network: PyPI, for the build backend and for the
# wheel's dependencies (pip's cache makes reruns fast).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

work=$(mktemp -d "${TMPDIR:-/tmp}/gpa_arrays_dist.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== build sdist and wheel"
python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
ls "$work/dist"

echo "== metadata and contents"
python -m twine check --strict "$work"/dist/*
python .ci/dist_contents.py "$work/dist"

echo "== clean install of the wheel"
version=$(python -c "import sys; sys.path.insert(0, '.ci'); import dist_contents; print(dist_contents.source_version())")
python -m venv "$work/venv"
# the wheel's own dependencies, resolved by pip; nothing else is installed
env -u PYTHONPATH "$work/venv/bin/python" -m pip install --quiet \
    --disable-pip-version-check "$work"/dist/*.whl
env -u PYTHONPATH "$work/venv/bin/python" -m pip check --disable-pip-version-check

echo "== smoke test"
cp .ci/smoke_test.py "$work/"
# from outside the repository, so the installed package is the one imported
(cd "$work" && env -u PYTHONPATH NUMBA_CACHE_DIR="$work/numba_cache" \
    venv/bin/python smoke_test.py "$version")
got=$(cd "$work" && env -u PYTHONPATH venv/bin/gpa-arrays --version)
[ "$got" = "gpa-arrays $version" ] \
    || { echo "gpa-arrays --version: '$got', expected 'gpa-arrays $version'"; exit 1; }
echo "gpa-arrays --version: $got"

echo "== types from the installed wheel (PEP 561)"
# A user's script with one deliberate mistake: mypy must find the package's own
# annotations (py.typed) and report exactly that mistake.
cat >"$work/user.py" <<'PY'
import numpy as np

import gpa_arrays

index = gpa_arrays.pair_indices(4, 4, seed=0)
poses = gpa_arrays.gpa(np.zeros((4, 17, 3)), np.zeros((4, 17, 2)), np.ones(4))
gpa_arrays.pair_indices(4, 4, seed="zero")
PY
set +e
(cd "$work" && env -u PYTHONPATH python -m mypy --no-incremental \
    --python-executable "$work/venv/bin/python" user.py) >"$work/mypy.log" 2>&1
set -e
if grep -q 'user.py:7: error: .*"seed".*\[arg-type\]' "$work/mypy.log" \
    && [ "$(grep -c ': error:' "$work/mypy.log")" = 1 ]; then
    echo "mypy sees the wheel's annotations: ok"
else
    echo "mypy on a user script against the installed wheel, expected one"
    echo "[arg-type] error for seed= on line 7, got:"
    cat "$work/mypy.log"
    exit 1
fi
echo "== packaging check passed ($repo)"
