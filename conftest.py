"""Shared by the tests and the package's docstring examples
(``--doctest-modules``, set in setup.cfg).

Modules that run a program when imported are not collected. A test (or
docstring example) of a feature that needs a newer Keras than the one
installed (``kerasdl.training._rates.KerasVersionError``, one clear
error) is reported as skipped with that error as the reason, so the
suite runs under the oldest Keras that setup.cfg allows (make test-floor).
"""

import doctest

import pytest

collect_ignore = ["kerasdl/__main__.py", "setup.py"]


def _version_error(excinfo):
    error = excinfo.value
    if isinstance(error, doctest.UnexpectedException):
        error = error.exc_info[1]
    if type(error).__name__ == "KerasVersionError":
        return error
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or report.outcome != "failed":
        return
    error = _version_error(call.excinfo)
    if error is not None:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, f"Skipped: {error}")
