# Two commands do all set-up on a fresh machine:
#   make fit    create .venv if missing, install tcx, train the default (AnchorVAE on dSprites)
#   make test   create .venv if missing, install tcx with the dev extra, run the fast tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The torch releases tcx is tested with; installed first so that no newer build is pulled in.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.tcx-installed

export WANDB_SILENT ?= true

.PHONY: fit test test-slow bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

fit: $(STAMP)
	$(BIN)/tcx fit

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf runs wandb lightning_logs
