"""Two precompute processes on the same folder at the same moment, round
after round: every round ends with whole features identical to a run
alone, each process either succeeding or refused with a clear message,
and a reader polling the folder meanwhile never gets a partial set."""

import json
import re
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kerasdl.features import load_features
from kerasdl.features import precompute
from tests.test_features import _data
from tests.test_features import _model

# Command-line and whole-pipeline tests: their parts are tested on every
# backend elsewhere (tests/conftest.py, ONE_BACKEND).
pytestmark = pytest.mark.one_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = 8
N = 600  # 5 chunks of 128 rows
# layer=None keeps the model itself, whose compiled step is reused from
# one call to the next: a round costs milliseconds of computation

_WORKER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from tests.test_features import _data, _model
    from kerasdl.features import precompute
    model, (x, y) = _model(), _data(n={n})
    print("ready", flush=True)
    for line in sys.stdin:
        folder, overwrite = line.split()
        try:
            fs = precompute(model, (x, y), folder, layer=None,
                            overwrite=overwrite == "1", verbose=0)
            out = {{"ok": True, "rows": len(fs)}}
        except Exception as e:
            out = {{"ok": False, "type": type(e).__name__, "msg": str(e)}}
        print(json.dumps(out), flush=True)
""")


def _start_worker():
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER.format(root=ROOT, n=N)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT))


def _poll(folder, workers, allowed):
    """Reads the folder until both workers answer; returns their answers
    and how many complete reads were seen. Every complete read must be
    one of the ``allowed`` feature arrays."""
    answers, reads = [None, None], 0
    os.set_blocking(workers[0].stdout.fileno(), False)
    os.set_blocking(workers[1].stdout.fileno(), False)
    while None in answers:
        try:
            fs = load_features(folder)
        except ValueError:
            pass  # no complete set yet (or being replaced): refused
        else:
            assert any(np.array_equal(fs.features, a) for a in allowed)
            reads += 1
        for i, w in enumerate(workers):
            if answers[i] is not None:
                continue
            ended = w.poll() is not None
            line = w.stdout.readline()
            if line:
                answers[i] = json.loads(line)
            elif ended:
                raise AssertionError(f"worker {i} ended: {w.returncode}")
        time.sleep(0.01)
    return answers, reads


@pytest.fixture
def workers():
    started = [_start_worker(), _start_worker()]
    yield started
    for w in started:
        w.stdin.close()
        w.wait()
        w.stdout.close()


def test_two_writers_on_one_folder(tmp_path, workers):
    x, y = _data(n=N)
    model = _model()
    alone = precompute(model, (x, y), tmp_path / "alone", layer=None,
                       verbose=0)
    expected = np.array(alone.features)
    stale_x = x.copy()
    stale_x[0, 0, 0, 0] ^= 1
    for w in workers:
        assert w.stdout.readline() == "ready\n"
    for r in range(ROUNDS):
        folder = tmp_path / f"round{r}"
        overwrite = r % 2
        allowed = [expected]
        if overwrite:  # both asked to replace a stale cache at once
            allowed.append(np.array(precompute(
                model, (stale_x, y), folder, layer=None,
                verbose=0).features))
        for w in workers:
            w.stdin.write(f"{folder} {overwrite}\n")
            w.stdin.flush()
        answers, _ = _poll(folder, workers, allowed)
        for a in answers:
            if not a["ok"]:
                assert a["type"] == "FolderBusyError", a
                assert re.search(r"is in use: another precompute "
                                 r"\(process \d+ on host", a["msg"]), a
        assert any(a["ok"] for a in answers), answers
        assert all(a["rows"] == N for a in answers if a["ok"])
        fs = load_features(folder)
        np.testing.assert_array_equal(fs.features, expected)
        np.testing.assert_array_equal(fs.labels, y)
        assert sorted(os.listdir(folder)) == [
            "features.json", "features.npy", "labels.json", "labels.npy"]
