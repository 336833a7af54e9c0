"""Upload: deliver the output document and record where it went.

Progress unit: bytes. The file is written to a temporary name in the same
directory, flushed to disk, then renamed over the target, so a reader (or a
crash) never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.errors import InvalidInput


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def run(ctx) -> None:
    store, job = ctx.store, ctx.job
    data = store.artifact(job.id, "output").content
    run_id = store.start_stage(job.id, "upload", units_total=len(data), worker=ctx.worker)
    ctx.events.stage_started("upload", len(data))
    path = Path(job.output_path)
    write_atomically(path, data)
    ctx.events.stage_progress("upload", len(data))
    store.finish_upload(job.id, run_id, ctx.worker, path=str(path),
                        sha256=hashlib.sha256(data).hexdigest(), nbytes=len(data))
