"""The hf logprob judge against a direct transformers computation; batching, swaps, errors."""

import pytest

from arena.errors import CheckpointError, ConfigError
from judges import Comparison, Failure, judge_both_orders, load_judge
from judges.templates import DEFAULT_ANSWER_PREFIX, DEFAULT_TEMPLATE

@pytest.fixture(scope="module")
def hf_judge(tiny_lm_dir):
    return load_judge(f"hf:{tiny_lm_dir}", batch_size=3)


def _direct(path, texts, add_special_tokens=True):
    """P(label A) / (P(A) + P(B)) from a plain, unbatched transformers forward pass."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    a, b = tok.convert_tokens_to_ids("A"), tok.convert_tokens_to_ids("B")
    out = []
    for text in texts:
        ids = tok(text, return_tensors="pt", add_special_tokens=add_special_tokens).input_ids
        with torch.no_grad():
            probs = torch.softmax(model(ids).logits[0, -1].double(), -1)
        out.append((float(probs[a] / (probs[a] + probs[b])), float(probs[a] + probs[b])))
    return out


def _text(c, template=DEFAULT_TEMPLATE):
    return template.format(prompt=c.prompt, response_a=c.response_a, response_b=c.response_b,
                           label_a="A", label_b="B") + DEFAULT_ANSWER_PREFIX


def test_matches_direct_transformers(hf_judge, tiny_lm_dir, comparisons):
    got = hf_judge.judge(comparisons)
    want = _direct(tiny_lm_dir, [_text(c) for c in comparisons])
    assert [g for g in got] == pytest.approx([w[0] for w in want], abs=1e-6)
    assert hf_judge.label_mass == pytest.approx([w[1] for w in want], abs=1e-6)
    # Far from ½ (swapped labels would show) and content-dependent.
    assert all(abs(g - 0.5) > 0.2 for g in got) and max(got) - min(got) > 1e-3
    d = hf_judge.diagnostics()
    assert 0 < d["label_mass_min"] <= d["label_mass_mean"] <= 1


def test_chat_template_used_when_present(tiny_chat_dir, tiny_lm_dir, comparisons):
    judge = load_judge(f"hf:{tiny_chat_dir}")
    assert judge.chat
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_chat_dir)
    texts = [
        tok.apply_chat_template([{"role": "user", "content": _text(c)[: -len(DEFAULT_ANSWER_PREFIX)]}],
                                tokenize=False, add_generation_prompt=True) + DEFAULT_ANSWER_PREFIX
        for c in comparisons
    ]
    assert texts[0].startswith("<|endoftext|>user: ")
    want = _direct(tiny_chat_dir, texts, add_special_tokens=False)
    assert judge.judge(comparisons) == pytest.approx([w[0] for w in want], abs=1e-6)
    plain = load_judge(f"hf:{tiny_chat_dir}?chat_template=off")
    assert not plain.chat and plain.fingerprint != judge.fingerprint
    with pytest.raises(ConfigError, match="no chat template"):
        load_judge(f"hf:{tiny_lm_dir}", chat_template="on")


def test_batching_and_padding_do_not_change_probabilities(tiny_lm_dir, comparisons):
    many = comparisons + [c.swapped() for c in comparisons] + [Comparison("q", "r" * 40, "s")]
    one = load_judge(f"hf:{tiny_lm_dir}", batch_size=1).judge(many)
    for bs in (2, 5, 64):
        other = load_judge(f"hf:{tiny_lm_dir}", batch_size=bs).judge(many)
        assert other == pytest.approx(one, abs=1e-5)


def test_swapped_pair_gives_mirrored_values(hf_judge, comparisons):
    straight = judge_both_orders(hf_judge, comparisons)
    swapped = judge_both_orders(hf_judge, [c.swapped() for c in comparisons])
    for s, w in zip(straight, swapped):
        assert w.p_ab == pytest.approx(1 - s.p_ba, abs=1e-5)
        assert w.p_ba == pytest.approx(1 - s.p_ab, abs=1e-5)
        assert w.p == pytest.approx(1 - s.p, abs=1e-5)
    assert any(abs(s.p_ab - s.p_ba) > 0.05 for s in straight)  # the random judge has position bias


def test_custom_labels_and_template(tiny_lm_dir, comparisons):
    template = "Q: {prompt}\n1) {response_a}\n2) {response_b}\nBest: "
    judge = load_judge(f"hf:{tiny_lm_dir}", labels="B,A", template=template, answer_prefix="")
    default = load_judge(f"hf:{tiny_lm_dir}", template=template, answer_prefix="")
    flipped = judge.judge(comparisons)
    assert flipped == pytest.approx([1 - x for x in default.judge(comparisons)], abs=1e-9)
    assert judge.fingerprint != default.fingerprint


def test_too_long_prompt_is_a_failure_not_a_crash(hf_judge):
    out = hf_judge.judge([Comparison("p", "word " * 300, "b"), Comparison("p", "a", "b")])
    assert isinstance(out[0], Failure) and "limit" in out[0].reason
    assert isinstance(out[1], float)
    (v,) = judge_both_orders(hf_judge, [Comparison("p", "word " * 300, "b")])
    assert v.p is None and v.error


def test_min_label_mass_turns_into_failures(tiny_lm_dir, comparisons):
    out = load_judge(f"hf:{tiny_lm_dir}", min_label_mass=1.0001).judge(comparisons)
    assert all(isinstance(x, Failure) and "label mass" in x.reason for x in out)


def test_fingerprint_stable_and_content_based(tiny_lm_dir, tmp_path):
    import shutil

    a = load_judge(f"hf:{tiny_lm_dir}").fingerprint
    copy = shutil.copytree(tiny_lm_dir, tmp_path / "renamed")
    assert load_judge(f"hf:{copy}").fingerprint == a  # same bytes, other path
    assert load_judge(f"hf:{copy}?template=Q%3A {{prompt}} {{response_a}} {{response_b}}").fingerprint != a


@pytest.mark.parametrize("opts, error", [
    ({"labels": "Yes please,No"}, "not one"),
    ({"labels": "A,A"}, "labels"),
    ({"labels": "A"}, "labels"),
    ({"template": "no fields"}, "never uses"),
    ({"template": "{prompt} {oops}"}, "cannot be filled"),
    ({"batch_size": 0}, ">="),
    ({"batch_size": "x"}, "integer"),
    ({"dtype": "float8"}, "dtype"),
    ({"nonsense": 1}, "unknown option"),
])
def test_bad_options_raise_config_error(tiny_lm_dir, opts, error):
    with pytest.raises(ConfigError, match=error):
        load_judge(f"hf:{tiny_lm_dir}", **opts)


def test_missing_or_empty_model_dirs(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_judge(f"hf:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError):
        load_judge(f"hf:{tmp_path / 'empty'}")


def test_in_memory_judge_matches_loaded_one(tiny_lm_dir, hf_judge, comparisons):
    from arena.loading import load_causal_lm
    from judges.hf import HFJudge

    model, tok = load_causal_lm(tiny_lm_dir)
    judge = HFJudge(model, tok, fingerprint="in-memory", batch_size=4)
    assert judge.judge(comparisons) == pytest.approx(hf_judge.judge(comparisons), abs=1e-5)
    with pytest.raises(ConfigError):
        HFJudge(model, tok, fingerprint="x", labels=("A", "Yes please"))


def _forward_shapes(judge, tokens, keys) -> list[tuple[int, int]]:
    """The (rows, length) of every forward `shared_label_logprobs` runs on these prompts."""
    fed = []
    forward = judge.model.forward
    judge.model.forward = lambda *a, **kw: fed.append(tuple(kw["input_ids"].shape)) or forward(*a, **kw)
    try:
        judge.shared_label_logprobs(tokens, keys)
    finally:
        del judge.model.forward
    return fed

@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_shared_prefix_equals_whole_prompts(tiny_lm_dir, comparisons, batch_size):
    """Both orders in one call, prefixes shared per question: the same p as each prompt scored whole."""
    import numpy as np

    judge = load_judge(f"hf:{tiny_lm_dir}", batch_size=batch_size)
    both = comparisons + [c.swapped() for c in comparisons]
    tokens = judge.encode(both)
    whole = judge.label_logprobs(tokens)
    shared = judge.shared_label_logprobs(tokens, [c.prompt for c in both])
    p = lambda lp: 1 / (1 + np.exp(lp[:, 1] - lp[:, 0]))  # noqa: E731
    assert p(shared) == pytest.approx(p(whole), abs=1e-5)
    assert shared == pytest.approx(whole, abs=1e-5)
    # The questions give different label log-probabilities, so rows mixed across groups would show.
    assert len({round(float(x), 2) for x in whole[:, 0]}) >= 4
    verdicts = judge_both_orders(judge, comparisons)
    assert [v.p_ab for v in verdicts] == pytest.approx(list(p(whole)[:len(comparisons)]), abs=1e-5)


def test_shared_prefix_runs_fewer_tokens(tiny_lm_dir, comparisons):
    """The question's tokens up to the first response are forwarded once per group, not per prompt."""
    from arena.lm import shared_prefix_length

    judge = load_judge(f"hf:{tiny_lm_dir}", batch_size=64)
    both = comparisons + [c.swapped() for c in comparisons]
    tokens = judge.encode(both)
    fed = _forward_shapes(judge, tokens, [c.prompt for c in both])
    prompts = {c.prompt for c in comparisons}
    assert len(fed) == 1 and fed[0][0] == len(prompts)   # one forward, one packed row per question
    groups = {q: [t for c, t in zip(both, tokens) if c.prompt == q] for q in prompts}
    packed = sum(shared_prefix_length(g) + sum(len(t) - shared_prefix_length(g) for t in g) for g in groups.values())
    assert packed < sum(map(len, tokens))
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert shared_prefix_length([[1, 2], [1, 2]]) == 1  # each keeps a token of its own
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0
    assert len(prompts) == 3


@pytest.mark.parametrize("batch_size", [2, 4])
def test_shared_prefix_forward_holds_no_more_than_batch_size_prompts_of_tokens(tiny_lm_dir, comparisons, batch_size):
    """Packed rows are batched by token slots: a forward is never larger than batch_size whole prompts."""
    judge = load_judge(f"hf:{tiny_lm_dir}", batch_size=batch_size)
    both = comparisons + [c.swapped() for c in comparisons]
    tokens = judge.encode(both)
    fed = _forward_shapes(judge, tokens, [c.prompt for c in both])
    longest = max(map(len, tokens))
    assert fed and all(rows <= batch_size and rows * length <= batch_size * longest for rows, length in fed)
    assert sum(rows for rows, _ in fed) >= len({c.prompt for c in comparisons})
