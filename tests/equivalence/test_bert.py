"""BERT (transformers/bert/model.py) equals Hugging Face's BertForPreTraining with copied weights, in float64:
hidden states, the pooled [CLS] vector, the MLM and NSP logits and every parameter's gradient, with two
segments and padding; the weights convert both ways (also through a save_pretrained folder); the
masking follows the 80/10/10 rule; and the causal (left-to-right) variant equals HF's BertModel as a
decoder. Nothing is downloaded: the reference is tiny and random."""

import pytest
import torch
from torch.testing import assert_close

from milestones.transformers.bert.model import IGNORE, BertForPreTraining, hf_names, mask_tokens

transformers = pytest.importorskip("transformers")

TIGHT = dict(rtol=1e-11, atol=1e-12)
VOCAB, POSITIONS, LENGTHS = 97, 40, (24, 17, 9)


def hf_model(seed=0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=POSITIONS, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0, attn_implementation="eager")
    model = transformers.BertForPreTraining(config).double()
    with torch.no_grad():  # HF starts LayerNorms at (1, 0) and biases at 0: move them, so a swapped name shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def batch(seed=1):
    """Three pairs of segments padded on the right to 24 tokens: ids, segment ids, attention mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (len(LENGTHS), max(LENGTHS)), generator=g)
    mask = torch.zeros_like(ids)
    segments = torch.zeros_like(ids)
    for row, length in enumerate(LENGTHS):
        mask[row, :length] = 1
        segments[row, length // 2:length] = 1  # sentence B is the second half
    return ids * mask, segments, mask


def test_every_weight_has_a_counterpart():
    ours = BertForPreTraining.from_hf(hf_model())
    assert set(hf_names(2)) == {name for name, _ in ours.named_parameters()}


def test_outputs_equal_hugging_face():
    theirs = hf_model().eval()
    ours = BertForPreTraining.from_hf(theirs).eval()
    ids, segments, mask = batch()
    out = theirs(input_ids=ids, token_type_ids=segments, attention_mask=mask, output_hidden_states=True)
    hidden, pooled = ours.bert(ids, segments, mask)
    mlm, nsp = ours(ids, segments, mask)
    real = mask.bool()  # HF and we both compute padding positions, but only real ones matter
    assert_close(hidden[real], out.hidden_states[-1][real], **TIGHT)
    assert_close(pooled, theirs.bert(input_ids=ids, token_type_ids=segments, attention_mask=mask).pooler_output,
                 **TIGHT)
    assert_close(mlm[real], out.prediction_logits[real], **TIGHT)
    assert_close(nsp, out.seq_relationship_logits, **TIGHT)
    alone, _ = ours.bert(ids[2:, :LENGTHS[2]], segments[2:, :LENGTHS[2]])  # padding changes nothing
    assert_close(alone[0], hidden[2, :LENGTHS[2]], **TIGHT)
    swapped, _ = ours.bert(ids, 1 - segments, mask)
    assert (swapped - hidden).abs().max() > 1e-3  # the segment embedding is used


def test_every_gradient_equals_hugging_face():
    theirs = hf_model()
    ours = BertForPreTraining.from_hf(theirs)
    ids, segments, mask = batch()
    corrupted, targets = mask_tokens(ids, mask.bool(), mask_id=4, vocab_size=VOCAB, rate=0.3,
                                     generator=torch.Generator().manual_seed(2))
    is_next = torch.tensor([1, 0, 1])
    ours.loss(corrupted, segments, mask, targets, is_next).backward()
    theirs(input_ids=corrupted, token_type_ids=segments, attention_mask=mask, labels=targets,
           next_sentence_label=is_next).loss.backward()
    theirs_params = dict(theirs.named_parameters())
    for name, hf_name in hf_names(2).items():
        assert_close(ours.get_parameter(name).grad, theirs_params[hf_name].grad, rtol=1e-9, atol=1e-12, msg=name)


def test_weights_convert_both_ways_and_through_a_folder(tmp_path):
    ours = BertForPreTraining.from_hf(hf_model(seed=3))
    folder = tmp_path / "bert"
    ours.to_hf().save_pretrained(folder)
    again = BertForPreTraining.from_hf(folder).double()
    for name, p in ours.named_parameters():
        assert torch.equal(p, again.get_parameter(name)), name


def test_masking_follows_the_80_10_10_rule():
    ids = torch.randint(5, VOCAB, (400, 250), generator=torch.Generator().manual_seed(0))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False  # [CLS] is never picked
    corrupted, targets = mask_tokens(ids, maskable, mask_id=4, vocab_size=VOCAB,
                                     generator=torch.Generator().manual_seed(1))
    picked = targets != IGNORE
    assert not picked[:, 0].any() and torch.equal(targets[picked], ids[picked])
    assert torch.equal(corrupted[~picked], ids[~picked])
    n = picked.sum().item()
    assert abs(n / maskable.sum().item() - 0.15) < 0.005
    as_mask = (corrupted[picked] == 4).sum().item() / n
    unchanged = (corrupted[picked] == ids[picked]).sum().item() / n  # includes random draws of the same token
    assert abs(as_mask - 0.8) < 0.01 and abs(unchanged - (0.1 + 0.1 / VOCAB)) < 0.01
    assert abs(1 - as_mask - unchanged - 0.1 * (1 - 1 / VOCAB)) < 0.01  # the rest: random other tokens


def test_causal_mask_equals_hugging_face_decoder():
    """The left-to-right baseline of Table 5 is the same network with a causal mask: equal to HF's
    BertModel with is_decoder=True, and position i's state ignores every later token."""
    theirs = hf_model().eval()
    ours = BertForPreTraining.from_hf(theirs).eval()
    theirs.config.is_decoder = True
    ids, segments, _ = batch()
    hidden, _ = ours.bert(ids, segments, causal=True)
    assert_close(hidden, theirs.bert(input_ids=ids, token_type_ids=segments).last_hidden_state, **TIGHT)
    changed = ids.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % VOCAB
    again, _ = ours.bert(changed, segments, causal=True)
    assert_close(again[:, :12], hidden[:, :12], **TIGHT)
    assert (again[:, 12:] - hidden[:, 12:]).abs().max() > 1e-3

