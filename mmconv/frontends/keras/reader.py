"""Reading Keras model files without Keras: the model config (JSON) and the weight arrays.

Two containers hold the same two things:

- **Keras 3 ``.keras``**: a zip of ``config.json`` (the model config),
  ``metadata.json`` and ``model.weights.h5``.  In the weights file every layer's
  variables sit at ``<path>/vars/<i>`` in the layer's variable order, where the
  path follows the model's layer lists (``layers/<snake_case class name>[_k]``,
  nested models adding their own ``layers/...``); Keras 3.4+ also tags each
  ``vars`` group with the layer's name, which is used first.
- **legacy HDF5 ``.h5``** (tf.keras / Keras 2, and Keras 3's ``model.save("x.h5")``):
  the config JSON in the root attribute ``model_config``, weights under
  ``model_weights/<top-level layer name>``, listed in order by its ``weight_names``
  attribute (``outer/inner/kernel:0``-style paths).

The weights file is opened with h5py on a window of the zip (Keras stores members
uncompressed), so nothing is copied before a converter reads an array; arrays are
read one at a time as the layers are converted.  Both readers treat the file as
hostile: sizes are checked before anything is read, and every h5py/zip/JSON
failure becomes one :class:`~mmconv.errors.ModelFormatError` naming the file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mmconv.errors import ModelFormatError, UsageError

#: A config.json larger than this is not a model config (ResNet152's is ~0.5 MB).
MAX_CONFIG_BYTES = 64 << 20
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def import_h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise UsageError('reading Keras files needs h5py: pip install "mmconv[keras]"') from None
    return h5py


class _Window(io.RawIOBase):
    """A read-only file object over ``[start, start + size)`` of an open file: h5py
    reads the weights member of a ``.keras`` zip in place, without extracting it."""

    def __init__(self, f: io.BufferedReader, start: int, size: int) -> None:
        super().__init__()
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        got = self._f.readinto(memoryview(buffer)[:n])
        self._pos += got or 0
        return got or 0


@dataclass
class WeightStore:
    """Looks up a layer's variables (h5py datasets, read lazily) in either container."""

    path: str
    h5: Any
    kind: str  # "keras" or "h5"
    #: .keras: vars-group name attribute -> group path, per container path
    _named: dict[str, dict[str, str]] = field(default_factory=dict)

    def variables(self, where: tuple[str, ...], layer_name: str, depth: int = 1) -> list[Any]:
        """The variables of the layer at ``where`` (its weights-file path, see
        :mod:`mmconv.frontends.keras.model`) in the layer's own variable order.

        ``depth``: in an ``.h5``, how many path parts stand between the layer's name and a
        variable's (1: ``dense/kernel``; an RNN's cell adds one: ``lstm/lstm_cell/kernel``;
        a Bidirectional's wrapped layers one more)."""
        if self.kind == "keras":
            return self._keras_vars(where)
        return self._h5_vars(where, layer_name, depth)

    def _keras_vars(self, where: tuple[str, ...]) -> list[Any]:
        group = self.h5.get("/".join((*where, "vars")))
        if group is None:
            return []
        keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
        return [group[k] for k in keys]

    def _h5_vars(self, where: tuple[str, ...], layer_name: str, depth: int = 1) -> list[Any]:
        # where = (top-level layer name, ..., this layer's name)
        root = self.h5.get("model_weights", self.h5)
        top = root.get(where[0])
        if top is None:
            return []
        names = [n.decode("utf8") if isinstance(n, bytes) else str(n)
                 for n in top.attrs.get("weight_names", [])]
        picked = []
        for name in names:
            parts = name.split("/")
            if (len(parts) > depth and parts[-1 - depth] == layer_name) or \
                    (len(where) == 1 and len(parts) == 1):
                picked.append(name)
        if len(where) > 1 and not picked:
            return []
        return [top[n] for n in picked]


@dataclass
class KerasFile:
    path: str
    kind: str  # "keras" (Keras 3 zip) or "h5" (legacy HDF5)
    config: dict
    weights: WeightStore
    keras_version: str = ""


def _load_json(raw: bytes | str, path: str, what: str) -> dict:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: {what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: {what} is not a JSON object")
    return data


def probe(path: str) -> str:
    """``"keras"`` or ``"h5"`` from the file's first bytes (a folder is a SavedModel)."""
    if os.path.isdir(path):
        raise UsageError(f"{path}: a folder; for a TensorFlow SavedModel use -sf tensorflow")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read the model file ({exc.strerror})") from None
    if head.startswith(ZIP_MAGIC):
        return "keras"
    if head == HDF5_MAGIC:
        return "h5"
    raise ModelFormatError(f"{path}: not a Keras model (neither a .keras zip nor an HDF5 .h5 file)")


@contextmanager
def open_keras_file(path: str) -> Iterator[KerasFile]:
    """The config and weight store of a ``.keras`` or ``.h5`` file, open for the block."""
    h5py = import_h5py()
    kind = probe(path)
    with open(path, "rb") as raw:
        if kind == "keras":
            with _open_zip(path, raw, h5py) as kf:
                yield kf
        else:
            try:
                h5 = h5py.File(raw, "r")
            except (OSError, ValueError) as exc:
                raise ModelFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
            with h5:
                attr = h5.attrs.get("model_config")
                if attr is None:
                    raise ModelFormatError(
                        f"{path}: an HDF5 file without a model config (a weights-only file?); "
                        "save the whole model with model.save")
                if isinstance(attr, bytes):
                    attr = attr.decode("utf8", "replace")
                if not isinstance(attr, str) or len(attr) > MAX_CONFIG_BYTES:
                    raise ModelFormatError(f"{path}: the model_config attribute is not a string")
                config = _load_json(attr, path, "the model_config attribute")
                version = h5.attrs.get("keras_version", b"")
                version = version.decode() if isinstance(version, bytes) else str(version)
                yield KerasFile(path, "h5", config, WeightStore(path, h5, "h5"), version)


@contextmanager
def _open_zip(path: str, raw: io.BufferedReader, h5py: Any) -> Iterator[KerasFile]:
    try:
        zf = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: not a readable .keras zip ({exc})") from None
    with zf:
        members = {info.filename: info for info in zf.infolist()}
        for need in ("config.json", "model.weights.h5"):
            if need not in members:
                raise ModelFormatError(f"{path}: a .keras file without {need}")
        info = members["config.json"]
        if info.file_size > MAX_CONFIG_BYTES:
            raise ModelFormatError(f"{path}: config.json is {info.file_size} bytes, too large")
        try:
            config = _load_json(zf.read(info), path, "config.json")
            meta_info = members.get("metadata.json")
            meta = (_load_json(zf.read(meta_info), path, "metadata.json")
                    if meta_info is not None and meta_info.file_size < MAX_CONFIG_BYTES else {})
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ModelFormatError(f"{path}: a damaged .keras zip ({exc})") from None
        winfo = members["model.weights.h5"]
        total = os.fstat(raw.fileno()).st_size
        if winfo.compress_type == zipfile.ZIP_STORED:
            raw.seek(winfo.header_offset)
            local = raw.read(30)
            if len(local) < 30 or local[:4] != ZIP_MAGIC:
                raise ModelFormatError(f"{path}: a damaged .keras zip (bad local header)")
            start = (winfo.header_offset + 30 + int.from_bytes(local[26:28], "little")
                     + int.from_bytes(local[28:30], "little"))
            if start + winfo.file_size > total:
                raise ModelFormatError(f"{path}: model.weights.h5 runs past the end of the file")
            fobj: Any = _Window(raw, start, winfo.file_size)
        else:
            # a re-zipped (deflated) file: h5py needs random access, so read it once
            if winfo.file_size > 64 * max(winfo.compress_size, 1) + (1 << 20):
                raise ModelFormatError(f"{path}: model.weights.h5 claims an implausible size")
            try:
                fobj = io.BytesIO(zf.read(winfo))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise ModelFormatError(f"{path}: a damaged .keras zip ({exc})") from None
        try:
            h5 = h5py.File(fobj, "r")
        except (OSError, ValueError) as exc:
            raise ModelFormatError(
                f"{path}: model.weights.h5 is not a readable HDF5 file ({exc})") from None
        with h5:
            version = str(meta.get("keras_version", ""))
            yield KerasFile(path, "keras", config, WeightStore(path, h5, "keras"), version)


#: how long the HDF5 structure check may take (a large model's takes well under a second)
PREFLIGHT_SECONDS = 20


def touch_structure(path: str) -> None:
    """Open the file and read every attribute and the metadata of every object, without
    reading weight data.  Run in a child process by :func:`preflight`."""
    with open_keras_file(path) as kf:
        def visit(_name: str, obj: Any) -> None:
            for key in obj.attrs:
                obj.attrs[key]
            getattr(obj, "shape", None)

        kf.weights.h5.visititems(visit)
        for key in kf.weights.h5.attrs:
            kf.weights.h5.attrs[key]


def preflight(path: str) -> None:
    """Refuse a file whose HDF5 structure makes the HDF5 library loop forever.

    A damaged variable-length string (a layer name, the config attribute) can send
    libhdf5 into an endless loop or a crash inside C code, where no Python timeout
    or exception handler reaches; so the structure is first walked in a child
    process with a time limit.  Other
    errors are left to the real read, which reports them properly.
    """
    import subprocess
    import sys

    code = ("import sys\nfrom mmconv.frontends.keras.reader import touch_structure\n"
            "try:\n    touch_structure(sys.argv[1])\nexcept Exception:\n    pass\n")
    try:
        child = subprocess.run([sys.executable, "-c", code, path], timeout=PREFLIGHT_SECONDS,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(
                           p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p)})
    except subprocess.TimeoutExpired:
        raise ModelFormatError(
            f"{path}: a damaged HDF5 structure (reading it does not terminate)") from None
    if child.returncode < 0:
        raise ModelFormatError(
            f"{path}: a damaged HDF5 structure (the HDF5 library crashes reading it)")


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
