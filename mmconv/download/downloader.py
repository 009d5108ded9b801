"""Resumable, verified downloads: a file appears under its final name only once it is proven.

Why each piece exists:

- **``NAME.part``**: bytes go to ``NAME.part`` in the target folder and are
  renamed to ``NAME`` only after the transfer is complete *and* verified, so
  a file under the final name is always a good one.
- **Resume**: a network failure (cut connection, read timeout, 5xx) leaves
  ``NAME.part``; the next attempt - in this run after a backoff, or in a later
  run - asks for the rest with ``Range: bytes=N-``.  The rest is appended only
  if the server answers ``206`` with a ``Content-Range`` starting at ``N``;
  any other answer restarts the file from zero, because appending bytes
  from a different offset would silently corrupt it.
- **Digests while streaming**: sha256 (and md5, which Keras publishes) are
  updated chunk by chunk as bytes are written, so verification needs no
  second read of the download.  Only a ``.part`` left by an earlier run is
  read once to bring the digests up to its length.
- **Verification**: a full checksum from the catalog (sha256 or md5) decides
  alone; without one, the file must parse as its framework's format
  (:mod:`mmconv.download.formats`).  A file that fails is deleted and the
  caller gets one :class:`~mmconv.errors.DownloadError` line saying what
  the file looked like.
- **Already there**: a file already present under the final name is
  re-verified (hashing it costs about a second for 240 MB, far less than a
  download) and kept if good.  There is no ``NAME.sha256`` sidecar: a sidecar
  says what a file *was*, not what it *is*, and would let a truncated or
  replaced file pass.
- **Bounded retries**: connection errors, timeouts and 5xx are retried with
  exponential backoff (``retries`` failures in a row without progress, a hard
  cap on attempts in all, capped delay); 4xx is final at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import requests
import urllib3

from mmconv import __version__
from mmconv.download.catalog import ModelEntry, url_file_name
from mmconv.download.formats import check_format, describe_head, read_head
from mmconv.errors import DownloadError, ModelFormatError, UsageError
from mmconv.progress import bar

#: Environment variables (documented in docs/download.md).
ENV_MIRROR = "MMCONV_MIRROR"
ENV_TIMEOUT = "MMCONV_DOWNLOAD_TIMEOUT"
ENV_RETRIES = "MMCONV_DOWNLOAD_RETRIES"
ENV_BACKOFF = "MMCONV_DOWNLOAD_BACKOFF"

PART_SUFFIX = ".part"
#: Hard cap on attempts, as a multiple of ``retries + 1`` (see Downloader._transfer).
MAX_ATTEMPTS_FACTOR = 10
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


@dataclass(frozen=True)
class Settings:
    """How patient a download is.  Tests shrink these; users can via the environment.

    ``timeout`` is both the connect timeout and the longest silence allowed
    between two reads; ``retries`` is how many times a failed attempt is
    repeated (so ``retries + 1`` attempts in all); the n-th retry waits
    ``min(backoff * 2**(n-1), backoff_cap)`` seconds.
    """

    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    backoff_cap: float = 4.0
    chunk_size: int = 1 << 16

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``MMCONV_DOWNLOAD_TIMEOUT/RETRIES/BACKOFF``."""
        env = os.environ if env is None else env
        settings = cls()
        for var, attr, kind in ((ENV_TIMEOUT, "timeout", float), (ENV_RETRIES, "retries", int),
                                (ENV_BACKOFF, "backoff", float)):
            text = env.get(var)
            if text is None or not text.strip():
                continue
            try:
                value = kind(text)
            except ValueError:
                raise UsageError(f"{var}={text!r} is not a number") from None
            if value < 0 or (attr == "timeout" and value == 0):
                raise UsageError(f"{var}={text!r} must be positive")
            settings = replace(settings, **{attr: value})
        return settings

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return min(self.backoff * (2 ** (retry - 1)), self.backoff_cap)


@dataclass(frozen=True)
class Target:
    """What to fetch and how to know it is right."""

    url: str
    file: str
    format: str
    label: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None

    @classmethod
    def from_entry(cls, entry: ModelEntry, url: str | None = None) -> Target:
        """A target for a catalog entry, optionally fetched from another ``url``."""
        return cls(url=url or entry.url, file=entry.file, format=entry.format,
                   label=f"{entry.framework} {entry.name}", size=entry.size, sha256=entry.sha256,
                   md5=entry.md5, sha256_prefix=entry.sha256_prefix)

    @classmethod
    def from_url(cls, url: str, fmt: str) -> Target:
        """A target for ``--url``: named after the URL's file name, checked by format only."""
        name = url_file_name(url)
        if not name or name in (".", ".."):
            raise UsageError(f"--url {url!r} does not end in a file name")
        return cls(url=url, file=name, format=fmt, label=name)


@dataclass(frozen=True)
class Result:
    """A verified file on disk."""

    path: Path
    size: int
    sha256: str
    verified: str
    downloaded: bool


def mirror_url(entry_url: str, file: str, env: Mapping[str, str] | None = None) -> str:
    """``<MMCONV_MIRROR>/<file>`` when a mirror is configured, else ``entry_url``."""
    env = os.environ if env is None else env
    base = (env.get(ENV_MIRROR) or "").strip()
    if not base:
        return entry_url
    return f"{base.rstrip('/')}/{quote(file)}"


class _Retryable(Exception):
    """A failure worth another attempt (network trouble, 5xx, short body)."""


class _Digests:
    """sha256 + md5 over exactly the bytes that are in the ``.part`` file."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.length = 0

    def reset(self) -> None:
        """Forget everything: the ``.part`` file is being rewritten from byte 0."""
        self.__init__()

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        self.length += len(data)

    @classmethod
    def of_file(cls, path: Path, chunk_size: int = 1 << 20) -> _Digests:
        digests = cls()
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                digests.update(chunk)
        return digests


def _log_notice(message: str) -> None:
    """Retries, restarts and re-downloads are notices on the ``mmconv`` logger (the CLI
    prints them as ``mmdownload: ...``; a library user decides what to see)."""
    logging.getLogger("mmconv.download").warning(message)


class Downloader:
    """Fetch :class:`Target` s into a folder with resume, retries and verification."""

    def __init__(self, settings: Settings | None = None, *,
                 session: requests.Session | None = None,
                 log: Callable[[str], None] = _log_notice,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings or Settings.from_env()
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"mmconv-mmdownload/{__version__}")
        self.log = log
        self.sleep = sleep

    # -- public -----------------------------------------------------------------------------

    def fetch(self, target: Target, directory: str | os.PathLike[str]) -> Result:
        """Make ``directory/target.file`` a verified copy of ``target`` and return it."""
        folder = Path(directory)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(f"cannot create output folder {folder}: {exc.strerror}") from exc
        dest = folder / target.file
        part = folder / (target.file + PART_SUFFIX)

        if dest.is_file():
            present = self._verify_present(target, dest)
            if present is not None:
                return present

        digests = self._transfer(target, part)
        try:
            verified = self._verify(target, part, digests)
        except ModelFormatError as exc:
            part.unlink(missing_ok=True)
            prefix = "" if target.label == target.file else f"{target.label}: "
            raise DownloadError(f"{prefix}{exc}; the download was removed") from None
        os.replace(part, dest)
        return Result(dest, digests.length, digests.sha256.hexdigest(), verified, True)

    # -- verification -----------------------------------------------------------------------

    def _verify_present(self, target: Target, dest: Path) -> Result | None:
        """A present file that verifies is kept; one that does not is downloaded again."""
        size = dest.stat().st_size
        if target.size is not None and size != target.size:
            self.log(f"{dest} has {size} bytes, the catalog says {target.size}: downloading again")
            return None
        digests = _Digests.of_file(dest)
        try:
            verified = self._verify(target, dest, digests)
        except ModelFormatError as exc:
            self.log(f"{dest} is present but fails verification ({exc}): downloading again")
            return None
        return Result(dest, digests.length, digests.sha256.hexdigest(), verified, False)

    def _verify(self, target: Target, path: Path, digests: _Digests) -> str:
        """Why ``path`` is the right file, or ModelFormatError saying why not."""
        def mismatch(what: str, expected: str, got: str) -> ModelFormatError:
            looks = describe_head(read_head(path))
            return ModelFormatError(
                f"{target.file}: {what} mismatch (expected {expected}, got {got}; "
                f"{digests.length} bytes that look like {looks})"
            )

        if target.size is not None and digests.length != target.size:
            raise mismatch("size", f"{target.size} bytes", f"{digests.length} bytes")
        sha256 = digests.sha256.hexdigest()
        if target.sha256 is not None:
            if sha256 != target.sha256:
                raise mismatch("sha256", target.sha256, sha256)
            return "sha256 matches the catalog"
        if target.md5 is not None:
            md5 = digests.md5.hexdigest()
            if md5 != target.md5:
                raise mismatch("md5", target.md5, md5)
            return "md5 matches the catalog"
        checked = []
        if target.sha256_prefix is not None:
            if not sha256.startswith(target.sha256_prefix):
                raise mismatch("sha256 prefix", target.sha256_prefix, sha256[:16])
            checked.append("sha256 prefix matches")
        checked.append(check_format(path, target.format, target.file))
        return "; ".join(checked)

    # -- transfer ---------------------------------------------------------------------------

    def _transfer(self, target: Target, part: Path) -> _Digests:
        """Bring ``part`` to the complete file, retrying; return digests of its bytes.

        ``retries`` bounds consecutive failures *without progress*: an attempt
        that added bytes before failing resets the count (a long download over
        a link that drops now and then still finishes), but never more than
        :data:`MAX_ATTEMPTS_FACTOR` times ``retries + 1`` attempts in all.
        ``retries=0`` means exactly one attempt.
        """
        digests: _Digests | None = None
        failures = attempts = restarts = 0
        max_attempts = (self.settings.retries + 1) * MAX_ATTEMPTS_FACTOR
        while True:
            offset = part.stat().st_size if part.is_file() else 0
            if digests is None or digests.length != offset:
                digests = _Digests.of_file(part) if offset else _Digests()
            attempts += 1
            try:
                if self._attempt(target, part, digests, offset):
                    return digests
                restarts += 1  # the server could not continue: start over at once
                if restarts > 2:
                    raise DownloadError(f"{target.label}: {target.url} keeps answering range "
                                        "requests inconsistently; giving up")
                part.unlink(missing_ok=True)
                digests = None
            except _Retryable as exc:
                progressed = digests.length > offset
                failures = 1 if progressed and self.settings.retries else failures + 1
                if failures > self.settings.retries or attempts >= max_attempts:
                    kept = f"; {part.name} kept for resuming" if part.is_file() else ""
                    raise DownloadError(
                        f"{target.label}: {exc} (gave up after {attempts} attempts{kept})"
                    ) from None
                delay = self.settings.delay(failures)
                self.log(f"{exc}; retrying in {delay:g} s")
                self.sleep(delay)

    def _attempt(self, target: Target, part: Path, digests: _Digests, offset: int) -> bool:
        """One request.  True: ``part`` is complete.  False: restart from zero.

        Raises :class:`_Retryable` for failures worth another try (the bytes
        received so far stay in ``part``) and DownloadError for final ones.
        """
        headers = {"Accept-Encoding": "identity"}  # byte counts and ranges refer to raw bytes
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = (self.settings.timeout, self.settings.timeout)
        try:
            response = self.session.get(target.url, headers=headers, stream=True, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(f"{target.url}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise DownloadError(f"{target.label}: bad URL {target.url}: {exc}") from None

        with contextlib.closing(response):
            status = response.status_code
            if status == 416 and offset:
                match = _UNSATISFIED_RANGE.search(response.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    return True  # the .part already holds the whole file
                self.log(f"{part.name}: server cannot continue at byte {offset}; restarting")
                return False
            if status >= 500:
                raise _Retryable(f"HTTP {status} {response.reason} from {target.url}")
            if status not in (200, 206):
                raise DownloadError(f"{target.label}: HTTP {status} {response.reason} "
                                    f"for {target.url}")

            if status == 206:
                match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
                if not offset or not match or int(match.group(1)) != offset:
                    self.log(f"{part.name}: server sent a range other than the one asked; "
                             "restarting")
                    return False
                total = None if match.group(3) == "*" else int(match.group(3))
                mode = "ab"
                self.log(f"resuming {part.name} at byte {offset}")
            else:  # 200: the whole file, from byte 0, whatever was asked
                if offset:
                    self.log(f"{target.url} does not resume; downloading {target.file} again")
                    digests.reset()
                    offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"

            if total is not None and target.size is not None and total != target.size:
                part.unlink(missing_ok=True)
                raise DownloadError(f"{target.label}: {target.url} serves {total} bytes but the "
                                    f"catalog says {target.size}; not downloading it")
            self._stream(response, part, mode, digests, offset, total, target)

        if total is not None and digests.length < total:
            raise _Retryable(f"connection closed at byte {digests.length} of {total}")
        return True

    def _stream(self, response: requests.Response, part: Path, mode: str, digests: _Digests,
                offset: int, total: int | None, target: Target) -> None:
        """Append the body to ``part``, updating digests and the progress bar per chunk."""
        progress = bar(total=total, initial=offset, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=target.file, leave=False)
        try:
            with open(part, mode) as out:
                for chunk in _chunks(response, self.settings.chunk_size):
                    if not chunk:
                        continue
                    out.write(chunk)
                    digests.update(chunk)
                    progress.update(len(chunk))
                    if total is not None and digests.length > total:
                        raise _Retryable(f"server sent more than the {total} bytes it announced")
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as exc:
            raise _Retryable(f"transfer of {target.file} interrupted at byte "
                             f"{digests.length}: {_reason(exc)}") from None
        except OSError as exc:  # after the network errors: requests' errors are OSErrors too
            raise DownloadError(f"{target.label}: cannot write {part}: "
                                f"{exc.strerror or exc}") from None
        finally:
            progress.close()


def _chunks(response: requests.Response, size: int) -> Iterator[bytes]:
    """The body in chunks of at most ``size``, each handed over as soon as it arrives.

    ``iter_content`` waits to fill a whole chunk, so when a connection is cut
    the partly filled chunk is lost and the resume starts earlier than it
    could; urllib3 2's ``read1`` returns what has arrived.
    """
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        yield from response.iter_content(chunk_size=size)
        return
    while chunk := read1(size):
        yield chunk


def _reason(exc: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 error, on one line."""
    text = str(exc)
    for pattern in ("Read timed out", "timed out", "Connection refused", "IncompleteRead",
                    "Connection broken", "Connection reset", "Name or service not known"):
        if pattern in text:
            return pattern.lower() if pattern != "IncompleteRead" else "incomplete read"
    return " ".join(text.split())[:160] or type(exc).__name__
