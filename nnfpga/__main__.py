import sys

from nnfpga.compiler.cli import main

sys.exit(main())
