"""Turning what the user typed into a local checkpoint directory.

A model reference is, in this order: an existing local path; an alias from
`gate/data/aliases.toml` (`mistral-7b`, `demo:wanda50`, ...); or a Hugging
Face repository id (`org/name`, optionally `org/name@revision`), fetched with
huggingface_hub: from the local cache first, then from the network. Only
safetensors, JSON and tokenizer files are fetched: pickle weights never are.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Callable

from gate.core.errors import ModelNotFoundError, first_line
from gate.core.progress import NULL_REPORTER, Reporter

DEMO_PREFIX = "demo:"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
# What a checkpoint needs from a hub repository; pickles (*.bin, *.pt) are left out on purpose.
HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.jinja", "merges.txt", "vocab.txt"]


@dataclass(frozen=True)
class ModelRef:
    spec: str  # as the user typed it
    path: Path  # the local checkpoint directory
    source: str  # "local", "hub" or "demo"
    repo_id: str | None = None
    revision: str | None = None

    @property
    def label(self) -> str:
        return self.spec if self.source != "local" else str(self.path)


@cache
def aliases() -> dict[str, str]:
    text = resources.files("gate.data").joinpath("aliases.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text)["aliases"])


# Builds (or finds, already built) a demo checkpoint variant and returns its directory: `gate.demo.build`'s
# ensure_demo_checkpoint, passed in by the caller, since reading references does not build models.
DemoBuilder = Callable[..., Path]


def resolve_model(spec: str, reporter: Reporter = NULL_REPORTER, build_demo: DemoBuilder | None = None) -> ModelRef:
    path = Path(spec).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError):  # too long for a path, or a NUL byte: it names nothing
        raise ModelNotFoundError(f"{spec[:80]}{'…' if len(spec) > 80 else ''}: not a usable path") from None
    if exists:
        return ModelRef(spec=spec, path=path.resolve(), source="local")
    if spec.startswith((".", "/", "~")) or spec.endswith("/"):
        raise ModelNotFoundError(f"no such file or directory: {spec}")
    target = aliases().get(spec.lower(), spec)
    if target.startswith(DEMO_PREFIX):
        if build_demo is None:
            raise ModelNotFoundError(f"{spec} names a demo model, and nothing here builds demo models")
        path = build_demo(target.removeprefix(DEMO_PREFIX), reporter=reporter)
        return ModelRef(spec=spec, path=path, source="demo")
    if _REPO_ID.match(target):
        repo_id, _, revision = target.partition("@")
        return ModelRef(spec=spec, path=_from_hub(repo_id, revision or None), source="hub",
                        repo_id=repo_id, revision=revision or None)
    raise ModelNotFoundError(f"{spec}: no such path, alias or Hugging Face repository id (org/name)")


def _from_hub(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except LocalEntryNotFoundError:
        pass  # not cached: fetch it below
    except ValueError:  # huggingface_hub's HFValidationError: not a valid repository id at all
        raise ModelNotFoundError(f"{repo_id[:80]}: not a valid Hugging Face repository id") from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # huggingface_hub raises many kinds: offline, 404, gated, HTTP
        raise ModelNotFoundError(
            f"cannot fetch {repo_id} from the Hugging Face hub and it is not in the local cache ({first_line(exc)})"
        ) from None
