"""Long work shows progress on a terminal and stays quiet when piped."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path


def _run_in_pty(args: list[str]) -> tuple[int, str]:
    """Run ``args`` with stdout/stderr on a pseudo-terminal; return (status, screen text)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: a 100x30 terminal (a fresh pty has 0 columns), then the command
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execv(sys.executable, [sys.executable, *args])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    code, screen = _run_in_pty(["-m", "mmconv", "mmtoir", "-f", "cntk", "-n",
                                str(cntk_fixtures_dir / "residual.v2.model"), "-d",
                                str(tmp_path / "ir")])
    assert code == 0, screen
    assert "reading the source model" in screen
    assert "writing the IR" in screen


def test_quiet_when_piped(cntk_fixtures_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mmconv", "mmtoir", "-f", "cntk", "-n",
                           str(cntk_fixtures_dir / "residual.v2.model"), "-d",
                           str(tmp_path / "ir")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "reading the source model" not in proc.stdout
