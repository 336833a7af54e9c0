"""Translation memory: what every chunk delivered (the repair ladder's work
included, with its flag) under a key made of what determines it, reused
instead of inference; exchanged as TMX 1.4.

- ``scope``: what a key is made of, and the job's modes (``off``, ``read``,
  ``on``);
- ``tmx``: reading (validated, safely) and writing TMX 1.4 files;
- ``exchange``: the verbs behind ``nllb-pipeline tm``: stats, export,
  import, prune.

The units themselves live in the job store (``pipeline.store.memory``),
which reads them when a job's chunks are written and writes them when a
batch commits, inside those transactions.
"""

from pipeline.memory.scope import MODES, MemoryScope, output_settings, scope_for

__all__ = ["MODES", "MemoryScope", "output_settings", "scope_for"]
