"""RoBERTa (transformers/roberta/model.py) equals Hugging Face's RobertaForMaskedLM with copied weights, in
float64: position ids, hidden states and MLM logits with padding on the right, on the left and in the middle
of a row, and every parameter's gradient of the MLM loss; the weights convert both ways (also through a
save_pretrained folder). Nothing is downloaded: the reference is tiny and random."""

import pytest
import torch
from torch.testing import assert_close

from milestones.transformers.bert.model import mask_tokens
from milestones.transformers.roberta.model import RobertaForMaskedLM, hf_names, position_ids

transformers = pytest.importorskip("transformers")
RobertaEmbeddings = pytest.importorskip("transformers.models.roberta.modeling_roberta").RobertaEmbeddings

TIGHT = dict(rtol=1e-11, atol=1e-12)
VOCAB, POSITIONS, PAD, MASK = 97, 40, 1, 4


def hf_model(seed=0):
    torch.manual_seed(seed)
    config = transformers.RobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=64, max_position_embeddings=POSITIONS, type_vocab_size=1,
                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=PAD,
                                        layer_norm_eps=1e-5, attn_implementation="eager")
    model = transformers.RobertaForMaskedLM(config).double()
    with torch.no_grad():  # HF starts LayerNorms at (1, 0) and biases at 0: move them, so a swapped name shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def batch(seed=1):
    """Four rows of 24 tokens: full, padded on the right, padded on the left, padding in the middle."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (4, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 17:] = 0
    mask[2, :9] = 0
    mask[3, 6:11] = 0
    return torch.where(mask.bool(), ids, PAD), mask


def test_every_weight_has_a_counterpart():
    ours = RobertaForMaskedLM.from_hf(hf_model())
    assert set(hf_names(2)) == {name for name, _ in ours.named_parameters()}


def test_position_ids_equal_hugging_face():
    ids, _ = batch()
    ours = position_ids(ids, PAD)
    assert_close(ours, RobertaEmbeddings.create_position_ids_from_input_ids(ids, PAD))
    assert ours[0].tolist() == list(range(2, 26))  # the first real token sits at pad + 1
    assert ours[2, :9].eq(PAD).all() and ours[2, 9:].tolist() == list(range(2, 17))  # left padding shifts nothing


@pytest.mark.parametrize("row", [0, 1, 2, 3])
def test_outputs_equal_hugging_face(row):
    theirs = hf_model().eval()
    ours = RobertaForMaskedLM.from_hf(theirs).eval()
    ids, mask = batch()
    out = theirs(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    hidden = ours.roberta(ids, mask)
    logits = ours(ids, mask)
    real = mask[row].bool()  # HF and we both compute padding positions, but only real ones matter
    assert_close(hidden[row, real], out.hidden_states[-1][row, real], **TIGHT)
    assert_close(logits[row, real], out.logits[row, real], **TIGHT)
    alone = ours.roberta(ids[row:row + 1, real])  # the same tokens without their padding: the same states
    assert_close(alone[0], hidden[row, real], **TIGHT)
    assert_close(ours.roberta(ids), hidden, **TIGHT)  # the default mask is ids != pad


def test_every_gradient_equals_hugging_face():
    theirs = hf_model()
    ours = RobertaForMaskedLM.from_hf(theirs)
    ids, mask = batch()
    corrupted, targets = mask_tokens(ids, mask.bool(), mask_id=MASK, vocab_size=VOCAB, rate=0.3,
                                     generator=torch.Generator().manual_seed(2))
    corrupted = torch.where(corrupted == PAD, 5, corrupted)  # a random token may not be the padding token
    corrupted = torch.where(mask.bool(), corrupted, PAD)
    ours.loss(corrupted, mask, targets).backward()
    theirs(input_ids=corrupted, attention_mask=mask, labels=targets).loss.backward()
    theirs_params = dict(theirs.named_parameters())
    for name, hf_name in hf_names(2).items():
        assert_close(ours.get_parameter(name).grad, theirs_params[hf_name].grad, rtol=1e-9, atol=1e-12, msg=name)
    assert ours.roberta.embeddings.position.weight.grad[PAD].eq(0).all()  # padding rows learn nothing


def test_weights_convert_both_ways_and_through_a_folder(tmp_path):
    ours = RobertaForMaskedLM.from_hf(hf_model(seed=3))
    folder = tmp_path / "roberta"
    ours.to_hf().save_pretrained(folder)
    again = RobertaForMaskedLM.from_hf(folder).double()
    assert again.config == ours.config
    for name, p in ours.named_parameters():
        assert torch.equal(p, again.get_parameter(name)), name
    ids, mask = batch()
    assert_close(again.to_hf().eval()(input_ids=ids, attention_mask=mask).logits, ours.eval()(ids, mask), **TIGHT)
