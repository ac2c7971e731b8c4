"""Geometric-mixture sampling: hand-computed probabilities, cache = no cache, padding-invariance."""

import numpy as np
import pytest
import torch

from trainers.mixture import generate, mixture_logprobs, sample_tokens


def test_mixture_logprobs_hand_computed():
    p, q, m = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6]), 0.25
    want = p ** (1 - m) * q ** m
    want /= want.sum()
    got = mixture_logprobs(torch.tensor(np.log(p)), torch.tensor(np.log(q)) + 3.0, m).exp().numpy()
    assert got == pytest.approx(want, abs=1e-12)
    # swapping the coefficient gives a different answer (the test can fail)
    swapped = p ** m * q ** (1 - m)
    assert not np.allclose(got, swapped / swapped.sum(), atol=1e-3)
    assert mixture_logprobs(torch.tensor(np.log(p)), torch.tensor(np.log(q)), 0.0).exp().numpy() == pytest.approx(p)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        mixture_logprobs(torch.zeros(3), torch.zeros(3), 1.5)


def test_sample_tokens_inverse_cdf():
    lp = torch.log(torch.tensor([[0.2, 0.5, 0.3]])).expand(5, 3)
    u = torch.tensor([0.1, 0.25, 0.69, 0.71, 0.99])
    assert sample_tokens(lp, u).tolist() == [0, 1, 1, 2, 2]


@pytest.fixture(scope="module")
def two_models():
    from trainers.tiny import build_model, build_tokenizer

    tok = build_tokenizer(["hello world abc", "the quick brown fox"], vocab_size=300)
    return tok, build_model(tok, n_embd=32, n_layer=1, seed=1).eval(), build_model(tok, n_embd=32, n_layer=1, seed=2).eval()


def test_first_token_follows_the_hand_computed_mixture(two_models):
    tok, pol, ref = two_models
    enc = tok(["hello"], return_tensors="pt")
    with torch.no_grad():
        p = torch.softmax(pol(**enc).logits[0, -1].double(), -1).numpy()
        q = torch.softmax(ref(**enc).logits[0, -1].double(), -1).numpy()
    m = 0.3
    mix = p ** (1 - m) * q ** m
    cdf = np.cumsum(mix / mix.sum())
    u = torch.linspace(0.01, 0.99, 25, dtype=torch.float64)
    g = generate(pol, enc["input_ids"].expand(25, -1), enc["attention_mask"].expand(25, -1), ref=ref, m=m,
                 uniforms=u.unsqueeze(1).expand(25, 3).contiguous(), eos_token_id=tok.eos_token_id,
                 pad_token_id=tok.pad_token_id)
    want = np.searchsorted(cdf, u.numpy(), side="right")
    ok = np.abs(cdf[np.minimum(want, len(cdf) - 1)] - u.numpy()) > 1e-5   # skip float-edge cases
    assert (g.tokens[:, 0].numpy()[ok] == want[ok]).all()


def test_cache_equals_no_cache_and_left_padding_is_neutral(two_models):
    tok, pol, ref = two_models
    prompts = ["hello world", "the quick brown fox the", "abc"]
    enc = tok(prompts, return_tensors="pt", padding=True)
    u = torch.rand(3, 8, generator=torch.Generator().manual_seed(0))
    kw = dict(ref=ref, m=0.4, uniforms=u, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cached = generate(pol, enc["input_ids"], enc["attention_mask"], **kw)
    plain = generate(pol, enc["input_ids"], enc["attention_mask"], use_cache=False, **kw)
    assert torch.equal(cached.tokens, plain.tokens)
    for i, prompt in enumerate(prompts):   # each row alone, no padding
        one = tok([prompt], return_tensors="pt")
        alone = generate(pol, one["input_ids"], one["attention_mask"], **{**kw, "uniforms": u[i: i + 1]})
        n = int(alone.mask.sum())
        assert alone.tokens[0, :n].tolist() == cached.tokens[i, :n].tolist()


def test_banned_tokens_never_sampled(two_models):
    tok, pol, _ = two_models
    enc = tok(["hello"], return_tensors="pt")
    u = torch.rand(16, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        top = int(pol(**enc).logits[0, -1].argmax())
    g = generate(pol, enc["input_ids"].expand(16, -1), enc["attention_mask"].expand(16, -1), uniforms=u,
                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, banned=(top,))
    assert top not in g.tokens[:, 0].tolist()


def test_mixture_endpoints_with_banned_tokens_are_the_two_policies():
    """m = 0 and m = 1 (harmonic:C gives m = 1 at step 0) with a banned token (−inf in both):
    0 · (−inf) must not turn the row into NaN."""
    g = torch.Generator().manual_seed(3)
    lp = torch.randn(2, 5, generator=g, dtype=torch.float64)
    lr = torch.randn(2, 5, generator=g, dtype=torch.float64)
    lp[:, 1] = lr[:, 1] = float("-inf")
    for m, want in ((0.0, lp), (1.0, lr)):
        got = mixture_logprobs(lp, lr, m)
        assert not torch.isnan(got).any()
        assert torch.allclose(got.exp(), torch.softmax(want, -1), atol=1e-12)
    mid = mixture_logprobs(lp, lr, 0.5)
    assert torch.isinf(mid[:, 1]).all() and torch.isfinite(mid[:, [0, 2, 3, 4]]).all()


def test_mixture_with_m_one_samples_the_reference(two_models):
    tok, pol, ref = two_models
    enc = tok(["hello world", "abc"], return_tensors="pt", padding=True)
    u = torch.rand(2, 6, generator=torch.Generator().manual_seed(4))
    kw = dict(uniforms=u, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, banned=(tok.pad_token_id,))
    mixed = generate(pol, enc["input_ids"], enc["attention_mask"], ref=ref, m=1.0, **kw)
    alone = generate(ref, enc["input_ids"], enc["attention_mask"], **kw)
    assert torch.equal(mixed.tokens, alone.tokens)
    assert not torch.equal(generate(pol, enc["input_ids"], enc["attention_mask"], **kw).tokens, alone.tokens)


def test_training_logprobs_are_the_sampling_distribution_under_left_padding(two_models):
    """The log-probs the losses differentiate (one padded forward over prompt + response) are the
    next-token distributions each row was sampled from, as if the row were alone and unpadded."""
    from trainers.lm.common import token_logprobs

    tok, pol, _ = two_models
    prompts = ["hello world", "the quick brown fox the", "abc"]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert not bool(enc["attention_mask"].all())                                   # rows really are padded
    banned = (tok.pad_token_id,)
    u = torch.rand(3, 6, generator=torch.Generator().manual_seed(5))
    g = generate(pol, enc["input_ids"], enc["attention_mask"], uniforms=u, eos_token_id=tok.eos_token_id,
                 pad_token_id=tok.pad_token_id, banned=banned)
    with torch.no_grad():
        lp = token_logprobs(pol, enc["input_ids"], enc["attention_mask"], g, banned)   # (B, T, V)
        for i, prompt in enumerate(prompts):
            one = tok([prompt], return_tensors="pt", add_special_tokens=False)["input_ids"][0]
            n = int(g.mask[i].sum())
            logits = pol(input_ids=torch.cat([one, g.tokens[i, :n]]).unsqueeze(0)).logits[0].float()
            want = torch.log_softmax(logits[:, [v for v in range(logits.shape[-1]) if v not in banned]], -1)
            got = lp[i, :n][:, [v for v in range(logits.shape[-1]) if v not in banned]]
            assert torch.allclose(got, want[len(one) - 1:-1], atol=1e-5)
