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
    failed = [c for c in store.chunks(job.id) if c.state == "failed"]
    failure = None
    if failed:
        shown = ", ".join(str(c.idx) for c in failed[:20]) + (" ..." if len(failed) > 20 else "")
        last = store.attempts(job.id)
        failure = (last[-1].error_class if last else "internal",
                   f"{len(failed)} chunk(s) failed for good (chunks {shown}); the output keeps "
                   f"their source text or a marker; 'nllb-pipeline retry {job.id}' retries them")
    store.finish_upload(job.id, run_id, ctx.worker, path=str(path),
                        sha256=hashlib.sha256(data).hexdigest(), nbytes=len(data),
                        failure=failure)
