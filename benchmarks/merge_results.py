"""Merge result stores run elsewhere (e.g. a lent GPU's $OUT/results) into benchmarks/results.

    python benchmarks/merge_results.py /path/to/other/results [benchmarks/results]

Cells already stored here are kept; only new cells are appended.
"""

import sys

from ganad.bench.store import merge

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    n = merge(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "benchmarks/results")
    print(f"merged {n} new records")
