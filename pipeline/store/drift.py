"""The ETA drift of each profile (``pipeline.monitoring.drift``): its last
judged error, whether it drifts, how often it was recalibrated, and the
window its history is taken over while recalibrated."""

from __future__ import annotations

from dataclasses import dataclass

HISTORY_JOBS = 20


@dataclass(frozen=True)
class ProfileDrift:
    model: str
    backend: str
    device: str
    dtype: str
    error: float  # median |predicted - actual| / actual over the judged jobs
    drifting: bool
    recalibrations: int
    window: int  # the profile's history is its last this many jobs


class DriftMixin:
    def recent_eta_predictions(self, model: str, backend: str, device: str, dtype: str, *,
                               mark: int, last_n: int) -> list[tuple[float, float]]:
        """(predicted total s at ``mark``, actual total s) of the profile's
        last ``last_n`` succeeded jobs that predicted at that mark."""
        return self.db.execute(
            "SELECT p.predicted_total_s, (SELECT SUM(wall_s) FROM stage_runs r "
            "  WHERE r.job_id = p.job_id) FROM eta_predictions p JOIN ("
            "  SELECT r.job_id, MAX(r.finished_at) AS at FROM stage_runs r "
            "  JOIN jobs j ON j.id = r.job_id AND j.state = 'SUCCEEDED' "
            "  WHERE r.stage = 'inference' AND r.model = ? AND r.backend = ? AND r.device = ? "
            "  AND r.dtype = ? AND r.finished_at IS NOT NULL "
            "  AND EXISTS (SELECT 1 FROM eta_predictions e WHERE e.job_id = r.job_id "
            "              AND e.at_percent = ?) "
            "  GROUP BY r.job_id ORDER BY at DESC LIMIT ?) recent ON recent.job_id = p.job_id "
            "WHERE p.at_percent = ?",
            (model, backend, device, dtype, mark, last_n, mark)).fetchall()

    def record_eta_drift(self, model: str, backend: str, device: str, dtype: str, *,
                         error: float, drifting: bool, window: int) -> bool:
        """Store the profile's judged error; True when it starts drifting now
        (recalibrated: its history window drops to ``window`` jobs)."""
        with self._write() as db:
            row = db.execute("SELECT drifting FROM eta_drift WHERE model = ? AND backend = ? "
                             "AND device = ? AND dtype = ?",
                             (model, backend, device, dtype)).fetchone()
            started = drifting and not (row and row[0])
            db.execute(
                "INSERT INTO eta_drift (model, backend, device, dtype, error, drifting, "
                "recalibrations, history_jobs, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (model, backend, device, dtype) DO UPDATE SET "
                "error = excluded.error, drifting = excluded.drifting, "
                "recalibrations = recalibrations + ?, checked_at = excluded.checked_at, "
                "history_jobs = CASE WHEN ? THEN ? ELSE MIN(history_jobs + 1, ?) END",
                (model, backend, device, dtype, error, int(drifting), int(started),
                 window if started else HISTORY_JOBS, self.clock(), int(started), int(started),
                 window, HISTORY_JOBS))
        return started

    def count_job_for_drift(self, model: str, backend: str, device: str, dtype: str) -> None:
        """A job ended on the profile without a judgement: a recalibrated
        window widens by one all the same."""
        with self._write() as db:
            db.execute("UPDATE eta_drift SET history_jobs = MIN(history_jobs + 1, ?) WHERE model = ? AND "
                       "backend = ? AND device = ? AND dtype = ?",
                       (HISTORY_JOBS, model, backend, device, dtype))

    def history_window(self, model: str, backend: str, device: str, dtype: str,
                       default: int) -> int:
        """How many recent jobs the profile's history is taken over."""
        row = self.db.execute("SELECT history_jobs FROM eta_drift WHERE model = ? AND backend = ? AND "
                              "device = ? AND dtype = ?", (model, backend, device, dtype)
                              ).fetchone()
        return min(default, row[0]) if row else default

    def eta_drifts(self) -> list[ProfileDrift]:
        """Every judged profile (``/metrics``: one statement)."""
        return [ProfileDrift(m, b, d, t, e, bool(x), r, w) for m, b, d, t, e, x, r, w in
                self.db.execute("SELECT model, backend, device, dtype, error, drifting, "
                                "recalibrations, history_jobs FROM eta_drift ORDER BY 1, 2, 3, 4")]
