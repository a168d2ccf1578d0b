"""GPT-2's byte-level byte-pair encoding (BPE).

A word-level vocabulary cannot spell a word it never saw; a character-level one makes every
sequence several times longer. BPE (Sennrich et al., 2016, after Gage's 1994 compressor) sits
between: start from single symbols and repeatedly merge the most frequent adjacent pair into a new
symbol, until the vocabulary has the size we want. Frequent words end up as one token, rare ones as
a few pieces, and nothing is ever out of vocabulary.

GPT-2's twist is to run BPE on the UTF-8 *bytes* of the text, not on Unicode characters: the 256
byte values are the base vocabulary, so any string (any language, emoji, broken encodings) is
representable with no unknown token, and 50,000 merges on WebText gave GPT-2's 50,257 tokens
(with <|endoftext|>).

Before counting, a regular expression cuts the text into pieces, and merges never cross a piece:

    's|'t|'re|'ve|'m|'ll|'d          common English contractions
    | ?\\p{L}+ | ?\\p{N}+             a run of letters, or of digits, with at most one leading space
    | ?[^\\s\\p{L}\\p{N}]+            a run of other symbols (punctuation)
    |\\s+(?!\\S)|\\s+                 whitespace (a run before a word leaves its last space to the word)

Without it, "dog", "dog." and "dog!" would each be worth a token of their own.

One token is not text: <|endoftext|>, the id after the last merge, which GPT-2 put between
documents so the model learns where one ends and an unrelated one begins. Only `encode(...,
allow_special=True)` turns the string "<|endoftext|>" into it; by default that string is plain text.

Training counts each distinct piece once, weighted by how often it occurs, and updates the pair
counts incrementally after each merge (only the pieces holding the merged pair change), so a few
thousand merges over a megabyte of text take seconds. Encoding applies the merges to each piece in
the order they were learned (the lowest-ranked pair present first), as GPT-2's encoder does. Each
token spells its own byte string, so its bytes name it: the ranks tiktoken encodes with.
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import regex

from milestones.core.errors import UserError

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
FORMAT = "milestones-byte-level-bpe/1"
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """A printable character for every byte, so merges can be written as text (GPT-2's merges.txt).

    The printable Latin-1 bytes stand for themselves; the other 68 (controls, space, DEL, NBSP,
    soft hyphen) take the characters from U+0100 on, in byte order: the space becomes 'Ġ' (U+0120).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {char: byte for byte, char in BYTE_TO_CHAR.items()}


def merge(ids: list[int], pair: tuple[int, int], new: int) -> list[int]:
    """Replace every occurrence of `pair` in ids, left to right, by the token `new`."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer:
    """Token ids 0-255 are the bytes; merge number r makes token 256 + r from a pair of earlier tokens;
    the last id, `end_of_text`, is <|endoftext|>."""

    def __init__(self, merges: list[tuple[int, int]], pattern: str = GPT2_PATTERN):
        self.pattern, self.merges = pattern, [tuple(pair) for pair in merges]
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}  # pair -> when it was learned
        self.vocab = [bytes([byte]) for byte in range(256)]  # id -> its bytes
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        if len(set(self.vocab)) < len(self.vocab):  # tiktoken's ranks and our save format key tokens by bytes
            raise ValueError("two tokens spell the same bytes")
        self.end_of_text = len(self.vocab)
        self._splitter = regex.compile(pattern)
        self._pieces: dict[bytes, list[int]] = {}  # encode's memory of pieces already seen

    def __len__(self) -> int:
        return len(self.vocab) + 1  # the merges' tokens and <|endoftext|>

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = GPT2_PATTERN) -> BPETokenizer:
        """Learn vocab_size - 257 merges from text (fewer if the text runs out of pairs): with the 256 bytes
        and <|endoftext|>, vocab_size tokens."""
        if vocab_size < 257:
            raise ValueError(f"vocab_size must be at least 257 (the bytes and <|endoftext|>), not {vocab_size}")
        pieces = Counter(_as_bytes(piece) for piece in regex.findall(pattern, text))
        words, counts = [list(piece) for piece in pieces], list(pieces.values())  # each distinct piece once
        pairs: Counter = Counter()  # pair -> occurrences in the text
        where = defaultdict(set)  # pair -> the words that hold it (or once did)
        for w, word in enumerate(words):
            for pair in zip(word, word[1:]):
                pairs[pair] += counts[w]
                where[pair].add(w)
        heap = [(-count, pair) for pair, count in pairs.items()]  # most frequent first, ties to the smaller ids
        heapq.heapify(heap)
        merges = []
        while 257 + len(merges) < vocab_size and heap:
            negative, pair = heapq.heappop(heap)
            if pairs.get(pair, 0) != -negative:
                continue  # stale: the pair's count changed after this entry was pushed
            new = 256 + len(merges)
            merges.append(pair)
            changed = set()
            for w in where.pop(pair):
                word, count = words[w], counts[w]
                merged = merge(word, pair, new)
                if len(merged) == len(word):
                    continue  # the pair left this word in an earlier merge
                for old in zip(word, word[1:]):
                    pairs[old] -= count
                    changed.add(old)
                for fresh in zip(merged, merged[1:]):
                    pairs[fresh] += count
                    where[fresh].add(w)
                    changed.add(fresh)
                words[w] = merged
            for p in changed:
                if pairs[p] > 0:
                    heapq.heappush(heap, (-pairs[p], p))
                else:
                    del pairs[p]
        return cls(merges, pattern)

    def _encode_piece(self, piece: bytes) -> list[int]:
        ids = list(piece)
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))  # the earliest merge
            if pair not in self.ranks:
                break  # no pair left that was ever merged
            ids = merge(ids, pair, 256 + self.ranks[pair])
        return ids

    def encode(self, text: str | bytes, allow_special: bool = False) -> list[int]:
        """Token ids of a string, or of any bytes (invalid UTF-8 included: decode_bytes gives them back).
        With allow_special, each "<|endoftext|>" in the text becomes the one token `end_of_text`."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="surrogateescape")  # undecodable bytes ride as lone surrogates
        if allow_special:
            documents = [self.encode(document) for document in text.split(END_OF_TEXT)]
            return [i for d, ids in enumerate(documents) for i in ([self.end_of_text] if d else []) + ids]
        ids = []
        for piece in self._splitter.findall(text):
            piece = _as_bytes(piece)
            if piece not in self._pieces:
                if len(self._pieces) > 100_000:
                    self._pieces.clear()
                self._pieces[piece] = self._encode_piece(piece)
            ids.extend(self._pieces[piece])
        return ids

    def decode_bytes(self, ids: list[int]) -> bytes:
        return b"".join(self.vocab[i] if i < self.end_of_text else END_OF_TEXT.encode() for i in ids)

    def decode(self, ids: list[int]) -> str:
        """The text of ids; a byte sequence that is not valid UTF-8 shows as U+FFFD, as in GPT-2."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def mergeable_ranks(self) -> dict[bytes, int]:
        """Each token's bytes -> its id: the ranks a tiktoken.Encoding encodes with."""
        return {token: i for i, token in enumerate(self.vocab)}

    def save(self, path: str | Path) -> None:
        """Write the pattern and the merges as JSON, each merge's tokens spelled as in GPT-2's merges.txt."""
        spell = ["".join(BYTE_TO_CHAR[byte] for byte in token) for token in self.vocab]
        state = {"format": FORMAT, "pattern": self.pattern, "merges": [[spell[a], spell[b]] for a, b in self.merges]}
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False, indent=0), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
            if state.get("format") != FORMAT:
                raise ValueError(f"format {state.get('format')!r}")
            ids = {bytes([byte]): byte for byte in range(256)}
            merges = []
            for left, right in state["merges"]:
                a, b = (ids[bytes(CHAR_TO_BYTE[char] for char in token)] for token in (left, right))
                merges.append((a, b))
                ids[bytes(CHAR_TO_BYTE[char] for char in left + right)] = 255 + len(merges)
            return cls(merges, state["pattern"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"cannot read the tokenizer {path}: {error}") from None


def _as_bytes(piece: str) -> bytes:
    return piece.encode("utf-8", errors="surrogateescape")
