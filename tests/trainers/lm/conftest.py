"""Fixtures shared by the LM trainer tests."""

import pytest


@pytest.fixture(scope="session")
def tiny_lowrank_world(tmp_path_factory):
    """`tiny_lowrank_world(sft_steps)`: the 4-context × 4-action lowrank world whose SFT checkpoint
    was trained for `sft_steps` steps, built once per session (about 20 s on 2 loaded cores);
    tests only read it (they train into their own tmp_path)."""
    from arena.worlds.lowrank import LowrankWorld, build_lowrank_world

    built = {}

    def world(sft_steps: int):
        if sft_steps not in built:
            built[sft_steps] = build_lowrank_world(tmp_path_factory.mktemp("w") / "lowrank",
                                                   LowrankWorld(n_contexts=4, n_actions=4, sft_steps=sft_steps))
        return built[sft_steps]

    return world
