"""``mmdownload``: list and fetch known pretrained models, verified.

The first command of MMdnn's documented workflow, with its flags::

    mmdownload -f cntk                         # list CNTK models with their sizes
    mmdownload -f cntk -n resnet50 -o ./       # download, resume, verify
    mmdownload -f onnx --url URL -o ./models   # any file, checked as an ONNX model

``MMCONV_MIRROR=<base URL>`` makes catalog downloads come from
``<base URL>/<file name>`` (offline mirrors, tests).  See docs/download.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mmconv.cli.common import make_parser, run
from mmconv.download.catalog import ModelEntry, load_catalog
from mmconv.download.downloader import ENV_MIRROR, Downloader, Settings, Target, mirror_url
from mmconv.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "mmdownload",
        "Download a known pretrained model (verified; resumes interrupted transfers). "
        "Without -n, list the framework's models.",
    )
    parser.add_argument("--framework", "-f", required=True, metavar="FRAMEWORK",
                        help="cntk, onnx, keras (also: tensorflow, tf), pytorch (also: torch)")
    parser.add_argument("--network", "-n", metavar="NAME",
                        help="model name from the list (case-insensitive)")
    parser.add_argument("--path", "-o", "-p", default="./", metavar="DIR",
                        help="folder to save into (default: ./)")
    parser.add_argument("--url", metavar="URL",
                        help="fetch this URL instead (with -n: checked against that model's "
                             "catalog entry; without: checked as a FRAMEWORK model file)")
    return parser


def human_size(size: int | None) -> str:
    """``102.4 MB`` style sizes (decimal units, as download pages state them)."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _check_kind(entry: ModelEntry) -> str:
    if entry.sha256:
        return "sha256"
    if entry.md5:
        return "md5"
    if entry.sha256_prefix:
        return "sha256-prefix+format"
    return "format"


def list_models(framework: str) -> int:
    """Print the framework's catalog: name, size, how it is verified, file name."""
    catalog = load_catalog()
    fw = catalog.framework(framework)
    models = catalog.models(fw.name)
    print(f"{fw.title} models (download one with: mmdownload -f {fw.name} -n NAME -o DIR):")
    width = max([len(m.name) for m in models] + [4])
    print(f"  {'NAME':<{width}}  {'SIZE':>10}  {'CHECK':<20}  FILE")
    for m in models:
        print(f"  {m.name:<{width}}  {human_size(m.size):>10}  {_check_kind(m):<20}  {m.file}")
    mirror = os.environ.get(ENV_MIRROR, "").strip()
    if mirror:
        print(f"(downloads come from the mirror {mirror}, set by {ENV_MIRROR})")
    return 0


def _main(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    fw = catalog.framework(args.framework)
    if not args.network and not args.url:
        return list_models(fw.name)

    if args.network:
        entry = catalog.find(fw.name, args.network)
        source = args.url or mirror_url(entry.url, entry.file)
        target = Target.from_entry(entry, source)
    else:
        target = Target.from_url(args.url, fw.format)
    if not args.path:
        raise UsageError("-o/--path must not be empty")

    result = Downloader(Settings.from_env()).fetch(target, args.path)
    action = "saved as" if result.downloaded else "already present and verified at"
    print(f"{target.label} {action} [{result.path.resolve()}]")
    print(f"  {result.size} bytes ({human_size(result.size)}), sha256 {result.sha256}; "
          f"verified: {result.verified}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmdownload", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
