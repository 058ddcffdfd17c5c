"""Side-by-side GPA timing: ours, the published torch function, the stream bound.

Usage: python benchmarks/bench_gpa.py [-n 1000000] [--dtype float32] [--no-torch]
"""

import sys

from gpa_arrays._bench import main

if __name__ == "__main__":
    sys.exit(main())
