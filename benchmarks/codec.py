"""The codec suite: ``python -m benchmarks.codec --help`` (same as ``python -m fastframe bench``).

The suite lives in ``fastframe/_bench/`` so that installed wheels can run it.
"""

import sys

from fastframe._bench.codec import main

if __name__ == "__main__":
    sys.exit(main())
