"""Check the built sdist and wheel: metadata, and that nothing is missing.

Usage: ``python .ci/dist_contents.py DIST_DIR`` from the repository root, with
DIST_DIR holding exactly one ``*.tar.gz`` and one ``*.whl`` (``python -m
build``). Exits non-zero, listing every problem, when one is found. Run by
``.ci/check_dist.sh``.
"""

import ast
import email.parser
import sys
import tarfile
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpa_arrays"

# CFF 1.2.0: keys required at the top level and in each reference
CFF_REQUIRED = ("cff-version", "message", "title", "authors")
CFF_REFERENCE_REQUIRED = ("type", "title", "authors")


def source_version():
    """``__version__`` as written in gpa_arrays/__init__.py (no import)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit("gpa_arrays/__init__.py: no literal __version__")


def package_files():
    """Files the wheel must hold, as paths relative to the repository root.

    Every Python module, the CUDA sources (compiled at run time by NVRTC, so a
    wheel without them has no CUDA backend) and the PEP 561 marker.
    """
    patterns = ("**/*.py", "_backends/kernels/*.cu", "_backends/kernels/*.cuh")
    found = {
        p.relative_to(ROOT).as_posix()
        for pattern in patterns
        for p in PACKAGE.glob(pattern)
        if "__pycache__" not in p.parts
    }
    return found | {"gpa_arrays/py.typed"}


def check_wheel(path, version, problems):
    """Contents and metadata of the wheel."""
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        info = f"gpa_arrays-{version}.dist-info"
        meta = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    kernels = [n for n in package_files() if n.endswith((".cu", ".cuh"))]
    if not kernels:
        problems.append("source tree: no CUDA sources found to look for")
    for name in sorted(package_files() - names):
        problems.append(f"wheel: {name} missing")
    for name in sorted(names):
        if not name.startswith(("gpa_arrays/", f"{info}/")):
            problems.append(f"wheel: unexpected top-level file {name}")
    if f"{info}/licenses/LICENSE" not in names:
        problems.append("wheel: LICENSE missing from the dist-info")
    expected = {
        "Name": "gpa-arrays",
        "Version": version,
        "License-Expression": "BSD-3-Clause",
        "License-File": "LICENSE",
    }
    for key, value in expected.items():
        if meta.get(key) != value:
            problems.append(f"wheel METADATA: {key} {meta.get(key)!r}, not {value!r}")
    requires = meta.get_all("Requires-Dist") or []
    for dependency in ("numpy", "numba"):
        if not any(r.startswith(dependency) and "extra" not in r for r in requires):
            problems.append(f"wheel METADATA: no Requires-Dist on {dependency}")
    if "gpa-arrays = gpa_arrays.cli:main" not in entry_points:
        problems.append("wheel: no gpa-arrays console script")
    return len(names)


def check_sdist(path, version, problems):
    """The sdist holds what a rebuild and a reader need."""
    top = f"gpa_arrays-{version}"
    with tarfile.open(path) as sdist:
        names = {n.removeprefix(f"{top}/") for n in sdist.getnames()}
    extra = {"LICENSE", "README.md", "CHANGELOG.md", "CITATION.cff", "pyproject.toml"}
    tests = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("tests/**/*.py")}
    tests.add("tests/cuda_host/driver.cpp")
    for name in sorted((package_files() | extra | tests) - names):
        problems.append(f"sdist: {name} missing")
    return len(names)


def check_citation(problems):
    """CITATION.cff parses as YAML and has the keys CFF 1.2.0 requires."""
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    if cff.get("cff-version") != "1.2.0":
        problems.append(f"CITATION.cff: cff-version {cff.get('cff-version')!r}")
    for key in CFF_REQUIRED:
        if not cff.get(key):
            problems.append(f"CITATION.cff: {key} missing")
    for i, reference in enumerate(cff.get("references", [])):
        for key in CFF_REFERENCE_REQUIRED:
            if not reference.get(key):
                problems.append(f"CITATION.cff: references[{i}].{key} missing")
    if not any("2303.16456" in str(r) for r in cff.get("references", [])):
        problems.append("CITATION.cff: PoseDA (arXiv:2303.16456) not referenced")


def main(dist_dir):
    """Check both archives in `dist_dir`; exit 1 listing the problems."""
    dist = Path(dist_dir)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise SystemExit(f"{dist}: expected one wheel and one sdist, got {wheels} "
                         f"{sdists}")  # fmt: skip
    version, problems = source_version(), []
    n_wheel = check_wheel(wheels[0], version, problems)
    n_sdist = check_sdist(sdists[0], version, problems)
    check_citation(problems)
    if problems:
        print("\n".join(["dist contents: FAILED", *problems]), file=sys.stderr)
        raise SystemExit(1)
    print(f"dist contents: ok ({wheels[0].name}: {n_wheel} files; "
          f"{sdists[0].name}: {n_sdist} entries; version {version})")  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
