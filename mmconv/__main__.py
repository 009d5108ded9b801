"""``python -m mmconv SCRIPT ...`` runs one of the console scripts (mmtoir, mmconvert ...)."""

from __future__ import annotations

import importlib
import sys

SCRIPTS = ("mmdownload", "mmtoir", "mmtocode", "mmtomodel", "mmconvert", "mmverify")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SCRIPTS:
        print(f"usage: python -m mmconv {{{','.join(SCRIPTS)}}} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"mmconv.cli.{argv[0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
