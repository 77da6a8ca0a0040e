"""``python -m benchmarks.muon_trigger``: the firmware benchmark (`bench.main`)."""

import sys

from benchmarks.muon_trigger.bench import main

sys.exit(main())
