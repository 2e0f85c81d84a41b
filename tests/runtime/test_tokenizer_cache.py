"""A tokenizer is loaded once per directory in a process, and again when its files change."""

from __future__ import annotations

import shutil

from gate.runtime.common import load_tokenizer


def test_the_same_directory_gives_the_same_tokenizer(tiny_model_dir):
    assert load_tokenizer(tiny_model_dir) is load_tokenizer(tiny_model_dir)


def test_changed_files_are_read_again(tiny_model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    first = load_tokenizer(copy)
    template = "{% for m in messages %}<{{ m['content'] }}>{% endfor %}"
    (copy / "chat_template.jinja").write_text(template)
    second = load_tokenizer(copy)
    assert second is not first
    assert second.chat_template == template
    assert load_tokenizer(copy) is second
