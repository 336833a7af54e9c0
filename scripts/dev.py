#!/usr/bin/env python3
"""Set up the project in .venv and run the demo or the tests.

    python3 scripts/dev.py demo     # set up, then translate the bundled sample
    python3 scripts/dev.py test     # set up, then run the test suite (installs
                                    # chromium for the browser test and prometheus
                                    # for tests/test_prometheus.py when run as root),
                                    # its tests spread over one worker per CPU (up to 4)

Needs nothing but Python 3.10+. On a machine without an NVIDIA GPU it
installs the CPU build of torch (torch==2.13.0) instead of gigabytes of
CUDA packages. Set-up is skipped when nothing it depends on has changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
CPU_TORCH = "torch==2.13.0"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def setup() -> Path:
    py = venv_python()
    has_gpu = shutil.which("nvidia-smi") is not None
    stamp_text = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + str(has_gpu).encode() + sys.version.encode()
    ).hexdigest()
    stamp = VENV / ".nllb-pipeline-setup"
    if py.exists() and stamp.exists() and stamp.read_text() == stamp_text:
        return py
    if not py.exists():
        run(sys.executable, "-m", "venv", VENV)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # Install torch first, pinned to the CPU build where there is no GPU: an
    # unpinned torch pulls the CUDA build and several GB of CUDA libraries.
    run(*pip, "torch" if has_gpu else CPU_TORCH)
    run(*pip, "-e", ".[test,ray,parquet]")
    stamp.write_text(stamp_text)
    return py


def ensure_debian_package(package: str, binaries: tuple[str, ...], tests: str,
                          env_var: str | None = None) -> None:
    """Install a Debian package the tests drive where we can: as root with
    apt-get. Elsewhere the tests that need it are skipped and say why."""
    if (env_var and os.environ.get(env_var)) or any(shutil.which(b) for b in binaries):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"dev.py: no {package} here, so {tests} will be skipped (install the {package} "
              "package" + (f", or set ${env_var}" if env_var else "") + ")", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        print("+", " ".join(cmd), flush=True)
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print(f"dev.py: could not install {package}; {tests} will be skipped", flush=True)
            return


def ensure_chromium() -> None:
    """tests/test_browser.py drives a Chromium binary (Debian's package; the
    browser Playwright downloads is not used)."""
    ensure_debian_package("chromium", ("chromium", "chromium-browser"), "tests/test_browser.py",
                          "NLLB_PIPELINE_CHROMIUM")


def ensure_prometheus() -> None:
    """tests/test_prometheus.py runs promtool and a Prometheus server."""
    ensure_debian_package("prometheus", ("promtool",), "tests/test_prometheus.py")


def ensure_gettext() -> None:
    """tests/test_format_po.py checks translated catalogues with msgfmt -c."""
    ensure_debian_package("gettext", ("msgfmt",), "the msgfmt checks in tests/test_format_po.py")


SOURCES = ("pipeline", "models", "tests", "benchmarks", "scripts")


def compile_sources(py: Path) -> None:
    """Write the project's bytecode once (under a second) before the suite
    starts processes that import it (228 interpreters in one run): where
    $PYTHONDONTWRITEBYTECODE is set, as in many containers, each of them
    would otherwise compile every module it imports again. (pip compiles
    the installed packages already.)"""
    subprocess.run([str(py), "-m", "compileall", "-q", *SOURCES], cwd=ROOT,
                   stdout=subprocess.DEVNULL, check=False)


def test_workers() -> list[str]:
    """pytest-xdist options: one worker per CPU this process may use, up to 4
    (each runs torch, and some test files start Ray or Chromium). A worker
    takes a whole test file at a time, so a module's fixtures (the Ray
    instance of tests/test_ray.py, a 20,000-chunk job) are made once, and
    files marked with one ``xdist_group`` (the browser tests) go to one
    worker together; the slowest files are handed out first
    (tests/conftest.py's ``SLOWEST_FIRST``). Options given to ``dev.py
    test`` come after these and win (``-n 0``: one process)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(cpus or 1, 4)
    if workers < 2:
        return []
    return ["-n", str(workers), "--dist", "loadgroup", "--no-loadscope-reorder"]


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    try:
        py = setup()
    except subprocess.CalledProcessError as exc:
        print(f"dev.py: set-up failed ({exc}); see the pip output above", file=sys.stderr)
        return 1
    extra = sys.argv[2:]
    if sys.argv[1] == "demo":
        return subprocess.call([str(py), "-m", "pipeline", "demo", *extra], cwd=ROOT)
    if sys.argv[1] == "test":
        ensure_chromium()
        ensure_gettext()
        ensure_prometheus()
        compile_sources(py)
        return subprocess.call([str(py), "-m", "pytest", "-q", *test_workers(), *extra], cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
