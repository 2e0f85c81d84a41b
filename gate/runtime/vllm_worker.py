"""The vLLM side of gate's `vllm` runtime: one engine, driven by JSON lines on stdin/stdout.

Run by `gate.runtime.vllm_backend` with the interpreter of an environment
where vLLM is installed; this file imports nothing from gate, so that
environment needs vLLM alone. One request per line in, one answer per line
out, in order. vLLM logs to stdout, so the answers go to a private copy of
the original stdout and everything else (vLLM's and its engine processes')
goes to stderr, which the gate keeps for error messages.

Requests ({"op": ...}):
  describe                      -> versions, device type and name, default dtype, GPUs visible
  load path dtype tp pp executor -> the engine, then the same description
  token_logprobs sequences      -> log p(token_t | tokens_<t), t >= 1, per sequence (prompt log-probabilities)
  last_token_logprobs prompts token_ids -> the next-token log-probabilities of exactly those ids (softmax over
                                   the whole vocabulary, not a top-k), one row per prompt
  generate prompt max_new_tokens temperature seed stop_token_ids -> new token ids and timing
  peak_memory                   -> peak resident bytes of this process and its engine processes, sampled
  stats                         -> prompt tokens scored by last_token_logprobs, and those the prefix cache held
  close                         -> exits
Answers: {"ok": true, ...} or {"ok": false, "error": one line}.
"""

import json
import os
import sys
import time

# Run by path, this file's directory (gate/runtime) comes first on sys.path, where a module could shadow
# the standard library's (a select.py there once did); the gate runs it with -I, this covers a run by hand.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

# vLLM's CPU build reserves this much RAM (GiB) for the KV cache; its default of 4 is
# far more than scoring needs. The user's own setting wins.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


# Prefix caching shares whole KV blocks only. vLLM's CPU build defaults to 128-token blocks, longer than
# most BBQ prompts, so nothing would be shared; 32 is the smallest size its CPU kernels take well.
# (CUDA's default, 16, is kept.)
_CPU_BLOCK_SIZE = 32


class _State:
    llm = None
    block_size = 16
    peak_bytes = 0
    prompt_tokens = 0  # prompt tokens sent, and those the prefix cache served instead of computing
    cached_tokens = 0


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _cpu_has_native_bf16(torch):
    try:  # the same probe as gate's torch runtime: native bf16 arithmetic or not
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def describe(_request=None):
    import importlib.metadata

    import torch
    import vllm
    from vllm.platforms import current_platform

    device = current_platform.device_type  # "cpu", "cuda", "rocm"'s "cuda", "xpu", ...
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    name = torch.cuda.get_device_name(0) if gpus else f"{_cpu_name()} ({os.cpu_count()} logical CPUs)"
    native_bf16 = device != "cpu" or _cpu_has_native_bf16(torch)

    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {"vllm_version": vllm.__version__, "torch_version": torch.__version__,
            "transformers_version": version("transformers"), "device": device, "device_description": name,
            "gpus": gpus, "default_dtype": "bfloat16" if native_bf16 else "float32",
            "python": sys.version.split()[0]}


def load(request):
    from vllm import LLM
    from vllm.platforms import current_platform

    on_cpu = current_platform.device_type == "cpu"
    # Prefix caching: prompts that share a prefix (a BBQ item's option orders, the system prompt)
    # compute it once. Eager mode: no graph capture or compilation, which on a CPU costs minutes
    # at load and gains little for scoring.
    # Across nodes, the ranks are Ray actors of the cluster at $RAY_ADDRESS (vLLM's multi-node launcher).
    _State.llm = LLM(model=request["path"], dtype=request["dtype"], tensor_parallel_size=request["tp"],
                     pipeline_parallel_size=request["pp"], distributed_executor_backend=request.get("executor"),
                     seed=request.get("seed", 0), enable_prefix_caching=True,
                     enforce_eager=request.get("enforce_eager", True), trust_remote_code=False,
                     disable_log_stats=False,  # the stats give each request's time to its first token
                     **({"block_size": _CPU_BLOCK_SIZE} if on_cpu else {}))
    _State.block_size = _State.llm.llm_engine.vllm_config.cache_config.block_size
    _sample_memory()
    return describe()


def _prompts(ids_list):
    from vllm.inputs import TokensPrompt

    return [TokensPrompt(prompt_token_ids=[int(t) for t in ids]) for ids in ids_list]


def token_logprobs(request):
    from vllm import SamplingParams

    sequences = request["sequences"]
    results = [[] for _ in sequences]
    scored = [i for i, ids in enumerate(sequences) if len(ids) >= 2]
    if scored:
        # prompt_logprobs=0: each prompt token's own log-probability, nothing more. vLLM skips the
        # prefix cache for such requests, so every position is computed, never read back.
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = _State.llm.generate(_prompts([sequences[i] for i in scored]), params, use_tqdm=False)
        for index, output in zip(scored, outputs):
            ids = sequences[index]
            rows = output.prompt_logprobs
            results[index] = [rows[t][ids[t]].logprob for t in range(1, len(ids))]
    _sample_memory()
    return {"logprobs": results}


def last_token_logprobs(request):
    from vllm import SamplingParams

    wanted = [int(t) for t in request["token_ids"]]
    unique = sorted(set(wanted))
    # logprob_token_ids: the exact log-softmax (over the whole vocabulary, float32, before any
    # temperature) of these ids at the next position, whatever their rank.
    params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=unique, detokenize=False)
    prompts = request["prompts"]
    rows = [None] * len(prompts)
    # Prompts scheduled in the same engine step cannot read each other's blocks: a prompt that shares at
    # least a block with the one before it (an item's other option orders) waits for a second call.
    followers = {i for i in range(1, len(prompts)) if _common_prefix(prompts[i - 1], prompts[i]) >= _State.block_size}
    for wave in ([i for i in range(len(prompts)) if i not in followers], sorted(followers)):
        if not wave:
            continue
        outputs = _State.llm.generate(_prompts([prompts[i] for i in wave]), params, use_tqdm=False)
        for index, output in zip(wave, outputs):
            scores = output.outputs[0].logprobs[0]
            rows[index] = [scores[t].logprob for t in wanted]
            _State.prompt_tokens += len(output.prompt_token_ids)
            _State.cached_tokens += output.num_cached_tokens or 0
    _sample_memory()
    return {"logprobs": rows}


def _common_prefix(a, b):
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def generate(request):
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=request["max_new_tokens"], temperature=request["temperature"],
                            seed=request["seed"], stop_token_ids=request["stop_token_ids"], detokenize=False)
    start = time.perf_counter()
    (output,) = _State.llm.generate(_prompts([request["prompt"]]), params, use_tqdm=False)
    total = time.perf_counter() - start
    metrics = getattr(output, "metrics", None)
    first = getattr(metrics, "first_token_latency", 0.0) if metrics is not None else 0.0
    _sample_memory()
    return {"token_ids": list(output.outputs[0].token_ids), "total_seconds": total,
            "prefill_seconds": first if 0 < first <= total else None}


def _sample_memory():
    """The resident set of this process and its engine processes now; the peak of such samples is kept."""
    try:
        import psutil
    except ImportError:
        return
    me = psutil.Process()
    total = 0
    for process in [me, *me.children(recursive=True)]:
        try:  # proportional set size: pages shared between the processes counted once in all
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    _State.peak_bytes = max(_State.peak_bytes, total)


def peak_memory(_request):
    _sample_memory()
    return {"bytes": _State.peak_bytes or None}


def stats(_request):
    return {"prompt_tokens": _State.prompt_tokens, "cached_tokens": _State.cached_tokens}


OPS = {"describe": describe, "load": load, "token_logprobs": token_logprobs,
       "last_token_logprobs": last_token_logprobs, "generate": generate, "peak_memory": peak_memory,
       "stats": stats}


def _answer(channel, message):
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def serve(channel):
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        if op == "close":
            break
        try:
            if op not in OPS:
                raise KeyError(f"unknown request {op!r}")
            if op != "describe" and op != "load" and _State.llm is None:
                raise RuntimeError("no model loaded")
            _answer(channel, {"ok": True, **OPS[op](request)})
        except Exception as error:  # noqa: BLE001 - reported to the gate, which decides what it means
            _answer(channel, {"ok": False, "error": f"{type(error).__name__}: {_first_line(error)}"})


def main():
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # vLLM's prints and logs, ours and its children's
    sys.stdout = sys.stderr
    if sys.argv[1:] == ["--describe"]:
        try:
            _answer(channel, {"ok": True, **describe()})
        except Exception as error:  # noqa: BLE001
            _answer(channel, {"ok": False, "error": f"{type(error).__name__}: {_first_line(error)}"})
        return
    serve(channel)
    _State.llm = None


if __name__ == "__main__":
    main()
