"""T5 (transformers/t5/model.py) equals Hugging Face's T5ForConditionalGeneration with copied weights, in
float64: the encoder's output, the logits and every parameter's gradient, with padding in the inputs and
the targets; greedy generation token for token; the relative position buckets equal Hugging Face's for
offsets in both directions, bidirectional and causal; the weights convert both ways (also through a
save_pretrained folder); span corruption writes T5's format. Nothing is downloaded: the reference is tiny
and random.

Hugging Face's T5LayerNorm computes the mean square in float32 whatever the weights' type (for fp16
training). Left alone, that would cap the float64 comparison at float32 precision, so the tight tests
patch it to compute in the input's type; `test_unpatched_norm_agrees_to_float32_precision` checks the
original at the precision it has."""

import pytest
import torch
from torch.testing import assert_close

from milestones.transformers.t5.model import (
    EOS,
    IGNORE,
    PAD,
    T5,
    corrupt_spans,
    hf_names,
    random_spans,
    relative_position_bucket,
    span_corruption,
)

transformers = pytest.importorskip("transformers")
modeling_t5 = pytest.importorskip("transformers.models.t5.modeling_t5")

TIGHT = dict(rtol=1e-10, atol=1e-12)
VOCAB, LENGTHS, TARGET_LENGTHS = 97, (23, 16, 9), (11, 7, 4)


@pytest.fixture
def float64_norm(monkeypatch):
    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))
    monkeypatch.setattr(modeling_t5.T5LayerNorm, "forward", forward)


def hf_model(seed=0, dropout=0.0, decoder_layers=3):
    """Two encoder layers and three decoder layers (so a swapped stack shows), 8 buckets that reach
    max_distance 20 within the test's lengths (every branch of the bucket function is used)."""
    torch.manual_seed(seed)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=48, num_layers=2,
                                   num_decoder_layers=decoder_layers, num_heads=4, relative_attention_num_buckets=8,
                                   relative_attention_max_distance=20,
                                   dropout_rate=dropout, feed_forward_proj="relu", tie_word_embeddings=True,
                                   pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD,
                                   attn_implementation="eager")
    model = transformers.T5ForConditionalGeneration(config).double()
    with torch.no_grad():  # HF starts the norms at 1: move them, so that a swapped norm shows
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    return model


def batch(seed=1):
    """Three inputs and three targets of different lengths, padded on the right: ids, mask, labels (IGNORE
    at target padding, as Hugging Face's loss expects), target mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (3, max(LENGTHS)), generator=g)
    labels = torch.randint(2, VOCAB, (3, max(TARGET_LENGTHS)), generator=g)
    mask, labels_mask = torch.zeros_like(ids), torch.zeros_like(labels)
    for row, (n, t) in enumerate(zip(LENGTHS, TARGET_LENGTHS)):
        mask[row, :n], labels_mask[row, :t] = 1, 1
    return ids * mask, mask, labels.masked_fill(labels_mask == 0, IGNORE), labels_mask


def test_every_weight_has_a_counterpart_and_the_embeddings_are_tied():
    theirs = hf_model()
    ours = T5.from_hf(theirs)
    assert set(hf_names(ours.config)) == {name for name, _ in ours.named_parameters()}
    assert theirs.lm_head.weight is theirs.shared.weight  # what our single embedding stands for
    assert theirs.encoder.embed_tokens.weight is theirs.shared.weight


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("buckets, max_distance", [(32, 128), (8, 20), (16, 50)])
def test_buckets_equal_hugging_face(bidirectional, buckets, max_distance):
    relative = torch.arange(-300, 301)
    ours = relative_position_bucket(relative, bidirectional, buckets, max_distance)
    theirs = modeling_t5.T5Attention._relative_position_bucket(relative, bidirectional, buckets, max_distance)
    assert torch.equal(ours, theirs)
    assert ours.min() == 0 and ours.max() == buckets - 1  # every offset lands in the table
    if not bidirectional:
        assert (ours[relative >= 0] == 0).all()  # the decoder's future keys share bucket 0


def test_outputs_equal_hugging_face(float64_norm):
    theirs = hf_model().eval()
    ours = T5.from_hf(theirs).eval()
    ids, mask, labels, labels_mask = batch()
    out = theirs(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=labels_mask)
    memory = ours.encode(ids, mask)
    real = mask.bool()
    assert_close(memory[real], out.encoder_last_hidden_state[real], **TIGHT)
    logits = ours(ids, mask, labels, labels_mask)
    target = labels_mask.bool()
    assert_close(logits[target], out.logits[target], **TIGHT)
    assert_close(ours.loss(ids, mask, labels), out.loss, **TIGHT)
    alone = ours.encode(ids[2:, :LENGTHS[2]])  # padding changes nothing
    assert_close(alone[0], memory[2, :LENGTHS[2]], **TIGHT)


def test_positions_come_only_from_the_biases(float64_norm):
    """No absolute positions: with the bias table zeroed, the encoder is blind to order (permuting
    the input permutes the output); with it, it is not."""
    ours = T5.from_hf(hf_model()).eval()
    ids = batch()[0][:1, :LENGTHS[0]]
    order = torch.randperm(ids.shape[1], generator=torch.Generator().manual_seed(0))
    assert (ours.encode(ids[:, order]) - ours.encode(ids)[:, order]).abs().max() > 1e-3
    with torch.no_grad():
        ours.encoder.position_bias.table.weight.zero_()
    assert_close(ours.encode(ids[:, order]), ours.encode(ids)[:, order], **TIGHT)


def test_every_gradient_equals_hugging_face(float64_norm):
    theirs = hf_model()  # training mode, dropout 0
    ours = T5.from_hf(theirs)
    ids, mask, labels, labels_mask = batch()
    ours.loss(ids, mask, labels).backward()
    theirs(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    theirs_params = dict(theirs.named_parameters())
    for name, hf_name in hf_names(ours.config).items():
        grad = ours.get_parameter(name).grad
        assert grad is not None and grad.abs().max() > 0, name
        assert_close(grad, theirs_params[hf_name].grad, rtol=1e-9, atol=1e-12, msg=name)


def test_unpatched_norm_agrees_to_float32_precision():
    theirs = hf_model().eval()
    ours = T5.from_hf(theirs).eval()
    ids, mask, labels, labels_mask = batch()
    out = theirs(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=labels_mask)
    target = labels_mask.bool()
    assert_close(ours(ids, mask, labels, labels_mask)[target], out.logits[target], rtol=1e-5, atol=1e-5)


def test_greedy_generation_equals_hugging_face(float64_norm):
    # Equal stacks here: Hugging Face's generate sizes its key-value cache by the encoder's layer count
    theirs = hf_model(seed=2, decoder_layers=2).eval()
    with torch.no_grad():  # make EOS likely after a few tokens, so that stopping and padding are exercised
        theirs.shared.weight[EOS] *= 2.5
    ours = T5.from_hf(theirs).eval()
    ids, mask, _, _ = batch(seed=4)
    expected = theirs.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False, num_beams=1)
    got = ours.generate(ids, mask, max_new_tokens=12)
    assert torch.equal(got, expected[:, 1:])  # Hugging Face's output starts with the start token
    assert (got == EOS).any()


def test_weights_convert_both_ways_and_through_a_folder(tmp_path):
    ours = T5.from_hf(hf_model(seed=3))
    folder = tmp_path / "t5"
    ours.to_hf().save_pretrained(folder)
    again = T5.from_hf(folder).double()
    for name, p in ours.named_parameters():
        assert torch.equal(p, again.get_parameter(name)), name


def test_span_corruption_writes_t5s_format():
    tokens = torch.arange(10, 20)
    dropped = torch.tensor([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], dtype=torch.bool)
    inputs, target = corrupt_spans(tokens, dropped, sentinels=[99, 98, 97])
    assert inputs.tolist() == [10, 11, 99, 14, 15, 16, 98, 18, 19, EOS]
    assert target.tolist() == [99, 12, 13, 98, 17, 97, EOS]


@pytest.mark.parametrize("length, density, mean_span", [(64, 0.15, 3.0), (64, 0.15, 1.0), (100, 0.5, 8.0)])
def test_random_spans_have_the_asked_density_and_span_count(length, density, mean_span):
    g = torch.Generator().manual_seed(0)
    sentinels = list(range(200, 300))
    for dropped in random_spans(length, density, mean_span, g, rows=50):  # 50 texts, drawn at once
        noise = round(length * density)
        spans = round(noise / mean_span)
        starts = dropped & ~torch.cat([torch.tensor([False]), dropped[:-1]])
        assert dropped.sum() == noise and starts.sum() == spans and not dropped[0]
        inputs, target = corrupt_spans(torch.arange(length), dropped, sentinels)
        assert len(inputs) == length - noise + spans + 1 and len(target) == noise + spans + 2
    inputs, target = span_corruption(torch.arange(length), sentinels, density, mean_span, g)
    assert len(target) == round(length * density) + round(round(length * density) / mean_span) + 2
