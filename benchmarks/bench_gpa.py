"""Side-by-side GPA timing: ours, the NumPy and published torch peers, the bound.

Usage: python benchmarks/bench_gpa.py [-n 1000000] [--dtype float32] [--no-torch]
       [--gpu | --no-gpu]      (the same as ``gpa-arrays bench``; see --help)
"""

import sys

from gpa_arrays._bench import main

if __name__ == "__main__":
    sys.exit(main())
