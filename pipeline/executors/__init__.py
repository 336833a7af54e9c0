"""Where a planned batch runs: the executors behind the inference stage's
in-flight window (``pipeline.stages.inference``). An executor submits a call
and returns a future; its ``window`` says how many calls the stage keeps
outstanding. ``models.ray_pool`` is the same seam over Ray actors: a
translator whose ``describe().concurrency`` is above 1 submits its own calls.
"""

from pipeline.executors.cache import TranslatorCache
from pipeline.executors.local import (LOCAL_WINDOW, Executor, LocalExecutor, Submitting,
                                      executor_for)

__all__ = ["LOCAL_WINDOW", "Executor", "LocalExecutor", "Submitting", "TranslatorCache",
           "executor_for"]
