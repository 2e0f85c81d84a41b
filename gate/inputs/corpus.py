"""The text perplexity is measured on: the bundled WikiText-2 excerpt, a
Hugging Face dataset, or a local file.

Line endings are normalised to LF everywhere, so the same text gives the same
tokens (and the same figure) whichever platform or copy it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gate.core.errors import DataError

DEFAULT_CORPUS = "wikitext2"
BUNDLED_EXCERPT = "wikitext2-test-excerpt.txt"
BUNDLED_NOTICE = "wikitext2-NOTICE.md"
HF_PREFIX = "hf:"
DEFAULT_HF_SPLIT = "test"
WIKITEXT_LICENSE = "CC BY-SA 3.0 (text from Wikipedia; WikiText-2, Merity et al. 2016)"


@dataclass(frozen=True)
class Corpus:
    name: str  # short label for reports: "wikitext2-excerpt", "hf:wikitext/...", a file name
    text: str
    source: str  # where the text came from, for the report
    license_note: str  # what the report must say about the text's license; "" when unknown

    def __repr__(self) -> str:  # the text is long; keep reprs and test failures readable
        return f"Corpus(name={self.name!r}, chars={len(self.text)}, source={self.source!r})"


@dataclass(frozen=True)
class HfSpec:
    """`hf:NAME/CONFIG[:split]`; NAME may carry an owner (`owner/name/config`)."""

    dataset: str
    config: str | None
    split: str


def load_text(spec: str | None) -> Corpus:
    """Resolve `--text`: None or "wikitext2" for the bundled excerpt, `hf:...` for a dataset, else a file path."""
    if spec is None or spec == DEFAULT_CORPUS:
        return bundled_excerpt()
    if spec.startswith(HF_PREFIX):
        return _load_hf(parse_hf_spec(spec))
    return _load_file(Path(spec))


def bundled_excerpt() -> Corpus:
    excerpt = resources.files("gate.data") / BUNDLED_EXCERPT
    try:
        text = excerpt.read_text(encoding="utf-8")
    except FileNotFoundError as exc:  # a broken install, not the user's fault, but they can fix it
        raise DataError(f"the bundled WikiText-2 excerpt is missing from the installed package: {excerpt}") from exc
    return Corpus(
        name="wikitext2-excerpt",
        text=text,
        source="WikiText-2 raw test split, first 158,079 bytes (bundled; see gate/data/wikitext2-NOTICE.md)",
        license_note=WIKITEXT_LICENSE,
    )


def bundled_notice() -> str:
    return (resources.files("gate.data") / BUNDLED_NOTICE).read_text(encoding="utf-8")


def parse_hf_spec(spec: str) -> HfSpec:
    body = spec[len(HF_PREFIX):]
    path, _, split = body.partition(":")
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 3 or (split == "" and body.endswith(":")):
        raise DataError(f"bad dataset spec {spec!r}: expected hf:NAME[/CONFIG][:SPLIT], e.g. hf:wikitext/wikitext-2-raw-v1")
    if len(parts) == 3:  # owner/name/config
        dataset, config = "/".join(parts[:2]), parts[2]
    elif len(parts) == 2:
        dataset, config = parts
    else:
        dataset, config = parts[0], None
    return HfSpec(dataset=dataset, config=config, split=split or DEFAULT_HF_SPLIT)


def join_rows(rows: list[str]) -> str:
    """Join dataset rows as the text stands: line-level rows (WikiText) carry their own newlines."""
    if all(row.endswith("\n") for row in rows if row):
        return "".join(rows)
    return "\n\n".join(row for row in rows if row)  # one document per row


def _load_hf(spec: HfSpec) -> Corpus:
    label = f"{HF_PREFIX}{spec.dataset}{'/' + spec.config if spec.config else ''}:{spec.split}"
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{label} needs the 'datasets' package: pip install 'gate-llm[datasets]'") from exc
    try:
        table = datasets.load_dataset(spec.dataset, spec.config, split=spec.split)
    except Exception as exc:  # offline, unknown name, bad split: all surface as one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load {label} (offline, or no such dataset/config/split): {reason}") from exc
    if "text" not in table.column_names:
        raise DataError(f"{label} has no 'text' column (columns: {', '.join(table.column_names)})")
    text = _normalise(join_rows(list(table["text"])))
    if not text.strip():
        raise DataError(f"{label} holds no text")
    return Corpus(name=label, text=text, source=f"Hugging Face dataset {label}", license_note=_hf_license(table))


def _hf_license(table: object) -> str:
    info = getattr(table, "info", None)
    return str(getattr(info, "license", "") or "")


def _load_file(path: Path) -> Corpus:
    if not path.exists():
        raise DataError(f"text file not found: {path}")
    if not path.is_file():
        raise DataError(f"text path is not a file: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"text file is not UTF-8 (byte {exc.start}): {path}") from exc
    text = _normalise(text)
    if not text.strip():
        raise DataError(f"text file is empty: {path}")
    return Corpus(name=path.name, text=text, source=f"local file {path}", license_note="")


def _normalise(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
