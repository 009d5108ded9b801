"""The catalog of known pretrained models: loaded from ``catalog.json``, validated, looked up.

The catalog is data, not code, so that adding a model (or correcting a URL)
is a one-line change anyone can review against the source it cites.  Every
entry names its sources; ``size``, ``sha256``, ``md5`` and ``sha256_prefix``
are filled only where a cited source states them (``null`` otherwise), because
a made-up checksum would turn every correct download into a failure.

Validation runs at load time and is strict: a malformed entry is a packaging
bug and should fail the test-suite, not a user's download an hour later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from mmconv.errors import UsageError

#: The format checks the downloader knows (see :mod:`mmconv.download.formats`).
FORMATS = ("cntk", "onnx", "keras", "pytorch")

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Source:
    """Where facts in the catalog come from (a file at a pinned commit, a manifest ...)."""

    key: str
    title: str
    ref: str
    licence: str
    states: str = ""


@dataclass(frozen=True)
class Framework:
    """A framework section of the catalog: its canonical name, spellings, and file format."""

    name: str
    title: str
    format: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable model file.

    ``file`` is always the last path component of ``url``: files are saved
    under the name the publisher gave them, which is also the name an offline
    mirror (``MMCONV_MIRROR``) serves them under.
    """

    framework: str
    name: str
    file: str
    url: str
    format: str
    description: str = ""
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None
    sources: tuple[Source, ...] = field(default_factory=tuple)

    @property
    def has_full_checksum(self) -> bool:
        """True when a cited full-length digest identifies the exact file."""
        return bool(self.sha256 or self.md5)


class Catalog:
    """All frameworks and models, with case-insensitive lookups that explain their misses."""

    def __init__(self, frameworks: Mapping[str, Framework], models: list[ModelEntry],
                 sources: Mapping[str, Source]) -> None:
        self.frameworks = dict(frameworks)
        self.sources = dict(sources)
        self._models = list(models)
        self._spellings: dict[str, str] = {}
        for fw in self.frameworks.values():
            for spelling in (fw.name, *fw.aliases):
                self._spellings[spelling.lower()] = fw.name

    def framework(self, name: str) -> Framework:
        """The framework ``name`` (or an alias such as ``tf``), or a UsageError listing them."""
        key = self._spellings.get(name.strip().lower())
        if key is None:
            known = ", ".join(sorted(self._spellings))
            raise UsageError(f"unknown framework {name!r} (known: {known})")
        return self.frameworks[key]

    def models(self, framework: str) -> list[ModelEntry]:
        """The models of one framework, in catalog order."""
        fw = self.framework(framework)
        return [m for m in self._models if m.framework == fw.name]

    def find(self, framework: str, name: str) -> ModelEntry:
        """The model ``name`` (case-insensitive) of ``framework``; a miss lists the known names."""
        fw = self.framework(framework)
        wanted = name.strip().lower()
        for model in self.models(fw.name):
            if model.name.lower() == wanted:
                return model
        known = ", ".join(m.name for m in self.models(fw.name))
        raise UsageError(f"no {fw.title} model named {name!r} (known: {known})")

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"model catalog: {where}: {message}")


def _opt_hex(entry: dict[str, Any], key: str, where: str, length: int | None) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise _fail(where, f"{key} must be lowercase hex, got {value!r}")
    if length is not None and len(value) != length:
        raise _fail(where, f"{key} must have {length} hex digits, got {len(value)}")
    if length is None and len(value) < 8:
        raise _fail(where, f"{key} must have at least 8 hex digits")
    return value


def url_file_name(url: str) -> str:
    """The last path component of ``url`` (what the file is saved as), or '' if it has none."""
    return PurePosixPath(urlsplit(url).path).name


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Build a :class:`Catalog` from decoded JSON, rejecting anything malformed."""
    if data.get("version") != 1:
        raise _fail("top level", f"unsupported version {data.get('version')!r}")
    sources: dict[str, Source] = {}
    for key, raw in (data.get("sources") or {}).items():
        for needed in ("title", "ref", "licence"):
            if not isinstance(raw.get(needed), str) or not raw[needed]:
                raise _fail(f"source {key}", f"missing {needed}")
        sources[key] = Source(key, raw["title"], raw["ref"], raw["licence"], raw.get("states", ""))

    frameworks: dict[str, Framework] = {}
    spellings: set[str] = set()
    for name, raw in (data.get("frameworks") or {}).items():
        fmt = raw.get("format")
        if fmt not in FORMATS:
            raise _fail(f"framework {name}", f"format must be one of {FORMATS}, got {fmt!r}")
        aliases = tuple(raw.get("aliases") or ())
        for spelling in (name, *aliases):
            if spelling.lower() in spellings:
                raise _fail(f"framework {name}", f"spelling {spelling!r} used twice")
            spellings.add(spelling.lower())
        frameworks[name] = Framework(name, raw.get("title") or name, fmt, aliases)

    models: list[ModelEntry] = []
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(data.get("models") or ()):
        where = f"models[{index}] ({raw.get('framework')}/{raw.get('name')})"
        fw = frameworks.get(raw.get("framework", ""))
        if fw is None:
            raise _fail(where, "unknown framework")
        name, url, file = raw.get("name"), raw.get("url"), raw.get("file")
        if not isinstance(name, str) or not name.strip():
            raise _fail(where, "missing name")
        if (fw.name, name.lower()) in seen:
            raise _fail(where, "duplicate name (names are matched case-insensitively)")
        seen.add((fw.name, name.lower()))
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise _fail(where, f"url must be http(s), got {url!r}")
        if file != url_file_name(url) or file in ("", ".", ".."):
            raise _fail(where, f"file {file!r} must be the URL's file name {url_file_name(url)!r}")
        size = raw.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise _fail(where, f"size must be a positive integer or null, got {size!r}")
        cited = raw.get("sources") or ()
        if not cited:
            raise _fail(where, "every entry must cite at least one source")
        missing = [s for s in cited if s not in sources]
        if missing:
            raise _fail(where, f"unknown sources {missing}")
        fmt = raw.get("format", fw.format)
        if fmt not in FORMATS:
            raise _fail(where, f"format must be one of {FORMATS}")
        models.append(ModelEntry(
            framework=fw.name, name=name, file=file, url=url, format=fmt,
            description=raw.get("description", ""), size=size,
            sha256=_opt_hex(raw, "sha256", where, 64),
            md5=_opt_hex(raw, "md5", where, 32),
            sha256_prefix=_opt_hex(raw, "sha256_prefix", where, None),
            sources=tuple(sources[s] for s in cited),
        ))
    return Catalog(frameworks, models, sources)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog file (default: the one shipped in this package)."""
    if path is None:
        return _packaged_catalog()
    return parse_catalog(json.loads(Path(path).read_text(encoding="utf-8")))


@cache
def _packaged_catalog() -> Catalog:
    text = resources.files("mmconv.download").joinpath("catalog.json").read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))
