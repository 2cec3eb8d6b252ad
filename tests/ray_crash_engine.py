"""An engine whose process dies the first time it runs a batch (used by test_ray_runner.py).

The marker file makes the crash happen once across all Ray actors: the first actor to run a
batch creates it and exits hard, as a segfaulting predictor would; Ray restarts that actor and
resubmits its batch.
"""

import os

from ppinfer.engines.analysis import AnalysisEngine

MARKER_ENV = "PPINFER_TEST_CRASH_MARKER"


class CrashOnceEngine(AnalysisEngine):
    def execute(self, batch):
        marker = os.environ[MARKER_ENV]
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().execute(batch)
        os.close(fd)
        os._exit(1)
