"""Shared settings for the agent tests: one cheap env, small networks, few eval episodes.

Every test that trains on the pendulum uses ``PEND`` and configs that differ
only in budget, so the compiled programs are built once per session.
"""

import pytest

from gradgym.envs import make

PEND_EPISODE = 100
FAST = {"eval_episodes": 4, "num_evals": 4}


@pytest.fixture(scope="session")
def pend():
    """Inverted pendulum, reward 1 per upright step, episodes of at most 100 steps."""
    return make("inverted_pendulum", episode_length=PEND_EPISODE)


@pytest.fixture(scope="session")
def reacher():
    """Reacher with 50-step episodes (the SHAC and APG gradient and learning tests)."""
    return make("reacher", episode_length=50)
