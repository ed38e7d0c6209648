"""`python -m npusim.cli`: the `npusim` console script without the script."""

import sys

from npusim.cli import main

sys.exit(main())
