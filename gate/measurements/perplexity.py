"""Perplexity of a candidate against its base, on the same token windows.

The text is tokenized once, without special tokens, and cut into
non-overlapping windows of `ctx` tokens. Each window is scored on its own: its
first token is context only and the other ctx - 1 are predicted. No BOS token
is prepended: many chat tokenizers (SmolLM2's among them) declare a chat
marker as BOS, and scoring plain text after it would measure something else.
This is also how mlx-lm's `eval_ppl` scores its blocks.

Per-window NLL sums, token counts and byte counts are kept, so base and
candidate can be compared window by window (a paired interval), far less
noisily than two separate intervals. When the two tokenizers differ, token
perplexities are not comparable; the candidate then scores the same text
spans with its own tokens and the comparison is in bits per byte.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy import stats as sps

from gate.measurements.options import DEFAULT_CTX, DEFAULT_MAX_TOKENS
from gate.runtime.base import ModelHandle
from gate.core.errors import DataError, IncompatibleModelsError, InputError, MeasurementError
from gate.core.progress import NULL_REPORTER, Reporter
from gate.core.result import Finding, Interval, Metric, Severity
from gate.core.stats import paired_jackknife_ratio
from gate.core.tokenizer import Tokenizer

DEFAULT_BATCH_SIZE = 4
LEVEL = 0.95


# ---------------------------------------------------------------- windows


@dataclass(frozen=True)
class Windows:
    """The token windows both models are scored on."""

    token_ids: tuple[tuple[int, ...], ...]
    texts: tuple[str, ...]  # the text each window covers, to re-tokenize for another tokenizer
    byte_counts: tuple[int, ...]  # UTF-8 bytes of the scored part (after the first token)
    ctx: int  # the nominal window length; re-tokenized windows may differ
    text_tokens: int  # tokens in the whole text (the budget may use fewer)
    tokenizer_id: str  # fingerprint of the vocabulary that made `token_ids`

    def __len__(self) -> int:
        return len(self.token_ids)

    def __repr__(self) -> str:
        return f"Windows(n={len(self)}, ctx={self.ctx}, text_tokens={self.text_tokens})"

    def first(self, count: int) -> Windows:
        """The first `count` windows (a run that stops early scores a prefix of its plan)."""
        if count >= len(self):
            return self
        return Windows(self.token_ids[:count], self.texts[:count], self.byte_counts[:count], self.ctx,
                       self.text_tokens, self.tokenizer_id)

    @property
    def fingerprint(self) -> str:
        """Identifies the exact token windows: equal only when the same ids are scored."""
        return _digest(repr(self.token_ids))

    @property
    def text_fingerprint(self) -> str:
        """Identifies the text spans, whatever tokenizer cut them."""
        return _digest("\x00".join(self.texts))


def make_windows(tokenizer: Tokenizer, text: str, ctx: int = DEFAULT_CTX, max_tokens: int = DEFAULT_MAX_TOKENS) -> Windows:
    """Cut `text` into non-overlapping windows of `ctx` tokens, at most `max_tokens` tokens in all."""
    _require_tokenizer(tokenizer)
    if ctx < 2:
        raise InputError(f"the perplexity window must hold at least 2 tokens, got --ctx {ctx}")
    if max_tokens < ctx:
        raise InputError(f"the token budget ({max_tokens}) is smaller than one window ({ctx} tokens)")
    ids, offsets = _tokenize(tokenizer, text)
    count = min(len(ids) // ctx, max_tokens // ctx)
    if count == 0:
        raise DataError(f"the text is too short for one window: {len(ids)} tokens, a window needs {ctx}")
    byte_at = _byte_offsets(text)
    token_ids, texts, byte_counts = [], [], []
    for start in range(0, count * ctx, ctx):
        stop = start + ctx
        token_ids.append(tuple(ids[start:stop]))
        texts.append(text[offsets[start][0]:offsets[stop - 1][1]])
        # Bytes after the first token's end: what the ctx - 1 predictions cover.
        byte_counts.append(int(byte_at[offsets[stop - 1][1]] - byte_at[offsets[start][1]]))
    return Windows(tuple(token_ids), tuple(texts), tuple(byte_counts), ctx, len(ids), tokenizer_fingerprint(tokenizer))


def align_windows(windows: Windows, tokenizer: Tokenizer) -> Windows:
    """The same text spans cut by another tokenizer, for a bits-per-byte comparison."""
    _require_tokenizer(tokenizer)
    token_ids, byte_counts = [], []
    for text in windows.texts:
        ids, offsets = _tokenize(tokenizer, text)
        if len(ids) < 2:
            raise DataError(f"a window's text gives {len(ids)} token(s) with the candidate's tokenizer; need at least 2")
        token_ids.append(tuple(ids))
        byte_counts.append(len(text[offsets[0][1]:].encode("utf-8")))
    return Windows(tuple(token_ids), windows.texts, tuple(byte_counts), windows.ctx,
                   sum(len(ids) for ids in token_ids), tokenizer_fingerprint(tokenizer))


def _tokenize(tokenizer: Tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(f"the tokenizer ({type(tokenizer).__name__}) is not a fast tokenizer; "
                         "perplexity windows need its character offsets")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return list(encoded["input_ids"]), [tuple(pair) for pair in encoded["offset_mapping"]]


def _byte_offsets(text: str) -> np.ndarray:
    """byte_offsets[i] = UTF-8 length of text[:i], for every character index i."""
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    lengths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    return np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))


# ---------------------------------------------------------------- tokenizers


@dataclass(frozen=True)
class TokenizerCheck:
    matches: bool
    reason: str = ""  # why they do not match; "" when they do

    def finding(self) -> Finding | None:
        if self.matches:
            return None
        return Finding(Severity.WARNING, "tokenizer-mismatch",
                       f"the candidate's tokenizer differs from the base's ({self.reason}); "
                       "perplexity is compared in bits per byte over the same text")


def check_tokenizers_match(base_tokenizer: Tokenizer, candidate_tokenizer: Tokenizer, text: str) -> TokenizerCheck:
    """Same vocabulary (token -> id) and the same ids for `text`."""
    _require_tokenizer(base_tokenizer, "base")
    _require_tokenizer(candidate_tokenizer, "candidate")
    base_vocab, candidate_vocab = base_tokenizer.get_vocab(), candidate_tokenizer.get_vocab()
    if base_vocab != candidate_vocab:
        differing = sum(1 for token, index in base_vocab.items() if candidate_vocab.get(token) != index)
        return TokenizerCheck(False, f"vocabularies differ: {len(base_vocab)} vs {len(candidate_vocab)} tokens, "
                                     f"{differing} base tokens missing or renumbered")
    base_ids = base_tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    candidate_ids = candidate_tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if list(base_ids) != list(candidate_ids):
        first = next((i for i, (a, b) in enumerate(zip(base_ids, candidate_ids)) if a != b),
                     min(len(base_ids), len(candidate_ids)))
        return TokenizerCheck(False, f"same vocabulary but the text is split differently from token {first} on")
    return TokenizerCheck(True)


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    return _digest(repr(sorted(tokenizer.get_vocab().items())))


def _require_tokenizer(tokenizer: Tokenizer | None, whose: str = "the model") -> None:
    if tokenizer is None:
        raise InputError(f"{whose} has no tokenizer; perplexity needs one (add the tokenizer files to the checkpoint)")


# ---------------------------------------------------------------- one model


@dataclass(frozen=True)
class PerplexityRun:
    """One model scored on a set of windows."""

    nll: tuple[float, ...]  # per-window NLL sum in nats; NaN where the model gave non-finite log-probs
    tokens: tuple[int, ...]  # predictions scored per window
    byte_counts: tuple[int, ...]  # UTF-8 bytes those predictions cover
    windows_fingerprint: str
    text_fingerprint: str
    perplexity: float | None  # exp(total NLL / total tokens); None when any window is non-finite
    interval: Interval | None  # delta method over windows
    bits_per_byte: float | None
    bits_per_byte_interval: Interval | None
    findings: tuple[Finding, ...] = ()

    @property
    def finite(self) -> bool:
        return self.perplexity is not None

    def __len__(self) -> int:
        return len(self.nll)

    def first(self, windows: Windows) -> PerplexityRun:
        """This run's figures over the first len(windows) of its windows (`windows`: those, as cut)."""
        count = len(windows)
        if count > len(self):
            raise ValueError(f"a run of {len(self)} windows has no first {count}")
        if count == len(self):
            return self
        return summarise(np.array(self.nll[:count]), np.array(self.tokens[:count]), windows)


def measure_perplexity(
    handle: ModelHandle,
    windows: Windows,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reporter: Reporter = NULL_REPORTER,
) -> PerplexityRun:
    """Score every window with the model; non-finite log-probs become an ERROR finding, not a crash."""
    _require_tokenizer(handle.tokenizer)
    if tokenizer_fingerprint(handle.tokenizer) != windows.tokenizer_id:
        raise IncompatibleModelsError("the windows were cut by another tokenizer than this model's; "
                                      "use align_windows for a model with a different tokenizer")
    with reporter.task("perplexity", total=len(windows)) as task:
        nll, tokens = score_windows(handle, windows.token_ids, batch_size, advance=task.advance)
    return summarise(nll, tokens, windows)


def score_windows(handle: ModelHandle, token_ids: tuple[tuple[int, ...], ...], batch_size: int = DEFAULT_BATCH_SIZE,
                  advance: Callable[[int], None] = lambda done: None) -> tuple[np.ndarray, np.ndarray]:
    """Per-window NLL sums (NaN where a log-prob is not finite) and predictions scored, `batch_size` windows a call."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    nll, tokens = [], []
    for start in range(0, len(token_ids), batch_size):
        batch = token_ids[start:start + batch_size]
        scored = handle.token_logprobs(batch)
        if len(scored) != len(batch):
            raise MeasurementError(f"the backend scored {len(scored)} of {len(batch)} windows")
        for ids, logprobs in zip(batch, scored):
            logprobs = np.asarray(logprobs, dtype=np.float64)
            if logprobs.shape != (len(ids) - 1,):
                raise MeasurementError(f"the backend returned {logprobs.shape} log-probs for a {len(ids)}-token window")
            nll.append(float(-logprobs.sum()) if np.isfinite(logprobs).all() else math.nan)
            tokens.append(len(ids) - 1)
        advance(len(batch))
    return np.array(nll, dtype=np.float64), np.array(tokens, dtype=np.int64)


def summarise(nll: np.ndarray, tokens: np.ndarray, windows: Windows) -> PerplexityRun:
    """A model's figures from its per-window NLL sums and predictions over `windows`."""
    byte_counts = np.array(windows.byte_counts)
    common = dict(nll=tuple(nll.tolist()), tokens=tuple(tokens.tolist()), byte_counts=tuple(byte_counts.tolist()),
                  windows_fingerprint=windows.fingerprint, text_fingerprint=windows.text_fingerprint)
    bad = int((~np.isfinite(nll)).sum())
    if bad:
        finding = Finding(Severity.ERROR, "nonfinite-logprobs",
                          f"the model gave NaN or infinite log-probabilities in {bad} of {len(nll)} windows; "
                          "perplexity is undefined")
        return PerplexityRun(**common, perplexity=None, interval=None, bits_per_byte=None,
                             bits_per_byte_interval=None, findings=(finding,))
    log_ppl, log_ppl_se = _ratio_estimate(nll, tokens)
    bpb, bpb_se = _ratio_estimate(nll / math.log(2), byte_counts)
    z = float(sps.norm.ppf(0.5 + LEVEL / 2))
    interval = bpb_interval = None
    if log_ppl_se is not None:
        interval = Interval(math.exp(log_ppl - z * log_ppl_se), math.exp(log_ppl + z * log_ppl_se), LEVEL, "delta")
        bpb_interval = Interval(bpb - z * bpb_se, bpb + z * bpb_se, LEVEL, "delta")
    return PerplexityRun(**common, perplexity=math.exp(log_ppl), interval=interval, bits_per_byte=bpb,
                         bits_per_byte_interval=bpb_interval)


def _ratio_estimate(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float | None]:
    """Σnum / Σden and its delta-method standard error over windows (None with one window)."""
    total = denominators.sum()
    rate = float(numerators.sum() / total)
    k = len(numerators)
    if k < 2:
        return rate, None
    residuals = numerators - rate * denominators
    return rate, float(math.sqrt(k / (k - 1) * (residuals**2).sum()) / total)


# ---------------------------------------------------------------- base vs candidate


@dataclass(frozen=True)
class PerplexityComparison:
    base: PerplexityRun
    candidate: PerplexityRun
    same_tokens: bool  # False: the tokenizers differ and only bits per byte compares
    ratio: float | None  # candidate / base perplexity; None unless same tokens and both finite
    ratio_interval: Interval | None  # paired bootstrap over windows
    bits_per_byte_ratio: float | None
    bits_per_byte_ratio_interval: Interval | None
    findings: tuple[Finding, ...]

    @property
    def windows(self) -> int:
        return len(self.base.nll)

    def metrics(self) -> list[Metric]:
        n = self.windows
        base, cand = self.base, self.candidate
        return [
            Metric("perplexity.base", base.perplexity, interval=base.interval, n=n),
            Metric("perplexity.candidate", cand.perplexity, interval=cand.interval, n=n),
            Metric("perplexity.ratio", self.ratio, base=base.perplexity, candidate=cand.perplexity,
                   interval=self.ratio_interval, n=n, unit="x"),
            Metric("bits_per_byte.base", base.bits_per_byte, interval=base.bits_per_byte_interval, n=n, unit="bits/byte"),
            Metric("bits_per_byte.candidate", cand.bits_per_byte, interval=cand.bits_per_byte_interval, n=n,
                   unit="bits/byte"),
            Metric("bits_per_byte.ratio", self.bits_per_byte_ratio, base=base.bits_per_byte,
                   candidate=cand.bits_per_byte, interval=self.bits_per_byte_ratio_interval, n=n, unit="x"),
        ]


def compare_perplexity(
    base_run: PerplexityRun,
    candidate_run: PerplexityRun,
    tokenizer_check: TokenizerCheck | None = None,
    level: float = LEVEL,
) -> PerplexityComparison:
    """Candidate/base ratios with paired intervals over the shared windows (`paired_jackknife_ratio`); `level`
    above 95% where a sequential run splits its error over several looks."""
    same_tokens = base_run.windows_fingerprint == candidate_run.windows_fingerprint
    if not same_tokens and base_run.text_fingerprint != candidate_run.text_fingerprint:
        raise IncompatibleModelsError("base and candidate were scored on different text windows; "
                                      "perplexity can only be compared on the same windows")
    findings = [replace(f, subject="base") for f in base_run.findings]
    findings += [replace(f, subject="candidate") for f in candidate_run.findings]
    if not same_tokens:
        if tokenizer_check is None or tokenizer_check.matches:
            tokenizer_check = TokenizerCheck(False, "the two models scored different token ids")
        findings.append(tokenizer_check.finding())
    ratio = ratio_interval = bpb_ratio = bpb_ratio_interval = None
    if base_run.finite and candidate_run.finite:
        base_nll, cand_nll = np.array(base_run.nll), np.array(candidate_run.nll)
        if same_tokens:
            tokens = np.array(base_run.tokens, dtype=np.float64)
            ratio = float(_perplexity_ratio(np.stack([base_nll, tokens]), np.stack([cand_nll, tokens])))
            ratio_interval = _paired_interval(np.stack([base_nll, tokens]), np.stack([cand_nll, tokens]),
                                              _perplexity_ratio, level, findings)
        base_rec = np.stack([base_nll, np.array(base_run.byte_counts, dtype=np.float64)])
        cand_rec = np.stack([cand_nll, np.array(candidate_run.byte_counts, dtype=np.float64)])
        bpb_ratio = float(_bits_per_byte_ratio(base_rec, cand_rec))
        bpb_ratio_interval = _paired_interval(base_rec, cand_rec, _bits_per_byte_ratio, level, findings)
    return PerplexityComparison(base_run, candidate_run, same_tokens, ratio, ratio_interval,
                                bpb_ratio, bpb_ratio_interval, tuple(findings))


def _perplexity_ratio(base: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(candidate mean NLL - base mean NLL), token-weighted; records are (nll, tokens) x windows."""
    return np.exp(candidate[0].sum(axis=axis) / candidate[1].sum(axis=axis)
                  - base[0].sum(axis=axis) / base[1].sum(axis=axis))


def _bits_per_byte_ratio(base: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    """(candidate NLL per byte) / (base NLL per byte); records are (nll, bytes) x windows."""
    return (candidate[0].sum(axis=axis) / candidate[1].sum(axis=axis)) / (base[0].sum(axis=axis) / base[1].sum(axis=axis))


def _paired_interval(base: np.ndarray, candidate: np.ndarray, statistic, level: float,
                     findings: list[Finding]) -> Interval | None:
    if base.shape[-1] < 2:
        if not any(f.code == "too-few-windows" for f in findings):
            findings.append(Finding(Severity.WARNING, "too-few-windows",
                                    "only one text window was scored; the perplexity ratio has no interval"))
        return None
    return paired_jackknife_ratio(base, candidate, statistic, level=level)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
