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


def test_only_a_few_tokenizers_are_kept(tiny_model_dir, tmp_path):
    copies = []
    for index in range(6):
        copies.append(tmp_path / f"model-{index}")
        shutil.copytree(tiny_model_dir, copies[-1])
    first = load_tokenizer(copies[0])
    for copy in copies[1:]:
        load_tokenizer(copy)
    assert load_tokenizer(copies[-1]) is load_tokenizer(copies[-1])
    assert load_tokenizer(copies[0]) is not first  # pushed out by the five after it, so read again
