"""Decoding image files in worker processes, around the GIL.

Pillow releases the GIL while libjpeg decodes, but the rest of the work
per image (opening, EXIF, conversion, resize set-up, numpy) holds it, so
threads stop scaling at a few cores. A ``DecodePool`` starts
``processes`` plain Python processes (``python -m
kerasdl.data._decode_worker``: no fork of a process running a framework,
no re-import of the user's script) that decode straight into a shared
memory buffer; only file names and error lines travel through pipes.

The buffer holds ``arenas`` batches; each ``decode`` call takes one,
spreads its files over every process and copies the images out, so up to
``arenas`` batches decode at once from several threads and every process
always has work queued.
"""

import atexit
import concurrent.futures
import itertools
import json
import mmap
import os
import subprocess
import sys
import tempfile
import threading
import weakref

import numpy as np

from kerasdl.data._decode import ImageError

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Pools still open when the interpreter exits are closed while their
# reader threads can still run: once Python finalizes, a daemon thread
# blocked on a pipe holds that pipe's lock for good, and closing the pipe
# then aborts the process ("Fatal Python error", exit status 134).
_OPEN = weakref.WeakSet()


@atexit.register
def _close_open_pools():
    for pool in list(_OPEN):
        pool.close()


class DecodePool:
    """``processes`` decoding processes for images of one ``size``.

    Args:
        processes: int. Worker processes.
        size: tuple ``(height, width)``.
        interpolation: str. Pillow resampling filter name.
        max_rows: int. Most files per ``decode`` call.
        arenas: int. Calls that can run at once.
    """

    def __init__(self, processes, size, interpolation, max_rows, arenas=4):
        self.size, self.interpolation = tuple(size), interpolation
        self.max_rows = int(max_rows)
        self.image_bytes = size[0] * size[1] * 3
        self.arena_bytes = self.image_bytes * self.max_rows
        total = self.arena_bytes * arenas
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self._file = tempfile.TemporaryFile(dir=shm, prefix="kerasdl-")
        os.ftruncate(self._file.fileno(), total)
        self._buf = mmap.mmap(self._file.fileno(), total)
        self._view = np.frombuffer(self._buf, np.uint8)
        self._free = list(range(arenas))
        self._arena_ready = threading.Condition()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._pending = {}
        self._procs, self._send_locks, self._readers = [], [], []
        self.broken = None
        _OPEN.add(self)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                       if p])
        fd = self._file.fileno()
        try:
            for w in range(int(processes)):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "kerasdl.data._decode_worker",
                     str(fd), str(total)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    pass_fds=(fd,), env=env, text=True, bufsize=1)
                self._procs.append(proc)
                self._send_locks.append(threading.Lock())
            for w, proc in enumerate(self._procs):
                line = proc.stdout.readline()
                if line.strip() != "ready":
                    raise RuntimeError(
                        f"A decoding process did not start (it said "
                        f"{line.strip()!r}). Pass processes=0 to decode "
                        f"on threads.")
                reader = threading.Thread(target=self._read, args=(w,),
                                          name="kerasdl-decode-reader",
                                          daemon=True)
                reader.start()
                self._readers.append(reader)
        except BaseException:
            self.close()
            raise

    def _read(self, w):
        proc = self._procs[w]
        for line in proc.stdout:
            answer = json.loads(line)
            with self._lock:
                future = self._pending.pop(answer["id"], None)
            if future is not None:
                future.set_result(answer["errors"])
        with self._lock:
            self.broken = self.broken or (
                f"decoding process {proc.pid} ended (exit status "
                f"{proc.poll()})")
            mine = [k for k, f in self._pending.items() if f.worker == w]
            futures = [self._pending.pop(k) for k in mine]
        for f in futures:
            f.set_exception(RuntimeError(
                f"{self.broken} while decoding {f.files[:3]}... A file "
                f"may crash the decoder: find it with on_error='raise' "
                f"and processes=0."))

    def decode(self, paths):
        """Decodes ``paths``: a list of uint8 arrays or ``ImageError``
        (one per path, in order)."""
        out = []
        for start in range(0, len(paths), self.max_rows):
            out += self._decode(paths[start:start + self.max_rows])
        return out

    def _decode(self, paths):
        if self.broken:
            raise RuntimeError(f"The decoding pool is closed: "
                               f"{self.broken}.")
        with self._arena_ready:
            while not self._free:
                self._arena_ready.wait()
            arena = self._free.pop()
        try:
            return self._decode_in(arena, paths)
        finally:
            with self._arena_ready:
                self._free.append(arena)
                self._arena_ready.notify()

    def _decode_in(self, arena, paths):
        n, p = len(paths), len(self._procs)
        base = arena * self.arena_bytes
        per = -(-n // p)
        futures = []
        for w in range(p):
            rows = range(w * per, min(n, (w + 1) * per))
            if not len(rows):
                break
            job_id = next(self._ids)
            future = concurrent.futures.Future()
            future.worker, future.rows = w, rows
            future.files = [paths[r] for r in rows]
            with self._lock:
                if self.broken:
                    raise RuntimeError(f"The decoding pool is closed: "
                                       f"{self.broken}.")
                self._pending[job_id] = future
            job = {"id": job_id, "size": list(self.size),
                   "interp": self.interpolation,
                   "files": [[base + r * self.image_bytes, paths[r]]
                             for r in rows]}
            with self._send_locks[w]:
                self._procs[w].stdin.write(json.dumps(job) + "\n")
                self._procs[w].stdin.flush()
            futures.append(future)
        images = self._view[base:base + n * self.image_bytes].reshape(
            n, *self.size, 3)
        out = [None] * n
        failures = {}
        for future in futures:
            for i, kind, reason in future.result():
                r = future.rows[i]
                failures[r] = (ImageError(paths[r], reason) if kind ==
                               "image" else RuntimeError(
                                   f"Decoding {paths[r]!r} failed: "
                                   f"{reason}"))
        for failure in failures.values():
            if isinstance(failure, RuntimeError):
                raise failure
        batch = images.copy()  # one copy out of the shared buffer
        for r in range(n):
            out[r] = failures[r] if r in failures else batch[r]
        return out

    def close(self):
        """Stops the processes (they also stop when this process ends)."""
        self.broken = self.broken or "closed"
        for proc in self._procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for w, proc in enumerate(self._procs):
            reader = self._readers[w] if w < len(self._readers) else None
            if reader is not None and not sys.is_finalizing():
                reader.join(timeout=5)  # it ends at the pipe's end
            if proc.stdout is not None and (reader is None
                                            or not reader.is_alive()):
                proc.stdout.close()  # (never under a reader still in it)
        self._procs, self._readers = [], []
        _OPEN.discard(self)
        if self._file is not None:
            self._file.close()
            self._file = None
