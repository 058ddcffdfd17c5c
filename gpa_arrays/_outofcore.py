"""The chunked out-of-core driver and the atomic writer.

One path from blocks of aligned poses to a file on disk, shared by
``gpa-arrays augment`` (:mod:`gpa_arrays._augment_files`) and
:func:`gpa_arrays.dask.gpa_npy`:

* blocks come, in pose order, from a loop over chunks in this process
  (:func:`local_blocks`) or from a chunked Dask array computed a bounded window
  at a time (:func:`dask_blocks`), so that memory holds a few blocks whatever
  the number of poses;
* :func:`write` streams them into one ``.npy`` file or the members of an
  ``.npz`` archive (:class:`ArrayWriter`), inside one :class:`AtomicOutput`.

Atomic output
-------------
The file is written as a temporary ``.<name>.<host>.<pid>.<random>.part`` in
the output's directory, flushed and synced, and renamed over the output with
:func:`os.replace` only when complete: the output path is either absent or
untouched (when it existed) until the new file is whole. On any exception,
including ``KeyboardInterrupt`` (SIGINT) and :class:`Terminated` (SIGTERM and
SIGHUP, which the writer turns into an exception while it runs, in the main
thread, when their handlers are the default ones), the temporary is removed.
SIGKILL cannot be caught: its temporary stays, and the next write to the same
output from the same host removes the temporaries whose process no longer
exists (:func:`remove_leftovers`); their names say which host and process made
them.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import tempfile
import threading
import zipfile
from typing import NamedTuple

import numpy as np

__all__ = [
    "ArrayWriter",
    "AtomicOutput",
    "Member",
    "OutputError",
    "Terminated",
    "WorkerError",
    "check_output",
    "dask_blocks",
    "local_blocks",
    "remove_leftovers",
    "write",
    "write_into",
]

_CATCHABLE = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class OutputError(ValueError):
    """The output cannot be written there; the message is one line."""


class WorkerError(RuntimeError):
    """A Dask worker died while computing a block."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while an :class:`AtomicOutput` was open.

    A :class:`BaseException`, like :class:`KeyboardInterrupt`, so that
    ``except Exception`` does not swallow it.
    """

    def __init__(self, signum):
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")

    @property
    def exit_status(self):
        """The shell's status of a process ended by this signal (128 + number)."""
        return 128 + self.signum


# --- signals -----------------------------------------------------------------------


class _SignalGuard:
    """SIGTERM/SIGHUP raise :class:`Terminated` while active; held while closing.

    Only handlers that would otherwise end the process without cleanup are
    replaced (the default ones; Python's own SIGINT handler, to hold SIGINT while
    closing), and only in the main thread, where Python runs signal handlers.
    """

    def __init__(self):
        self.closing = False
        self.pending = None
        self._saved = {}

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _CATCHABLE:
            if signal.getsignal(signum) is signal.SIG_DFL:
                self._saved[signum] = signal.signal(signum, self._handle)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._saved[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.closing:  # renaming or removing the temporary: finish that first
            self.pending = self.pending or signum
            return
        raise _interruption(signum)

    def restore(self):
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()


def _interruption(signum):
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


# --- temporaries -------------------------------------------------------------------


def _host():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _temporary_pattern(name):
    return re.compile(
        rf"^\.{re.escape(name)}\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\."
        r"[A-Za-z0-9_]+\.part$"
    )


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(path):
    """Remove temporaries of `path` left by dead processes of this host.

    Parameters
    ----------
    path : str
        An output path (absolute).

    Returns
    -------
    list of str
        The removed files.
    """
    directory, name = os.path.split(path)
    pattern, host = _temporary_pattern(name), _host()
    removed = []
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = pattern.match(entry.name)
            if match is None or match["host"] != host or _alive(int(match["pid"])):
                continue
            with contextlib.suppress(FileNotFoundError):  # another run was faster
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


def check_output(path, name, suffixes=None):
    """Check what can be checked about an output path before any work.

    Parameters
    ----------
    path : str or os.PathLike
    name : str
        How the caller named the argument (``"-o"``, ``"out_path"``).
    suffixes : tuple of str, optional
        Accepted lower-case suffixes; any name when None.

    Returns
    -------
    str
        The absolute path.

    Raises
    ------
    OutputError
        A wrong suffix, a directory, a missing or unwritable parent directory.
    """
    path = os.path.abspath(os.fspath(path))
    shown = f"{name} {path}"
    if os.path.isdir(path):
        raise OutputError(f"{shown}: is a directory; expected a file name")
    if suffixes is not None and os.path.splitext(path)[1].lower() not in suffixes:
        raise OutputError(f"{shown}: expected a {' or '.join(suffixes)} file name")
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise OutputError(f"{shown}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: cannot create files in {directory}")
    return path


class AtomicOutput:
    """A binary file that becomes `path` only through :meth:`commit`.

    Use as a context manager; leaving the block without :meth:`commit` (an
    exception, a signal) removes the temporary and leaves `path` as it was.
    See the module documentation for signals and leftovers.

    Parameters
    ----------
    path : str
        The output file (absolute).
    name : str
        How the caller named the argument, for messages.

    Attributes
    ----------
    file : file object
        Where to write, open for binary writing.
    temporary : str
        The temporary's path (never shown in messages).
    removed : list of str
        Leftover temporaries of `path` removed on entry.
    """

    def __init__(self, path, name):
        self.path = os.path.abspath(path)
        self.name = name
        self.file = self.temporary = None
        self.removed = []
        self._guard = _SignalGuard()
        self._committed = False

    def __enter__(self):
        self._guard.install()
        directory, name = os.path.split(self.path)
        try:
            self.removed = remove_leftovers(self.path)
            fd, self.temporary = tempfile.mkstemp(
                dir=directory,
                prefix=f".{name}.{_host()}.{os.getpid()}.",
                suffix=".part",
            )
        except BaseException as exc:
            self._guard.restore()
            if isinstance(exc, OSError):
                raise OutputError(
                    f"{self.name} {self.path}: cannot write there ({exc.strerror})"
                ) from None
            raise
        self.file = os.fdopen(fd, "wb")
        return self

    def commit(self):
        """Sync the file and rename it over `path`."""
        self.file.flush()
        os.fsync(self.file.fileno())  # a signal up to here removes the temporary
        self._guard.closing = True
        self.file.close()
        # mkstemp makes the file private (0600); give it the usual mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temporary, 0o666 & ~umask)
        try:
            os.replace(self.temporary, self.path)
        except OSError as exc:
            raise OutputError(
                f"{self.name} {self.path}: cannot replace it ({exc.strerror})"
            ) from None
        self._committed = True
        _sync_directory(os.path.dirname(self.path))

    def __exit__(self, kind, value, traceback):
        self._guard.closing = True
        try:
            if not self._committed:
                with contextlib.suppress(OSError):
                    self.file.close()
                with contextlib.suppress(OSError):
                    os.unlink(self.temporary)
        finally:
            self._guard.restore()
        pending = self._guard.pending
        if pending is not None and kind is None:
            raise _interruption(pending)
        return False


def _sync_directory(directory):
    """Make the rename durable (where the platform can open directories)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- array files -------------------------------------------------------------------


class ArrayWriter:
    """Writes ``.npy`` arrays into an open file or into ``.npz`` members, in blocks."""

    def __init__(self, handle, npz, compress):
        self._handle = handle
        self._zip = None
        if npz:
            method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            self._zip = zipfile.ZipFile(
                handle, "w", compression=method, allowZip64=True
            )

    @contextlib.contextmanager
    def array(self, name, shape, dtype):
        """Context yielding ``write(block)``; the blocks must fill `shape` in order."""
        dtype = np.dtype(dtype)
        expected = int(np.prod(shape)) * dtype.itemsize
        if self._zip is None:
            closing = contextlib.nullcontext(self._handle)
        else:
            closing = self._zip.open(f"{name}.npy", "w", force_zip64=True)
        with closing as stream:
            header = {
                "descr": np.lib.format.dtype_to_descr(dtype),
                "fortran_order": False,
                "shape": tuple(shape),
            }
            np.lib.format.write_array_header_1_0(stream, header)
            written = 0

            def write(block):
                nonlocal written
                block = np.ascontiguousarray(block, dtype=dtype)
                if block.size:  # memoryview cannot cast an empty array
                    stream.write(memoryview(block).cast("B"))
                written += block.nbytes

            yield write
            if written != expected:  # a bug, never the user's input
                raise RuntimeError(
                    f"{name}: wrote {written} bytes, expected {expected}"
                )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        # also on failure: an unclosed ZipFile would try to finish the archive
        # when garbage-collected, after the file is gone
        if self._zip is not None:
            self._zip.close()


class Member(NamedTuple):
    """One array of an output file, produced block by block in order."""

    name: str
    shape: tuple
    dtype: np.dtype
    blocks: object  # iterable of arrays that fill `shape` along axis 0


def write(path, members, *, name, compress=False, on_block=None):
    """The driver: stream `members` into `path`, atomically.

    Parameters
    ----------
    path : str
        Output file, from :func:`check_output`; ``.npz`` holds every member,
        any other name the first member alone as ``.npy``.
    members : list of Member
        The arrays, in the order they are written; the blocks of each are
        consumed (computed) only when it is its turn.
    name : str
        How the caller named the output argument, for messages.
    compress : bool
        Deflate the ``.npz`` members.
    on_block : callable, optional
        Called with the number of rows of each block of the first member
        once it is written (progress).

    Returns
    -------
    list of str
        Leftover temporaries of earlier, killed runs that were removed.

    Raises
    ------
    OutputError
        The temporary cannot be created, or writing failed (a full disk, a
        file size limit); the output is untouched and no temporary is left.
    """
    with AtomicOutput(path, name) as output:
        write_into(output, members, compress=compress, on_block=on_block)
        output.commit()
    return output.removed


def write_into(output, members, *, compress=False, on_block=None):
    """:func:`write` into an open :class:`AtomicOutput`, without committing it.

    For callers that open the output before the work, so that an output that
    cannot be created stops them before it.
    """
    npz = output.path.lower().endswith(".npz")
    try:
        with ArrayWriter(output.file, npz, compress) as writer:
            for k, member in enumerate(members if npz else members[:1]):
                with writer.array(member.name, member.shape, member.dtype) as put:
                    for block in member.blocks:
                        put(block)
                        if on_block is not None and k == 0:
                            on_block(len(block))
    except OSError as exc:
        if exc.filename is not None:  # not a write to our file
            raise
        raise OutputError(
            f"{output.name} {output.path}: cannot write it ({exc.strerror or exc})"
        ) from None


# --- where blocks come from --------------------------------------------------------


def local_blocks(run, n, chunk):
    """``run(offset, count)`` for each chunk of `n` rows, in order."""
    for offset in range(0, n, chunk):
        yield run(offset, min(chunk, n - offset))


def dask_blocks(lazy, client=None):
    """The blocks of `lazy` (chunked along axis 0 only), computed, in order.

    A bounded number are in flight so that memory holds a few blocks per
    worker thread whatever the number of blocks: a sliding window of futures on
    a ``distributed`` client, else windows of one :func:`dask.compute` each on
    the active scheduler.
    """
    import dask

    count = lazy.numblocks[0]
    if client is not None:
        yield from _client_blocks(lazy, client, count)
        return
    window = dask.config.get("num_workers", None) or os.cpu_count() or 1
    for first in range(0, count, window):
        last = min(count, first + window)
        yield from dask.compute(*(lazy.blocks[i] for i in range(first, last)))


def _client_blocks(lazy, client, count):
    # two per thread: the workers keep busy while this process writes
    window = 2 * max(1, sum(client.nthreads().values()))
    pending = collections.deque()
    try:
        for index in range(count):
            pending.append(client.compute(lazy.blocks[index]))
            if len(pending) >= window:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        for future in pending:
            future.cancel()


def _result(future):
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise WorkerError(
            f"a Dask worker died while aligning ({exc}); if it ran out of memory, "
            "try smaller blocks or fewer workers"
        ) from None
