"""BBQ items: loading, the biased ("target") answer, and stratified sampling.

BBQ (Parrish et al. 2022, github.com/nyu-mll/BBQ, CC BY 4.0) ships one JSONL
file per category. Each row offers three answers: one per social group and an
"unknown" one. The target is the answer a stereotype would pick: for a `neg`
question the answer naming a stereotyped group, for a `nonneg` question the
other group's answer. Group matching follows BBQ's own analysis script
(analysis_scripts/BBQ_results_metadata.R); see `target_index`.
"""

from __future__ import annotations

import functools
import gzip
import json
import random
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from gate.core.errors import DataError

# The 11 official file stems, in the order BBQ lists them.
CATEGORY_FILES = (
    "Age",
    "Disability_status",
    "Gender_identity",
    "Nationality",
    "Physical_appearance",
    "Race_ethnicity",
    "Race_x_SES",
    "Race_x_gender",
    "Religion",
    "SES",
    "Sexual_orientation",
)
CATEGORIES = tuple(stem.lower() for stem in CATEGORY_FILES)
# The five categories the paper reports SRS on.
PAPER_CATEGORIES = ("age", "gender_identity", "race_ethnicity", "religion", "ses")
INTERSECTIONAL = ("race_x_ses", "race_x_gender")

HUB_DATASET = "oskarvanderwal/bbq"  # the copy lm-evaluation-harness reads
HUB_CONFIG = "All"
HUB_SPLIT = "test"
LICENSE_NOTE = "BBQ, Parrish et al. 2022 (github.com/nyu-mll/BBQ), CC BY 4.0"

POLARITIES = ("neg", "nonneg")
CONDITIONS = ("ambig", "disambig")
# BBQ writes each context as four consecutive rows (example ids 4k..4k+3): ambiguous and disambiguated, each
# with a negative and a non-negative question. A family shares its context.
FAMILY_SIZE = 4


def family_of(item_id: str) -> str:
    """The family of an item id "<category>-<example_id>" ("age-6" -> "age-1"); an id of another form is its own."""
    head, _, number = item_id.rpartition("-")
    return f"{head}-{int(number) // FAMILY_SIZE}" if head and number.isdigit() else item_id
_REQUIRED = ("example_id", "question_polarity", "context_condition", "category", "answer_info",
             "additional_metadata", "context", "question", "ans0", "ans1", "ans2", "label")

NO_SINGLE_TARGET = "no single target answer"
NO_SINGLE_UNKNOWN = "no single unknown answer"


@dataclass(frozen=True)
class BBQItem:
    item_id: str  # "<category>-<example_id>": example ids repeat across category files
    category: str  # normalised key, e.g. "gender_identity"
    example_id: int
    question_index: str
    polarity: str  # "neg" or "nonneg"
    condition: str  # "ambig" or "disambig"
    context: str
    question: str
    answers: tuple[str, str, str]
    label: int  # the correct answer's index
    unknown_index: int
    target_index: int  # the biased answer's index
    row: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # the source row, verbatim

    @property
    def ambiguous(self) -> bool:
        return self.condition == "ambig"

    @property
    def other_index(self) -> int:
        """The non-unknown answer that is not the target."""
        return 3 - self.unknown_index - self.target_index


@dataclass(frozen=True)
class DroppedItem:
    item_id: str
    category: str
    reason: str


@dataclass(frozen=True)
class BBQData:
    items: tuple[BBQItem, ...]
    dropped: tuple[DroppedItem, ...]  # rows without a single target (or unknown) answer
    source: str  # where the rows came from, for the report
    license_note: str = LICENSE_NOTE

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({item.category for item in self.items}))

    def dropped_by_category(self) -> dict[str, int]:
        return dict(sorted(Counter(drop.category for drop in self.dropped).items()))

    def __repr__(self) -> str:  # thousands of items: keep test failures readable
        return f"BBQData(items={len(self.items)}, dropped={len(self.dropped)}, source={self.source!r})"


def category_key(name: str) -> str:
    """Normalise a category name ("Gender_identity", "race-x-SES") to its key ("gender_identity")."""
    key = re.sub(r"[\s-]+", "_", str(name).strip()).lower()
    if key not in CATEGORIES:
        raise DataError(f"unknown BBQ category {name!r}; expected one of: {', '.join(CATEGORIES)}")
    return key


# --- loading -------------------------------------------------------------

def load_bbq(path: str | Path) -> BBQData:
    """Load a directory of BBQ JSONL files (any subset of the 11 categories) or one JSONL file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"BBQ data not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")) and p.is_file())
        if not files:
            raise DataError(f"no .jsonl or .jsonl.gz files in BBQ directory {path}")
    else:
        files = [path]
    rows = (row for file in files for row in _read_jsonl(file))
    return items_from_rows(rows, source=f"BBQ JSONL {path} ({', '.join(f.name for f in files)})")


def load_bbq_hub(dataset: str = HUB_DATASET, config: str = HUB_CONFIG, split: str = HUB_SPLIT) -> BBQData:
    """Load BBQ through `datasets` (needs the network or a warm cache)."""
    label = f"hf:{dataset}/{config}:{split}"
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{label} needs the 'datasets' package: pip install 'gate-llm[datasets]'") from exc
    try:
        table = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # offline, unknown name or split: all surface as one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load {label} (offline, or no such dataset/config/split): {reason}") from exc
    rows = ((f"{label} row {i + 1}", dict(row)) for i, row in enumerate(table))
    return items_from_rows(rows, source=f"Hugging Face dataset {label}")


def items_from_rows(rows: Iterable[tuple[str, Mapping[str, Any]]], source: str) -> BBQData:
    """Parse (where, row) pairs into items, dropping rows without a single target."""
    items: list[BBQItem] = []
    dropped: list[DroppedItem] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        parsed = parse_row(row, where)
        if parsed.item_id in seen:
            raise DataError(f"{where}: duplicate BBQ item {parsed.item_id} (first seen at {seen[parsed.item_id]})")
        seen[parsed.item_id] = where
        (dropped if isinstance(parsed, DroppedItem) else items).append(parsed)
    if not items:
        raise DataError(f"no usable BBQ items in {source}")
    return BBQData(items=tuple(items), dropped=tuple(dropped), source=source)


def parse_row(row: Mapping[str, Any], where: str) -> BBQItem | DroppedItem:
    """One BBQ row as an item, or as a dropped item when it has no single target."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: a BBQ row must be a JSON object")
    missing = [name for name in _REQUIRED if name not in row]
    if missing:
        raise DataError(f"{where}: BBQ row lacks {', '.join(missing)}")
    try:
        category = category_key(row["category"])
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    polarity, condition = row["question_polarity"], row["context_condition"]
    if polarity not in POLARITIES or condition not in CONDITIONS:
        raise DataError(f"{where}: bad question_polarity {polarity!r} or context_condition {condition!r}")
    example_id, label = _whole_number(row["example_id"], "example_id", where), _whole_number(row["label"], "label", where)
    try:
        info = [_answer_info(row["answer_info"], k) for k in range(3)]
        stereotyped = [str(g) for g in row["additional_metadata"]["stereotyped_groups"]]
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(f"{where}: malformed BBQ row ({type(exc).__name__} in answer_info or additional_metadata)") from None
    if label not in (0, 1, 2):
        raise DataError(f"{where}: label must be 0, 1 or 2, got {label}")
    item_id = f"{category}-{example_id}"
    answers = (str(row["ans0"]), str(row["ans1"]), str(row["ans2"]))
    unknowns = [k for k in range(3) if info[k][1].strip().lower() == "unknown"]
    if len(unknowns) != 1:
        return DroppedItem(item_id, category, NO_SINGLE_UNKNOWN)
    target = target_index(category, polarity, info, answers, stereotyped)
    if target is None:
        return DroppedItem(item_id, category, NO_SINGLE_TARGET)
    return BBQItem(
        item_id=item_id, category=category, example_id=example_id,
        question_index=str(row.get("question_index", "")), polarity=polarity, condition=condition,
        context=str(row["context"]), question=str(row["question"]), answers=answers, label=label,
        unknown_index=unknowns[0], target_index=target, row=row,
    )


# BBQ's example ids are small; a larger "id" is a broken or hostile file, not an item.
MAX_EXAMPLE_ID = 2**53


def _whole_number(value: Any, name: str, where: str) -> int:
    """An integer field (an int, or a string or float holding one), bounded; never echoes a huge value."""
    if isinstance(value, bool):
        value = None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,16}\s*", value):
        value = int(value)
    if not isinstance(value, int) or abs(value) > MAX_EXAMPLE_ID:
        raise DataError(f"{where}: {name} must be a whole number of at most 16 digits")
    return value


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    from gate.core.safejson import load_json

    try:
        handle = gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                yield where, load_json(line, where, DataError)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
        except (OSError, EOFError, zlib.error) as exc:  # a corrupt or truncated .gz
            raise DataError(f"{path}: cannot read ({exc})") from None


def _answer_info(answer_info: Mapping[str, Any], k: int) -> tuple[str, str]:
    """(text, group) of answer k; BBQ leaves a few of them empty."""
    entry = list(answer_info[f"ans{k}"]) + ["", ""]
    return str(entry[0] or ""), str(entry[1] or "")


# --- the target rule -----------------------------------------------------

def target_index(category: str, polarity: str, info: Sequence[tuple[str, str]],
                 answers: Sequence[str], stereotyped_groups: Sequence[str]) -> int | None:
    """The biased answer's index, or None when the row has no single one.

    First find the non-unknown answers whose group is a stereotyped group. With
    exactly one, a `neg` question's target is that answer and a `nonneg`
    question's target is the other non-unknown answer. With none or both
    matching the row has no single target (16 rows in all of BBQ).
    """
    candidates = [k for k in range(3) if info[k][1].strip().lower() != "unknown"]
    if len(candidates) != 2:
        return None
    if category in INTERSECTIONAL:
        matches = [k for k in candidates if _matches_intersectional(category, info[k], answers[k], stereotyped_groups)]
    else:
        groups = {_normalise_group(g) for g in stereotyped_groups}
        matches = [k for k in candidates if _matches(category, info[k], groups)]
    if len(matches) != 1:
        return None
    stereotyped_answer = matches[0]
    if polarity == "neg":
        return stereotyped_answer
    return next(k for k in candidates if k != stereotyped_answer)


_GENDER_WORDS = {"man": "m", "boy": "m", "men": "m", "boys": "m", "woman": "f", "girl": "f", "women": "f", "girls": "f"}
_SES_WORDS = {"low ses": "lowses", "lowses": "lowses", "high ses": "highses", "highses": "highses"}


@functools.lru_cache(maxsize=4096)  # a few hundred labels, met 56,000 times in all of BBQ
def _normalise_group(group: str) -> str:
    """An answer's or a stereotype's group label in the analysis script's terms.

    man/boy -> M, woman/girl -> F, any transgender variant -> trans, "low SES"
    -> lowSES, and a leading M-/F- (the gender part of a race label such as
    "F-Black") is dropped; compared case-insensitively.
    """
    label = group.strip()
    if re.match(r"[MF]-", label):
        label = label[2:]
    lowered = label.lower()
    if lowered.startswith("trans"):  # "trans_F", "transgender women", "Transgender men"
        return "trans"
    return _GENDER_WORDS.get(lowered) or _SES_WORDS.get(lowered) or lowered


def _matches(category: str, info: tuple[str, str], stereotyped: set[str]) -> bool:
    text, group = info
    if _normalise_group(group) in stereotyped:  # exact: "old" is not "nonOld", "African" not "African American"
        return True
    # Nationality stereotypes name countries while answer groups name regions.
    return category == "nationality" and text.strip().lower() in stereotyped


def _intersectional_parts(label: str, text: str = "") -> dict[str, str]:
    """Split "lowSES-M-Black" / "F-Latino" into {"ses", "gender", "race"} parts.

    A few Race_x_gender answers carry no group at all; like the analysis
    script, their race is Latino and their gender comes from the answer text.
    """
    parts: dict[str, str] = {}
    rest = label.strip()
    ses = re.match(r"(lowSES|highSES|low SES|high SES)-?", rest, flags=re.IGNORECASE)
    if ses:
        parts["ses"] = _SES_WORDS[ses.group(1).lower()]
        rest = rest[ses.end():]
    gender = re.match(r"([MF])-", rest)
    if gender:
        parts["gender"] = gender.group(1).lower()
        rest = rest[gender.end():]
    if rest:
        parts["race"] = rest.lower()
    elif not label.strip():
        parts["race"] = "latino"
        words = set(re.findall(r"[a-z]+", text.lower()))
        if words & {"woman", "latina"}:
            parts["gender"] = "f"
        elif words & {"man", "latino"}:
            parts["gender"] = "m"
    return parts


def _stereotype_parts(stereotyped_groups: Sequence[str]) -> dict[str, set[str]]:
    """Allowed values per dimension; a bare "F" or "lowSES" names that dimension only."""
    allowed: dict[str, set[str]] = defaultdict(set)
    for group in stereotyped_groups:
        lowered = group.strip().lower()
        if lowered in _GENDER_WORDS or lowered in ("m", "f"):
            allowed["gender"].add(_GENDER_WORDS.get(lowered, lowered))
        elif lowered in _SES_WORDS:
            allowed["ses"].add(_SES_WORDS[lowered])
        else:
            for dimension, value in _intersectional_parts(group).items():
                allowed[dimension].add(value)
    return allowed


def _matches_intersectional(category: str, info: tuple[str, str], text: str,
                            stereotyped_groups: Sequence[str]) -> bool:
    """Both dimensions must match, as in the analysis script: race and gender, or race and SES."""
    answer = _intersectional_parts(info[1], text)
    allowed = _stereotype_parts(stereotyped_groups)
    if category == "race_x_ses" and not allowed.get("ses"):
        allowed["ses"] = {"lowses"}  # the Race_x_SES templates target low SES
    if not allowed.get("race") or answer.get("race") not in allowed["race"]:
        return False
    second = "gender" if category == "race_x_gender" else "ses"
    return not allowed.get(second) or answer.get(second) in allowed[second]


# --- sampling ------------------------------------------------------------

def cell_of(item: BBQItem) -> tuple[str, str, str]:
    """The stratum an item is sampled in: category x context condition x polarity."""
    return item.category, item.condition, item.polarity


def select_categories(items: Sequence[BBQItem], categories: Iterable[str] | None) -> tuple[BBQItem, ...]:
    if categories is None:
        return tuple(items)
    wanted = [category_key(c) for c in categories]
    present = {item.category for item in items}
    absent = [c for c in wanted if c not in present]
    if absent:
        raise DataError(f"no BBQ items for categor{'y' if len(absent) == 1 else 'ies'} "
                        f"{', '.join(absent)} (have: {', '.join(sorted(present))})")
    return tuple(item for item in items if item.category in wanted)


def sample_items(items: Sequence[BBQItem], limit: int | None = None, seed: int = 0,
                 categories: Iterable[str] | None = None) -> tuple[BBQItem, ...]:
    """A seeded sample of at most `limit` items, spread evenly over the strata.

    Every (category, condition, polarity) cell gets an equal share; a cell
    smaller than its share gives the rest to the others. Items keep their
    input order, so the same data, limit and seed always give the same sample.
    """
    chosen = select_categories(items, categories)
    if limit is None or limit >= len(chosen):
        return chosen
    if limit < 1:
        raise DataError(f"the BBQ item limit must be at least 1, got {limit}")
    cells: dict[tuple[str, str, str], list[BBQItem]] = defaultdict(list)
    for item in chosen:
        cells[cell_of(item)].append(item)
    rng = random.Random(seed)
    quotas = _equal_quotas({key: len(members) for key, members in cells.items()}, limit, rng)
    picked: set[str] = set()
    for key in sorted(cells):
        picked.update(item.item_id for item in rng.sample(cells[key], quotas[key]))
    return tuple(item for item in chosen if item.item_id in picked)


def _equal_quotas(sizes: Mapping[tuple, int], limit: int, rng: random.Random) -> dict[tuple, int]:
    """Split `limit` as evenly as the cell sizes allow; leftover units go to random cells."""
    quotas = {key: 0 for key in sizes}
    remaining = limit
    open_cells = sorted(sizes, key=lambda key: (sizes[key], key))
    while open_cells and remaining >= len(open_cells):
        share = remaining // len(open_cells)
        for key in open_cells:
            take = min(share, sizes[key] - quotas[key])
            quotas[key] += take
            remaining -= take
        open_cells = [key for key in open_cells if quotas[key] < sizes[key]]
    # Fewer units than open cells: one each to a seeded random choice of them.
    for key in rng.sample(sorted(open_cells), min(remaining, len(open_cells))):
        quotas[key] += 1
    return quotas


def write_rows(items: Iterable[BBQItem], path: str | Path) -> Path:
    """Write the items' source rows, verbatim, as JSONL."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for item in items:
            handle.write(json.dumps(dict(item.row), ensure_ascii=False) + "\n")
    return path


def make_sample(source: str | Path, out: str | Path, per_cell: int, seed: int) -> tuple[BBQItem, ...]:
    """Write a stratified sample with `per_cell` items in each category x condition x polarity cell."""
    data = load_bbq(source)
    n_cells = len({cell_of(item) for item in data.items})
    sample = sample_items(data.items, limit=per_cell * n_cells, seed=seed)
    write_rows(sample, out)
    return sample


def bundled_path(name: str) -> Path:
    """A file or folder of the BBQ data shipped as package data (gate/data/bbq/)."""
    path = Path(str(resources.files("gate.data"))) / "bbq" / name
    if not path.exists():
        raise DataError(f"the bundled BBQ data is missing: {path}; pass --bbq DIR with BBQ's JSONL files")
    return path


def default_sample_path() -> Path:
    """The bundled 600-item stratified sample (latency prompts and quick tests)."""
    return bundled_path("sample.jsonl")


def load_bbq_source(spec: str | Path | None) -> BBQData:
    """Resolve `--bbq`: None for all the bundled data, `hf:[OWNER/NAME[/CONFIG]][:SPLIT]` for the hub, else a path."""
    if spec is None:
        data = load_bbq(bundled_path("full"))
        return BBQData(data.items, data.dropped, f"bundled BBQ ({len(data.items):,} items, "
                       f"{len(data.categories)} of 11 categories; gate/data/bbq/full/SOURCE.txt)")
    text = str(spec)
    if text.startswith("hf:"):
        body = text[3:]
        if not body:
            return load_bbq_hub()
        path, _, split = body.partition(":")
        dataset, _, config = path.rpartition("/") if path.count("/") == 2 else (path, "", "")
        return load_bbq_hub(dataset or HUB_DATASET, config or HUB_CONFIG, split or HUB_SPLIT)
    return load_bbq(Path(text))
