"""Reading ``.npy`` and ``.npz`` inputs without trusting them.

The out-of-core driver (:mod:`gpa_arrays._outofcore`), and through it
``gpa-arrays augment`` and :func:`gpa_arrays.dask.gpa_npy`, read every input
file here. A file is judged by its header before any data is read: the dtype
must be one the caller accepts (never an object dtype, so nothing is ever
unpickled), the declared shape must fit the bytes the file or archive member
actually holds (a header that claims ``(10**12, 17, 3)`` is refused, not
allocated), and every read fault (truncation, a corrupted deflate stream, a bad
CRC, a member that is not ``.npy`` data) becomes one :class:`FileError` whose
one-line message names the file and the key.
"""

from __future__ import annotations

import os
import struct
import tokenize
import warnings
import zipfile
import zlib

import numpy as np

__all__ = ["FileError", "load", "load_npy"]

#: dtype kinds of real numbers (bool is kind "b", so it is excluded).
REAL = "fiu"
#: dtype kinds of indices.
INTEGER = "iu"

#: The largest uncompressed/compressed size ratio deflate can reach (RFC 1951:
#: a 258-byte match in at most 2 bits, rounded up); a member whose directory
#: entry claims more is lying about its size.
_DEFLATE_RATIO = 1100

#: What reading a malformed file can raise, besides our own checks; warnings are
#: turned into errors while reading so that none reaches the terminal.
_READ_FAULTS = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    LookupError,
    SyntaxError,  # the header is a Python literal
    tokenize.TokenError,
    OverflowError,
    MemoryError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    Warning,
)

_KIND_WORDS = {REAL: "a real floating or integer dtype", INTEGER: "an integer dtype"}


class FileError(ValueError):
    """An input file that cannot be used; the message is one line."""


def _one_line(text):
    return " ".join(str(text).split())


def load(path, key, what, name, kinds=REAL):
    """An array from a ``.npy`` file (memory-mapped) or an ``.npz`` member.

    Parameters
    ----------
    path : str
        The file; its suffix (``.npy`` or ``.npz``) says how to read it.
    key : str or None
        The member of an ``.npz`` file (ignored for ``.npy``).
    what : str
        How the user named the file (``"SOURCE"``, ``"--camera"``, ...), for
        messages.
    name : str
        What the array is (``"source_3d"``, ``"camera"``, ...), for messages.
    kinds : str
        Accepted dtype kinds (:data:`REAL` or :data:`INTEGER`).

    Returns
    -------
    ndarray
        A read-only :class:`numpy.memmap` for ``.npy``; an in-memory array read
        from the archive for ``.npz``.

    Raises
    ------
    FileError
        The file is missing, unreadable, malformed, of another dtype kind or
        declares more data than it holds; the message names `what`, `path`
        and `key`.
    """
    suffix = os.path.splitext(path)[1].lower()
    where = f"{what} {path}"
    if suffix not in (".npy", ".npz"):
        raise FileError(f"{where}: expected a .npy or .npz file")
    if not os.path.exists(path):
        raise FileError(f"{where}: no such file")
    if suffix == ".npy":
        return load_npy(path, what, name, kinds)
    where = f"{where}, key {key!r}"
    return _reading(where, _load_npz, path, key, what, where, name, kinds)


def load_npy(path, what, name, kinds=REAL):
    """A ``.npy`` file of any name, memory-mapped read-only (see :func:`load`)."""
    where = f"{what} {path}"
    return _reading(where, _load_npy, path, where, name, kinds)


def _reading(where, function, *args):
    """Call `function`, turning every read fault into a one-line FileError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return function(*args)
    except FileError:
        raise
    except _READ_FAULTS as exc:
        reason = _one_line(exc) or type(exc).__name__
        raise FileError(f"{where}: cannot read it ({reason})") from None


def _read_header(stream, where, name, kinds):
    """``(shape, order, dtype, count)`` from a ``.npy`` header, checked."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:  # 3.0 only adds UTF-8 field names, which no numeric array has
        raise FileError(f"{where}: unsupported .npy format version {version}")
    if dtype.hasobject or dtype.kind not in kinds:
        # refused before any data is read: an object array would be unpickled
        raise FileError(f"{where}: {name}: expected {_KIND_WORDS[kinds]}, got {dtype}")
    if any(size < 0 for size in shape):
        raise FileError(f"{where}: negative size in the declared shape {shape}")
    count = 1
    for size in shape:  # Python ints: a huge declared shape cannot overflow
        count *= size
    return shape, "F" if fortran else "C", dtype, count


def _load_npy(path, where, name, kinds):
    with open(path, "rb") as stream:
        shape, order, dtype, count = _read_header(stream, where, name, kinds)
        offset = stream.tell()
        size = os.fstat(stream.fileno()).st_size
    nbytes = count * dtype.itemsize
    if offset + nbytes > size:
        raise FileError(
            f"{where}: the header declares shape {shape} of {dtype} ({nbytes} "
            f"bytes of data), the file holds {max(size - offset, 0)}: truncated or "
            "not written by numpy.save"
        )
    if count == 0:  # nothing to map
        array = np.empty(shape, dtype=dtype, order=order)
        array.flags.writeable = False
        return array
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order=order)  # fmt: skip


def _member(archive, key, what, path):
    """The :class:`zipfile.ZipInfo` of `key` (``key.npy`` or ``key``)."""
    names = archive.namelist()
    for candidate in (f"{key}.npy", key):
        if candidate in names:
            return archive.getinfo(candidate)
    keys = [n[:-4] if n.endswith(".npy") else n for n in names]
    raise FileError(
        f"{what} {path}: no array {key!r} (keys: {', '.join(keys) or 'none'})"
    )


def _load_npz(path, key, what, where, name, kinds):
    with zipfile.ZipFile(path) as archive:
        info = _member(archive, key, what, path)
        if info.flag_bits & 0x1:
            raise FileError(f"{where}: the member is encrypted")
        with archive.open(info) as stream:
            shape, order, dtype, count = _read_header(stream, where, name, kinds)
            nbytes = count * dtype.itemsize
            _check_member_size(info, stream.tell() + nbytes, shape, dtype, where)
            try:
                array = np.empty(count, dtype=dtype)
            except MemoryError:
                raise FileError(
                    f"{where}: shape {shape} of {dtype} ({nbytes} bytes) does not "
                    "fit in memory; save it as a .npy file to have it memory mapped"
                ) from None
            _read_into(stream, memoryview(array.view(np.uint8)) if count else None)
            if stream.read(1):  # also makes zipfile check the CRC at the end
                raise FileError(f"{where}: data after the declared shape {shape}")
    return array.reshape(shape, order=order)


def _check_member_size(info, total, shape, dtype, where):
    """Refuse a member whose header and directory entry disagree on its size."""
    if total != info.file_size:
        raise FileError(
            f"{where}: the header declares shape {shape} of {dtype}, which does not "
            f"match the member's {info.file_size} bytes"
        )
    if info.compress_type == zipfile.ZIP_STORED:
        limit = info.compress_size
    else:
        limit = _DEFLATE_RATIO * info.compress_size + 1024
    if info.file_size > limit:
        raise FileError(
            f"{where}: the archive claims {info.file_size} bytes for a member of "
            f"{info.compress_size} compressed bytes"
        )


def _read_into(stream, view):
    """Fill `view` from `stream` (a member of a zip archive)."""
    if view is None:
        return
    filled = 0
    while filled < len(view):
        got = stream.readinto(view[filled:])
        if not got:
            raise EOFError(f"the data ends after {filled} of {len(view)} bytes")
        filled += got
