"""Offline token counting with the tokenizer the LLM client libraries ship.

``litellm`` bundles the ``cl100k_base`` BPE file (it is what
``litellm.token_counter`` falls back to for models without a tokenizer of
their own) and depends on ``tiktoken``. Importing ``litellm`` costs seconds,
so this module never does: it finds the bundled file through the import
system's metadata (``importlib.util.find_spec``, which does not execute the
package), parses it and builds a ``tiktoken.Encoding`` directly. Nothing is
downloaded and no cache directory is written (``tiktoken.get_encoding`` would
fetch the file from the network when no cache holds it).

The encoding is loaded lazily on the first count and cached for the process.
When neither the bundled file nor ``tiktoken`` is available, counts fall back
to ``ceil(len(text) / 4)`` — the usual characters-per-token estimate for
English — and :func:`tokenizer_name` says ``estimate:chars/4`` so reports can
show that the figures are estimates.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from binascii import a2b_base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Name reported when counts are estimated rather than tokenized.
ESTIMATE_NAME = "estimate:chars/4"
#: Environment variable naming a ``.tiktoken`` BPE file to use instead (cl100k layout).
ENV_FILE = "SKVM_TOKENIZER_FILE"

# litellm stores tiktoken cache files under the SHA-1 of their download URL.
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def _cache_key() -> str:
    return hashlib.sha1(_CL100K_URL.encode()).hexdigest()


def bundled_bpe_file() -> Path | None:
    """The cl100k BPE file shipped with litellm (or named by ``SKVM_TOKENIZER_FILE``)."""
    override = os.environ.get(ENV_FILE)
    if override:
        path = Path(override)
        return path if path.is_file() else None
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "litellm_core_utils" / "tokenizers" / _cache_key()
        if path.is_file():
            return path
    return None


def _parse_bpe(data: bytes) -> dict[bytes, int]:
    # binascii directly: base64.b64decode re-checks its argument on each of the
    # 100k lines, which made loading the tokenizer take most of a cold run.
    return {
        a2b_base64(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }


@functools.cache
def _encoding() -> Any | None:
    """The cl100k ``tiktoken.Encoding`` built from the bundled file, or None."""
    path = bundled_bpe_file()
    if path is None:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    data = path.read_bytes()
    if os.environ.get(ENV_FILE) is None and hashlib.sha256(data).hexdigest() != _CL100K_SHA256:
        return None  # a corrupted or different file: estimate rather than miscount
    try:
        return tiktoken.Encoding(
            name="cl100k_base",
            pat_str=_CL100K_PAT,
            mergeable_ranks=_parse_bpe(data),
            special_tokens=_CL100K_SPECIAL,
        )
    except ValueError:  # a malformed override file (bad base64, bad lines): estimate
        return None


def tokenizer_name() -> str:
    """``cl100k_base`` when real tokenization is available, else :data:`ESTIMATE_NAME`."""
    return "cl100k_base" if _encoding() is not None else ESTIMATE_NAME


def is_estimate() -> bool:
    """Whether counts are the chars/4 estimate rather than real token counts."""
    return _encoding() is None


def estimate_tokens(text: str) -> int:
    """The chars/4 estimate of the tokens in ``text`` (rounded up)."""
    return (len(text) + 3) // 4


def count_tokens(text: str) -> int:
    """The number of tokens in ``text`` (special-token markers count as plain text)."""
    if not text:
        return 0
    enc = _encoding()
    if enc is None:
        return estimate_tokens(text)
    return len(enc.encode_ordinary(text))


def count_many(texts: Iterable[str]) -> list[int]:
    """Token counts of several texts, batched when the tokenizer allows it."""
    items = list(texts)
    enc = _encoding()
    if enc is None:
        return [estimate_tokens(t) for t in items]
    return [len(ids) for ids in enc.encode_ordinary_batch(items, num_threads=1)] if items else []


def reset_cache() -> None:
    """Forget the loaded encoding (tests that change ``SKVM_TOKENIZER_FILE`` call this)."""
    _encoding.cache_clear()
