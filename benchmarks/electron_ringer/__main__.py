"""``python -m benchmarks.electron_ringer``: the firmware benchmark (`bench.main`)."""

import sys

from benchmarks.electron_ringer.bench import main

sys.exit(main())
