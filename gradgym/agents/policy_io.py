"""A trained policy from a checkpoint: the robot, the config and the parameters of any agent.

``load_policy(path)`` reads a checkpoint written by ``train(...,
checkpoint_dir=...)`` (a file, or a folder: its newest checkpoint), rebuilds
the env from the header's env options and the agent from the registry with
the saved config, restores the saved state into the agent's own template
(every array's shape and dtype checked) and returns a :class:`LoadedPolicy`:
``act(obs)`` on numpy arrays and ``episodes(keys)`` (returns and lengths on
the trainer's evaluation rollout). The sb3 agent's checkpoint holds its torch
policy's tensors; they are loaded into the same SB3 algorithm rebuilt from
the config (:func:`gradgym.agents.sb3.restore_model`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gradgym.agents import get_agent
from gradgym.agents.base import NumpyPolicy, eval_horizon
from gradgym.agents.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, read_header
from gradgym.agents.config import from_dict
from gradgym.agents.normalize import RunningStats
from gradgym.envs.core import BraxEnv, make

REQUIRED_FIELDS = ("agent", "config", "env", "seed")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file ``path`` names: the file itself, or a folder's newest ``ckpt_*.gradgym``.

    Raises:
        CheckpointError: ``path`` does not exist, or is a folder without checkpoints.
    """
    p = Path(path)
    if p.is_dir():
        found = latest_checkpoint(p)
        if found is None:
            raise CheckpointError(f"No checkpoint (ckpt_*.gradgym) in folder {str(p)!r}; pass the folder given to "
                                  "`gradgym train --checkpoint-dir` (or train(checkpoint_dir=...)) or a checkpoint file.")
        return found
    if not p.exists():
        raise CheckpointError(f"Checkpoint {str(p)!r} does not exist; pass a checkpoint folder or file written by "
                              "`gradgym train --checkpoint-dir DIR`.")
    return p


def read_policy_header(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``(file, header)`` of the checkpoint ``path`` names, with the fields a policy needs checked.

    Raises:
        CheckpointError: a missing/foreign/corrupt file, or a header without agent, config, env or seed.
    """
    file = resolve_checkpoint(path)
    header, _ = read_header(file)
    missing = [k for k in REQUIRED_FIELDS if k not in header]
    if missing:
        raise CheckpointError(f"Checkpoint {str(file)!r} has no {', '.join(missing)} in its header (written by an "
                              "older gradgym); retrain with this version to evaluate or render it.")
    if not isinstance(header["env"], dict) or "robot" not in header["env"]:
        raise CheckpointError(f"Checkpoint {str(file)!r}: header field env is {header['env']!r}, expected the env "
                              "options (robot, backend, episode_length, dtype, noise).")
    return file, header


def env_from_options(options: dict[str, Any]) -> BraxEnv:
    """The env ``gradgym.agents.checkpoint.env_options`` described (lists back to tuples)."""
    noise = {k: tuple(v) if isinstance(v, list) else v for k, v in (options.get("noise") or {}).items()}
    return make(options["robot"], options.get("backend"), episode_length=options.get("episode_length"),
                dtype=options.get("dtype", "float32"), grad_path=options.get("grad_path"), **noise)


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A trained policy restored from a checkpoint.

    Attributes:
        agent: agent name.
        env: the functional env of the run (robot, backend, episode length, dtype, noise).
        config: the agent's config as trained.
        seed: the run's seed.
        header: the checkpoint's header (``env_steps``, ``curve``, ...).
        path: the checkpoint file.
        params: the policy's parameters (sb3: the torch policy's tensors as numpy arrays).
        stats: observation statistics (``None`` for sb3).
        act: ``act(obs) -> action``: the deterministic action on numpy observations,
            one ``(obs_size,)`` or a batch ``(n, obs_size)``.
        rollout: ``rollout(keys, horizon, sample=False) -> (returns, lengths)``, one episode per
            key, as the trainer evaluates (the JAX evaluator or, for sb3, its numpy loop);
            ``sample=True``: with sampled actions instead of the mean action.
    """

    agent: str
    env: BraxEnv
    config: Any
    seed: int
    header: dict[str, Any]
    path: Path
    params: Any
    stats: RunningStats | None
    act: Callable[[np.ndarray], np.ndarray]
    rollout: Callable[..., tuple[np.ndarray, np.ndarray]]

    @property
    def horizon(self) -> int:
        """The run's evaluation horizon (its ``eval_horizon``, else the episode length)."""
        return eval_horizon(self.env, self.config.eval_horizon)

    def episodes(self, keys: jax.Array, sample: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(returns, lengths)`` of one episode per key, ``horizon`` steps at most (``sample``: sampled actions)."""
        returns, lengths = self.rollout(keys, self.horizon, sample)
        return np.asarray(returns), np.asarray(lengths)


def load_policy(path: str | os.PathLike) -> LoadedPolicy:
    """Loads the policy of the checkpoint ``path`` (a file, or a folder: its newest checkpoint).

    Raises:
        CheckpointError: missing path, no checkpoint in the folder, a foreign, corrupt or
            truncated file, an unknown agent, or arrays that do not fit the saved config.
        ValueError: a float64 run while JAX's 64-bit mode is off (the message says how to turn it on).
    """
    file, header = read_policy_header(path)
    options, name, seed = header["env"], header["agent"], header["seed"]
    if options.get("dtype") == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(f"Checkpoint {str(file)!r} is a float64 run: call jax.config.update('jax_enable_x64', True) "
                         "before loading it (the gradgym CLI does this itself).")
    try:
        info = get_agent(name)
        env = env_from_options(options)
        # The header holds every field but the RECORDED_IF_SET ones at their class default: rebuild from the
        # class defaults only, so a robot default changed since the run was written does not change its config.
        cfg = from_dict(info.load().config_class, header["config"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"Checkpoint {str(file)!r} names a run this gradgym cannot rebuild: {e}") from None
    common = {"agent": name, "env": env, "config": cfg, "seed": seed, "header": header, "path": file}
    if info.load().train_fn is not None:  # sb3: the torch policy
        from gradgym.agents import sb3

        model = sb3.restore_model(env, cfg, seed, file)
        predict = sb3.predict_fn(model)
        params = {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}

        def rollout_sb3(keys: jax.Array, horizon: int, sample: bool = False) -> tuple[np.ndarray, np.ndarray]:
            with sb3.one_torch_thread():  # as in training: identical floats
                if not sample:
                    return sb3.rollout_numpy(env, predict, keys, horizon)
                with sb3.torch_seeded(keys):  # torch draws the noise: seeded from the episode keys
                    return sb3.rollout_numpy(env, sb3.predict_fn(model, deterministic=False), keys, horizon)

        def act_sb3(obs: np.ndarray) -> np.ndarray:
            obs = np.asarray(obs, np.float32)
            return predict(obs[None])[0] if obs.ndim == 1 else predict(obs)

        return LoadedPolicy(**common, params=params, stats=None, act=act_sb3, rollout=rollout_sb3)

    from gradgym.agents.evaluation import make_episode_evaluator
    from gradgym.agents.trainer import build_agent

    agent = build_agent(name, env, cfg.program_config())
    state, _ = load_checkpoint(file, agent.init(jax.random.PRNGKey(seed)), {})
    params, stats = agent.policy_params(state)

    def rollout_jax(keys: jax.Array, horizon: int, sample: bool = False) -> tuple[np.ndarray, np.ndarray]:
        evaluate = make_episode_evaluator(env, cfg.hidden, cfg.activation, horizon, sample)
        returns, lengths = evaluate(params, stats, keys)
        return np.asarray(returns), np.asarray(lengths)

    return LoadedPolicy(**common, params=params, stats=stats, act=NumpyPolicy(env, cfg.hidden, cfg.activation,
                                                                               params, stats), rollout=rollout_jax)
