"""The one LM runtime (arena.lm): the trainer and the tournament encode a prompt to the same ids,
the sampler (inverse CDF, top-p without a full sort, per-row streams), stop strings and keys."""

import numpy as np
import pytest
import torch

from arena.engines import Request, SamplingParams
from arena.errors import ConfigError
from arena.lm import PromptFormat, draw_tokens, encode_prompt, parse_stop, truncate_at_stop

TEXTS = ["Question 1: what is a cat?", "Question 2: rain", "Answer: yes\nQuestion 3: tea"]
CHAT = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def _tokenizer(kind: str):
    """A tiny offline tokenizer: 'bos' adds a BOS token of its own; 'chat' has a chat template."""
    from tokenizers import processors

    from trainers.tiny import build_tokenizer

    tok = build_tokenizer(TEXTS * 3 + ["<|user|><|assistant|><|system|><|end|>"], vocab_size=320)
    tok.add_special_tokens({"bos_token": "<bos>"})
    if kind == "bos":
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)])
    else:
        tok.chat_template = CHAT
    return tok


def _checkpoint(tmp_path, kind):
    from trainers.tiny import build_model, save_checkpoint

    tok = _tokenizer(kind)
    return save_checkpoint(build_model(tok, n_embd=16, n_layer=1, seed=0), tok, tmp_path / kind), tok


@pytest.mark.parametrize("kind", ["bos", "chat"])
@pytest.mark.parametrize("fmt", [PromptFormat(), PromptFormat(template="Q: {prompt}\nA:", system="Be brief.")])
def test_trainer_and_tournament_send_the_same_prompt_ids(tmp_path, monkeypatch, kind, fmt):
    import arena.engines.hf as hf
    from arena.checkpoints import discover_checkpoints
    from trainers.lm import common as C

    path, tok = _checkpoint(tmp_path, kind)
    if kind == "bos":
        assert tok.encode("Q")[0] == tok.bos_token_id and not tok.chat_template
    seen = {}

    def record(model, tok, token_lists, seeds, params):
        seen.update(zip(seeds, token_lists))
        return ["" for _ in token_lists]

    monkeypatch.setattr(hf, "sample_batch", record)
    ckpt = next(c for c in discover_checkpoints(tmp_path).checkpoints if c.name == kind)
    reqs = [Request(t, i) for i, t in enumerate(TEXTS)]
    for _ in hf.HFEngine(batch_size=2).generate(ckpt, reqs, SamplingParams(prompt_format=fmt)):
        pass
    config = C.TrainConfig(policy=str(path), judge="python:x:y", prompts="p", out=str(tmp_path / "o"),
                           chat_template=fmt.chat, prompt_template=fmt.template, system_prompt=fmt.system)
    policy = C.load_policy(config)
    ids, mask = C.encode(policy.tokenizer, TEXTS, "cpu", policy.prompt_format)
    trainer = [row[m.bool()].tolist() for row, m in zip(ids, mask)]
    assert trainer == [seen[i] for i in range(len(TEXTS))]
    first = trainer[0]
    if kind == "bos":
        assert first[0] == tok.bos_token_id and first.count(tok.bos_token_id) == 1
        assert tok.decode(first, skip_special_tokens=True).startswith("Be brief." if fmt.system else "Question 1")
    else:  # the chat template wrote the one BOS; the tokenizer added none
        text = tok.decode(first)
        assert first.count(tok.bos_token_id) == 1 and text.endswith("<|assistant|>")
        assert ("<|system|>Be brief.<|end|>" in text) == bool(fmt.system)


def test_prompt_format_checks_its_input():
    with pytest.raises(ConfigError, match="no \\{prompt\\}"):
        PromptFormat(template="Question:")
    with pytest.raises(ConfigError, match="auto, on or off"):
        PromptFormat(chat="yes")
    with pytest.raises(ConfigError, match="no chat template"):
        encode_prompt(_tokenizer("bos"), "hi", PromptFormat(chat="on"))
    chat = _tokenizer("chat")
    assert encode_prompt(chat, "hi", PromptFormat(chat="off")) == chat.encode("hi")


def _sorted_reference(p: np.ndarray, u: float, top_p: float) -> int:
    """The textbook nucleus draw with a full stable sort (the old engine's rule)."""
    order = np.argsort(-p, kind="stable")
    cdf = np.cumsum(p[order])
    keep = int(np.searchsorted(cdf, top_p, side="left")) + 1
    k = int(np.searchsorted(cdf[:keep], u * cdf[keep - 1], side="right"))
    return int(order[min(k, keep - 1)])


def test_top_p_over_a_topk_prefix_matches_the_full_sort():
    gen = torch.Generator().manual_seed(0)
    V = 5000  # more than the first top-k guess (64), so the prefix has to grow for flat rows
    logits = torch.randn(6, V, generator=gen, dtype=torch.float64) * torch.tensor([[0.1], [0.5], [1], [3], [6], [9]])
    u = torch.rand(6, generator=gen, dtype=torch.float64)
    for top_p in (0.3, 0.9, 0.999):
        got = draw_tokens(logits, u, top_p=top_p).tolist()
        p = torch.softmax(logits.float(), -1).double().numpy()
        assert got == [_sorted_reference(p[b], float(u[b]), top_p) for b in range(6)]
    # each row on its own gives its token: the prefix length chosen for the batch does not matter
    assert [int(draw_tokens(logits[b:b + 1], u[b:b + 1], top_p=0.9)) for b in range(6)] == \
        draw_tokens(logits, u, top_p=0.9).tolist()


def test_temperature_sharpens_and_zero_is_greedy():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    u = torch.tensor([0.15])
    assert int(draw_tokens(logits, u)) == 0
    assert int(draw_tokens(logits, u, temperature=0.1)) == 1      # p ∝ p^10: nearly all on token 1
    assert int(draw_tokens(logits, torch.tensor([0.0]), temperature=0.0)) == 1


def test_stop_strings_parse_and_truncate():
    assert parse_stop(["\\n", "###", "\\n"]) == ("\n", "###")
    assert truncate_at_stop("yes\nQuestion: 2", ("\n",)) == "yes"
    assert truncate_at_stop("a ### b\nc", ("\n", "###")) == "a "
    assert truncate_at_stop("none here", ("\n",)) == "none here"
    with pytest.raises(ConfigError, match="empty"):
        parse_stop([""])


def test_stop_and_prompt_format_enter_the_key_only_when_set():
    old = SamplingParams(max_new_tokens=8)
    # the key of a run stored before stop strings existed (engine + the five original fields)
    from arena.fingerprint import fingerprint_obj

    want = fingerprint_obj({"engine": "hf", "max_new_tokens": 8, "temperature": 1.0, "top_p": 1.0, "seed": 0})
    assert old.key("hf") == want
    keys = {old.key("hf"), SamplingParams(max_new_tokens=8, stop=("\n",)).key("hf"),
            SamplingParams(max_new_tokens=8, prompt_format=PromptFormat(system="x")).key("hf"),
            SamplingParams(max_new_tokens=8, prompt_format=PromptFormat(chat="off")).key("hf")}
    assert len(keys) == 4


def test_engine_stops_at_the_stop_string_and_never_returns_it(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "tournament"))
    import tournament_helpers as h
    from arena.checkpoints import discover_checkpoints
    from arena.engines.hf import HFEngine

    h.make_ckpt(tmp_path / "m", 3)
    ckpt = discover_checkpoints(tmp_path).checkpoints[0]
    reqs = [Request(f"Question {i}: say", 100 + i) for i in range(6)]

    def run(params):
        got = {}
        for batch in HFEngine(batch_size=4).generate(ckpt, reqs, params):
            got.update(batch)
        return [got[i] for i in range(len(reqs))]

    free = run(SamplingParams(max_new_tokens=24, seed=0))
    stop = max("aeiou", key=lambda c: sum(c in t for t in free))  # a character that does occur
    cut = run(SamplingParams(max_new_tokens=24, seed=0, stop=(stop,)))
    assert any(stop in t for t in free)
    # the same stream: each stopped response is the free one cut before its first stop string
    assert cut == [truncate_at_stop(t, (stop,)) for t in free]
    assert all(stop not in t for t in cut)


def test_tournament_cli_stop_reaches_the_store_and_keeps_old_keys(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "tournament"))
    import tournament_helpers as h
    from arena.cli import main
    from arena.store import Store

    ckpts = h.make_ckpts(tmp_path / "ckpts", {"a": 1, "b": 2})
    prompts = h.write_prompts(tmp_path / "prompts.txt", 3)
    common = ["tournament", str(ckpts), "--prompts", str(prompts), "--judge", "python:tournament_helpers:judge",
              "--out", str(tmp_path / "run"), "--rounds", "20", "--max-new-tokens", "16", "--json"]
    assert main(common) == 0
    assert main(common + ["--stop", "e", "--stop", "\\n"]) == 0
    capsys.readouterr()
    store = Store.open(tmp_path / "run")
    free = store.generations(SamplingParams(max_new_tokens=16).key("hf"))
    cut = store.generations(SamplingParams(max_new_tokens=16, stop=("e", "\n")).key("hf"))
    store.close()
    assert len(free) == len(cut) == 6 and any("e" in t for t in free.values())
    assert all("e" not in t and "\n" not in t for t in cut.values())
    assert cut == {k: truncate_at_stop(t, ("e", "\n")) for k, t in free.items()}


def test_forward_arguments_look_through_distributed_wrappers():
    """DDP / FSDP wrappers pass keyword arguments on: the wrapped model's `logits_to_keep` counts."""
    from arena.lm import forward_arguments
    from trainers.tiny import build_model

    model = build_model(_tokenizer("bos"), n_embd=16, n_layer=1)

    class DistributedDataParallel(torch.nn.Module):   # the name is what the look-through checks
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args, **kwargs):
            return self.module(*args, **kwargs)

    assert forward_arguments(model)[1] and forward_arguments(DistributedDataParallel(model))[1]


def test_a_forced_first_token_starts_each_row_and_the_sampler_continues_from_it():
    """`sample(first=...)`: Nash-MP's `--explore-first` explorers. The forced token is kept like a
    drawn one (a stop token there ends the row), and the rest is drawn given it."""
    from arena.lm import sample

    V = 5

    def successor(ids, mask, new):                       # next token: the last one + 1 (mod V), near-certain
        return torch.nn.functional.one_hot((ids[:, -1] + 1) % V, V).float() * 50

    ids, mask = torch.tensor([[0], [0], [0]]), torch.ones((3, 1), dtype=torch.long)
    u = torch.full((3, 4), 0.5)
    drawn = sample(successor, ids, mask, uniforms=u, stop_ids=(4,), pad_id=0)
    assert drawn.tokens[0].tolist() == [1, 2, 3, 4]
    forced = sample(successor, ids, mask, uniforms=u, stop_ids=(4,), pad_id=0, first=torch.tensor([2, 4, 0]))
    assert forced.tokens.tolist() == [[2, 3, 4, 0], [4, 0, 0, 0], [0, 1, 2, 3]]
    assert forced.mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    with pytest.raises(ValueError, match="first must be"):
        sample(successor, ids, mask, uniforms=u, stop_ids=(4,), pad_id=0, first=torch.tensor([1]))


def test_a_temperature_per_new_token_applies_to_that_token_and_the_last_to_the_rest():
    """`sample(temperature=(τ0, τ1, τ2))`: step t draws at τt, the steps after the last at its value
    (Nash-MP's `--explore-second-temperature`); `tempered_logprobs` is that distribution."""
    from arena.lm import draw_tokens, sample
    from trainers.lm.common import tempered_logprobs

    V, T, B = 4, 4, 20000
    logits = torch.tensor([[2.0, 0.0, -1.0, -3.0]] * T) + torch.arange(T)[:, None] * torch.tensor([0.0, 0.5, 0.0, 0.5])

    def fixed(ids, mask, new):                          # logits depend on the position only
        return logits[ids.shape[1] - 1].expand(ids.shape[0], V)

    ids, mask = torch.zeros((B, 1), dtype=torch.long), torch.ones((B, 1), dtype=torch.long)
    u = torch.rand((B, T), generator=torch.Generator().manual_seed(0))
    taus = (1.0, 3.0, 0.5)
    gen = sample(fixed, ids, mask, uniforms=u, stop_ids=(), pad_id=0, temperature=taus)
    for t in range(T):        # row by row the draw is draw_tokens at that step's temperature
        assert torch.equal(gen.tokens[:, t], draw_tokens(logits[t].expand(B, V), u[:, t], temperature=taus[min(t, 2)]))
    q = tempered_logprobs(torch.log_softmax(logits, -1).expand(B, T, V), taus)[0].exp()        # (T, V)
    freq = torch.stack([torch.bincount(gen.tokens[:, t], minlength=V) for t in range(T)]).float() / B
    assert torch.allclose(freq, q, atol=0.015)
    assert torch.allclose(q[1], torch.softmax(logits[1] / 3, -1))
    assert torch.allclose(q[3], torch.softmax(logits[3] / 0.5, -1))
    one = tempered_logprobs(torch.log_softmax(logits, -1)[None], 2.0)[0]        # one temperature throughout
    assert torch.allclose(one, torch.log_softmax(logits / 2, -1))
    with pytest.raises(ValueError, match="non-empty"):
        sample(fixed, ids[:1], mask[:1], uniforms=u[:1], stop_ids=(), pad_id=0, temperature=())
