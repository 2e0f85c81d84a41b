"""What gate asks of a tokenizer, as a structural type.

A Protocol rather than a base class or transformers' own type: the tokenizers
gate meets (Hugging Face's, including the ones transformers builds from GGUF
metadata) satisfy it without knowing about it, and core imports nothing
heavy. It lists only what gate calls; what gate reads with getattr and a
default (`is_fast`) is left out on purpose.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol


class Tokenizer(Protocol):
    """The members of a Hugging Face tokenizer that gate uses (read-only; gate never sets them)."""

    @property
    def eos_token_id(self) -> int | None: ...

    @property
    def pad_token_id(self) -> int | None: ...

    @property
    def eos_token(self) -> str | None: ...

    @property
    def bos_token(self) -> str | None: ...

    @property
    def chat_template(self) -> str | None: ...

    def __len__(self) -> int:
        """The vocabulary size, added tokens included."""

    def __call__(self, text: str, *, add_special_tokens: bool = ..., return_offsets_mapping: bool = ...,
                 verbose: bool = ...) -> Mapping[str, Any]:
        """`input_ids` (and, when asked, `offset_mapping`: character spans) for one text."""

    def encode(self, text: str, *, add_special_tokens: bool = ...) -> list[int]: ...

    # Any: a str here (one flat list of ids / tokenize=False), but transformers annotates the union of
    # all its modes, so a narrower type would not match its tokenizers.
    def decode(self, token_ids: list[int], *, skip_special_tokens: bool = ...) -> Any: ...

    def apply_chat_template(self, conversation: list[dict[str, str]], *, add_generation_prompt: bool = ...,
                            tokenize: bool = ...) -> Any: ...

    def get_vocab(self) -> dict[str, int]: ...
