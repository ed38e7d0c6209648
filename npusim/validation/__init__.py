"""`npusim validate`: published Ascend 910B measurements, replayed on the simulator, row by row.

`measurements` holds the figures and their sources, `replay` how each kind of row is simulated,
`suite` runs them and judges each against its tolerance, `command` is the command line.
"""

from npusim.validation.measurements import Measurement, suite_rows
from npusim.validation.replay import ValidationError
from npusim.validation.suite import Outcome, mean_abs_error, run, select

__all__ = ["Measurement", "Outcome", "ValidationError", "mean_abs_error", "run", "select", "suite_rows"]
