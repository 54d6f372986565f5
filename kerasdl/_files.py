"""Writing files so that they appear complete or not at all, and locking a
folder so that one process at a time writes into it.

Temporary files are named ``.NAME.HOST-PID-RANDOM.tmp`` beside their
target, so that the temporaries of a killed writer can be told from those
of a live one and removed by the next writer (``remove_stale_temps``).
"""

import contextlib
import datetime
import errno
import os
import secrets
import socket
import time

_LEGACY_AGE_S = 3600  # temporaries of older versions carry no owner
_ATTEMPTS = 50  # to take a lock that its holders keep releasing


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it on success.

    The temporary file is synced to disk before the rename and has the
    permissions of the file it replaces (or those the umask gives a new
    file). On any error the temporary file is removed and ``path`` is
    untouched. Temporaries left by a killed writer are removed.

    Example:

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(target).read()
    'done'
    """
    path = os.fspath(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        sync_folder(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def temp_beside(path):
    """Creates an empty temporary file beside ``path``; returns its name.

    Stale temporaries of ``path`` (their writer is dead) are removed
    first. The new file gets the mode ``path`` has, or the default one.
    """
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temps(path)
    mode = _mode_for(path)
    while True:
        tmp = os.path.join(folder, f".{name}.{_owner()}-"
                                   f"{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return tmp


def remove_stale_temps(path):
    """Removes temporaries of ``path`` whose writing process is gone.

    A temporary belongs to a dead writer when its host is this host and
    its process id is not running. Temporaries in the older unowned forms
    (``.NAME.RANDOM.tmp``, ``.tmp-RANDOMNAME``) are removed once an hour
    old.

    Returns:
        The list of removed paths.
    """
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    prefix, removed = f".{name}.", []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        full = os.path.join(folder, entry)
        if entry.startswith(prefix) and entry.endswith(".tmp"):
            stale = _is_stale(entry[len(prefix):-len(".tmp")], full)
        elif entry.startswith(".tmp-") and entry.endswith(name) and \
                len(entry) == len(".tmp-") + 8 + len(name):
            stale = _old_enough(full)  # an older atomic_path's temporary
        else:
            continue
        if stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(full)
                removed.append(full)
    return removed


def _is_stale(tag, full):
    parts = tag.rsplit("-", 2)
    if len(parts) == 3 and parts[1].isdigit():
        host, pid = parts[0], int(parts[1])
        return host == socket.gethostname() and not pid_alive(pid)
    if "-" in tag or "." in tag:
        return False  # not a temporary name this module makes
    return _old_enough(full)


def _old_enough(full):
    try:
        return time.time() - os.stat(full).st_mtime > _LEGACY_AGE_S
    except OSError:
        return False


def pid_alive(pid):
    """Whether process ``pid`` runs on this host (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def sync_folder(path):
    """Makes a rename inside the folder of ``path`` durable (best effort)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _owner():
    return f"{socket.gethostname()}-{os.getpid()}"


def _mode_for(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class FolderBusyError(ValueError):
    """Another process holds the lock of the folder asked for."""


class FolderLock:
    """An exclusive lock on a folder: one writing process at a time.

    The lock is ``fcntl.flock`` on the file ``.lock`` in the folder, which
    records the holder's process id, host and start time. The kernel
    releases it when the holder ends in any way (``kill -9`` included), so
    a lock file left by a dead process never blocks anyone; the file is
    removed on release.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with FolderLock(folder, "precompute"):
    ...     try:
    ...         FolderLock(folder, "precompute").acquire()
    ...     except FolderBusyError:
    ...         print("busy")
    busy

    Args:
        folder: str. An existing folder.
        task: str. What the holder does, used in messages.

    Raises:
        FolderBusyError: (from ``acquire``) another process holds it.
    """

    NAME = ".lock"

    def __init__(self, folder, task):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, self.NAME)
        self.task = task
        self.fd = None

    def acquire(self):
        """Takes the lock, or raises ``FolderBusyError`` at once."""
        import fcntl

        for _ in range(_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN,
                                   errno.EACCES):
                    raise
                info = self._holder_record()
                if info is None:
                    continue  # released meanwhile: try again
                raise FolderBusyError(self._busy_message(info)) from None
            if self._same_file(fd):
                self.fd = fd
                break
            os.close(fd)  # released and removed between open and flock
        else:
            raise FolderBusyError(self._busy_message({}))
        since = datetime.datetime.now().isoformat(timespec="seconds")
        record = (f"pid {os.getpid()}\nhost {socket.gethostname()}\n"
                  f"since {since}\ntask {self.task}\n").encode()
        os.pwrite(self.fd, record, 0)  # never empty, then cut to length
        os.ftruncate(self.fd, len(record))
        return self

    def release(self):
        """Removes the lock file and releases the lock."""
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def holder(self):
        """The holder's record as a dict (empty if not written yet)."""
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except OSError:
            return {}
        record = {}
        for line in lines:
            key, _, value = line.partition(" ")
            record.setdefault(key, value)
        return record

    def _holder_record(self):
        """The record of the process holding the lock, once it has written
        it (the lock is taken a moment before); None if the lock was
        released meanwhile."""
        info = {}
        for _ in range(200):
            if not os.path.exists(self.path):
                return None
            info = self.holder()
            pid, host = info.get("pid", ""), info.get("host")
            if "task" in info and pid.isdigit() and (
                    host != socket.gethostname() or pid_alive(int(pid))):
                return info
            time.sleep(0.01)
        return info

    def _same_file(self, fd):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def _busy_message(self, info):
        pid, host = info.get("pid", "?"), info.get("host", "?")
        who = f"process {pid} on host {host}"
        if "since" in info:
            who += f", since {info['since']}"
        if host == socket.gethostname() and pid.isdigit() \
                and not pid_alive(int(pid)):
            who += "; that process has ended, a process it started holds "
            who += "the lock now"
        task = info.get("task", self.task)
        return (f"{self.folder!r} is in use: another {task} ({who}) is "
                f"writing into it and holds its lock {self.path!r}. Wait "
                f"until it finishes and run again (its finished result is "
                f"then reused), or choose another folder. If no such "
                f"process runs any more (a lock on a network file system "
                f"can outlive it), delete {self.path!r}.")
