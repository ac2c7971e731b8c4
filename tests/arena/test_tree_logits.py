"""`arena.lm.tree_logits`: a prefix and its suffixes packed in one row give each suffix's whole-sequence logits."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _model(kind: str, attn: str):
    torch.manual_seed(0)
    common = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    if kind == "llama":
        config = transformers.LlamaConfig(**common)
        cls = transformers.LlamaForCausalLM
    elif kind == "qwen2":
        config = transformers.Qwen2Config(**common)
        cls = transformers.Qwen2ForCausalLM
    else:  # Gemma 3 text: sliding and full attention layers, head_dim set explicitly
        config = transformers.Gemma3TextConfig(**common, head_dim=8, sliding_window=64,
                                               layer_types=["sliding_attention", "full_attention"],
                                               final_logit_softcapping=2.0)   # applied after the output head
        cls = transformers.Gemma3ForCausalLM
    config._attn_implementation = attn
    return cls(config).eval()


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", ["llama", "qwen2", "gemma3"])
def test_tree_logits_equal_whole_sequences(kind, attn):
    from arena.lm import tree_attention_supported, tree_logits

    model = _model(kind, attn)
    assert tree_attention_supported(model)
    g = torch.Generator().manual_seed(1)
    rand = lambda n: torch.randint(3, 97, (n,), generator=g).tolist()  # noqa: E731
    trees = [(rand(9), [rand(4), rand(7), rand(1)]), (rand(2), [rand(12), rand(3)]), (rand(15), [rand(5)])]
    with torch.no_grad():
        packed = tree_logits(model, trees, pad_id=0)
        whole = torch.stack([model(input_ids=torch.tensor([p + s])).logits[0, -1]
                             for p, suffixes in trees for s in suffixes]).float()
    assert packed.shape == whole.shape == (6, 97)
    assert torch.allclose(packed, whole, atol=1e-4), (packed - whole).abs().max()
    # A suffix that saw another suffix would differ: the mask is what keeps them apart.
    leaky = torch.stack([model(input_ids=torch.tensor([trees[0][0] + trees[0][1][0] + trees[0][1][1]])).logits[0, -1]])
    assert not torch.allclose(leaky[0].float(), packed[1], atol=1e-3)


def test_tree_logits_refuses_empty_parts():
    from arena.lm import tree_logits

    with pytest.raises(ValueError, match="non-empty"):
        tree_logits(_model("llama", "sdpa"), [([], [[1]])], pad_id=0)


def test_tree_logits_sends_only_the_suffix_ends_through_the_output_head():
    """The head sees one hidden state per suffix, not every row at every kept position."""
    from arena.lm import tree_logits

    model = _model("gemma3", "sdpa")
    seen = []
    handle = model.get_output_embeddings().register_forward_hook(lambda _m, args, out: seen.append(args[0].shape))
    trees = [([5, 6, 7], [[8, 9], [10, 11, 12, 13]]), ([5], [[14], [15, 16, 17, 18, 19, 20]])]
    try:
        with torch.no_grad():
            logits = tree_logits(model, trees, pad_id=0)
    finally:
        handle.remove()
    assert seen == [torch.Size([1, 4, 32])] and logits.shape == (4, 97)
