"""Is this file really a model of the claimed format?  Checks that read, never execute.

Used when the catalog has no full checksum for a file (CNTK's site published
none) and for ``--url`` downloads: a mirror or a captive portal that answers
200 with an HTML page must not end up saved as ``ResNet50_ImageNet_CNTK.model``.

Each check confirms the container, not the weights: CNTK through this
project's own reader (``mmconv.frontends.cntk.probe`` for the format, then a
full ``read_model`` parse, which catches truncation), ONNX through
``onnx.load`` + ``onnx.checker``, Keras and PyTorch by their file signatures
and archive layout.  Nothing is unpickled.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from mmconv.errors import ModelFormatError, RuntimeUnavailableError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
#: ``torch.save``'s legacy (pre-1.6) format opens with pickle protocol 2 and the
#: magic number 0x1950a86a20f9469cfc6c as a 10-byte LONG1.
TORCH_LEGACY_SIGNATURE = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
CNTK_V1_SIGNATURE = "BCN\0".encode("utf-16-le")


def describe_head(head: bytes) -> str:
    """Say in a few words what a file starting with ``head`` looks like, for error messages."""
    if not head:
        return "an empty file"
    stripped = head.lstrip()
    lower = stripped[:64].lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if lower.startswith(b"<?xml") or lower.startswith(b"<"):
        return "XML/HTML text"
    if stripped[:1] in (b"{", b"["):
        return "JSON text"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(ZIP_SIGNATURE):
        return "a zip archive"
    if head.startswith(HDF5_SIGNATURE):
        return "an HDF5 file"
    if head.startswith(CNTK_V1_SIGNATURE):
        return "a CNTK v1 model header"
    if head.startswith(TORCH_LEGACY_SIGNATURE):
        return "a legacy torch.save file"
    sample = head[:48]
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in sample)
    if printable == len(sample):
        text = sample.decode("ascii", "replace").replace("\r", " ").replace("\n", " ").strip()
        return f"text starting {text!r}"
    return f"binary data starting {head[:8].hex(' ')}"


def read_head(path: Path, n: int = 512) -> bytes:
    """The first ``n`` bytes of ``path`` (fewer if it is shorter)."""
    with open(path, "rb") as f:
        return f.read(n)


def check_format(path: str | Path, fmt: str, name: str | None = None) -> str:
    """Return a short description (``"CNTK v2 model"``) if ``path`` is a ``fmt`` model.

    ``name`` is what messages call the file (the downloader checks
    ``X.part`` but the user asked for ``X``).  Raises
    :class:`ModelFormatError` when it is not a ``fmt`` model, and
    :class:`RuntimeUnavailableError` when the check itself cannot run here.
    """
    path = Path(path)
    checks = {"cntk": _check_cntk, "onnx": _check_onnx, "keras": _check_keras,
              "pytorch": _check_pytorch}
    if fmt not in checks:
        raise ValueError(f"no format check for {fmt!r}")
    try:
        return checks[fmt](path)
    except ModelFormatError as exc:
        if name is None or name == path.name:
            raise
        text = str(exc).replace(str(path), name).replace(path.name, name)
        raise ModelFormatError(text) from exc


def _not_a(path: Path, what: str, detail: str = "") -> ModelFormatError:
    looks = describe_head(read_head(path))
    extra = f" ({detail})" if detail else ""
    return ModelFormatError(f"{path.name} is not {what}: it looks like {looks}{extra}")


def _one_line(text: object, path: Path | None = None) -> str:
    """An error text on one short line, with the full path shortened to the file name."""
    text = str(text)
    if path is not None:
        text = text.replace(str(path), path.name)
    return " ".join(text.split())[:200]


def _check_cntk(path: Path) -> str:
    try:
        from mmconv.frontends.cntk import probe  # lazy: the reader is heavy and optional here
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"cannot check that {path.name} is a CNTK model: this mmconv has no CNTK reader "
            f"(mmconv.frontends.cntk.probe: {exc})"
        ) from exc
    try:
        version = probe(str(path))
    except ModelFormatError as exc:
        raise _not_a(path, "a CNTK model", _one_line(exc, path)) from exc
    # probe looks at the first bytes only; a full parse also catches truncated and
    # corrupt files (e.g. a cut transfer from a server that sent no Content-Length).
    try:
        from mmconv.frontends.cntk import read_model

        read_model(str(path))
    except ModelFormatError as exc:
        raise _not_a(path, "a readable CNTK model", _one_line(exc, path)) from exc
    except Exception as exc:
        # UnsupportedError or a reader bug: the file is a CNTK model by its header and
        # nothing says it is damaged; a converter gap must not block the download.
        reason = f"{type(exc).__name__}: {_one_line(exc, path)}"
        return f"CNTK {version} model (not fully parsed: {reason})"
    return f"CNTK {version} model, parsed completely"


def _check_onnx(path: Path) -> str:
    try:
        import onnx
    except ImportError as exc:  # onnx is a core dependency; say so if it is missing anyway
        raise RuntimeUnavailableError(f"cannot check {path.name}: the onnx package is missing "
                                      "(pip install onnx)") from exc
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ... for bad files
        raise _not_a(path, "an ONNX model", _one_line(exc, path)) from exc
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    return f"ONNX model (IR {model.ir_version}, opset {opsets})"


def _hdf5_superblock_at(path: Path) -> int | None:
    """Offset of the HDF5 signature: at 0 or, after a user block, at 512, 1024, 2048 ..."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return offset
            offset = 512 if offset == 0 else offset * 2
    return None


def _check_keras(path: Path) -> str:
    if _hdf5_superblock_at(path) is not None:
        return "HDF5 file (Keras .h5)"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile as exc:
            raise _not_a(path, "a Keras model", _one_line(exc)) from exc
        if "config.json" in names:
            return "Keras v3 archive (.keras)"
        raise _not_a(path, "a Keras model", "a zip archive without config.json")
    raise _not_a(path, "a Keras model (HDF5 .h5 or .keras archive)")


def _check_pytorch(path: Path) -> str:
    head = read_head(path, 32)
    if head.startswith(TORCH_LEGACY_SIGNATURE):
        return "PyTorch file (legacy torch.save format)"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise _not_a(path, "a PyTorch file", _one_line(exc)) from exc
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "PyTorch file (zip torch.save format)"
        raise _not_a(path, "a PyTorch file", "a zip archive without data.pkl")
    try:
        if tarfile.is_tarfile(path):
            with tarfile.open(path) as tf:  # listed, never extracted
                names = tf.getnames()
            if "pickle" in names:
                return "PyTorch file (tar torch.save format)"
    except (tarfile.TarError, OSError) as exc:
        raise _not_a(path, "a PyTorch file", _one_line(exc)) from exc
    raise _not_a(path, "a PyTorch file (torch.save zip or legacy format)")
