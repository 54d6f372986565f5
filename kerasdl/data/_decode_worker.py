"""A decoding process of ``kerasdl.data._decode_pool``: reads jobs as JSON
lines on stdin, decodes each file with ``_decode.decode`` straight into
the shared buffer it was given, and answers one JSON line per job on
stdout. It imports Pillow and numpy only, and ends when stdin closes (so
it never outlives its parent).

    python -m kerasdl.data._decode_worker FD BYTES
"""

import json
import mmap
import sys

import numpy as np

from kerasdl.data import _decode


def main(argv):
    fd, size = int(argv[0]), int(argv[1])
    buf = mmap.mmap(fd, size)
    view = np.frombuffer(buf, np.uint8)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        height, width = job["size"]
        nbytes = height * width * 3
        errors = []
        for i, (offset, path) in enumerate(job["files"]):
            try:
                img = _decode.decode(path, (height, width), job["interp"])
                view[offset:offset + nbytes] = img.reshape(-1)
            except _decode.ImageError as e:
                errors.append([i, "image", e.reason])
            except Exception as e:  # noqa: BLE001 (told to the parent)
                errors.append([i, "error", f"{type(e).__name__}: {e}"])
        out.write(json.dumps({"id": job["id"], "errors": errors}) + "\n")
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
