"""Any Stable-Baselines3 algorithm on the SB3 VecEnv shell (``GradGymSB3VecEnv``).

Training runs SB3's own ``learn`` in ``num_evals`` chunks; after each chunk the
deterministic policy is scored on the same fixed episodes as the JAX agents
(a numpy loop over the jitted, vmapped core), so curves are comparable.
Checkpoints hold the torch policy's tensors as msgpack (no pickle) and the
env options; :func:`restore_model` rebuilds the algorithm from them (what
``gradgym eval``/``render --checkpoint`` use). Resuming an SB3 run is not
supported (SB3's optimiser/rollout state lives in torch). With ``log_dir``, the
evaluation points and SB3's own ``train/*`` scalars (losses, entropy, KL, ...)
go to a :class:`gradgym.agents.logs.TrainLog`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradgym.agents.base import eval_horizon, eval_keys
from gradgym.agents.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from gradgym.agents.config import CommonConfig, check_int
from gradgym.agents.progress import Progress
from gradgym.agents.result import Curve, TrainResult, summarize
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import strong_types

TORCH_ACTIVATIONS = {"swish": "SiLU", "tanh": "Tanh", "relu": "ReLU", "elu": "ELU"}


@dataclasses.dataclass(frozen=True)
class Sb3Config(CommonConfig):
    """Stable-Baselines3 settings.

    Attributes:
        algorithm: SB3 algorithm class name (``PPO``, ``A2C``, ``SAC``, ``TD3``, ``DDPG``).
        num_envs: robots in the SB3 VecEnv.
        algo_kwargs: extra keyword arguments for the algorithm (e.g. ``{"n_steps": 256}``).
    """

    algorithm: str = "PPO"
    num_envs: int = 8
    algo_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        import stable_baselines3

        if not isinstance(self.algorithm, str) or not hasattr(stable_baselines3, self.algorithm):
            names = [n for n in ("PPO", "A2C", "SAC", "TD3", "DDPG") if hasattr(stable_baselines3, n)]
            raise ValueError(f"config field 'algorithm' is {self.algorithm!r}; use an SB3 algorithm name: "
                             f"{', '.join(names)}.")
        check_int("num_envs", self.num_envs)
        if not isinstance(self.algo_kwargs, dict):
            raise ValueError(f"config field 'algo_kwargs' must be a dict, got {self.algo_kwargs!r}.")

    def __hash__(self) -> int:
        return hash((self.algorithm, self.num_envs, repr(sorted(self.algo_kwargs.items())), self.total_steps))


ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {
    "inverted_pendulum": {"algo_kwargs": {"n_steps": 128, "batch_size": 128, "learning_rate": 1e-3}},
}
DEFAULT_ALGO_KWARGS = {"PPO": {"n_steps": 256, "batch_size": 256}}


@functools.lru_cache(maxsize=16)
def _batched_core(env: BraxEnv):
    # Strong types: the reset state and the step state share one compiled step.
    return (jax.jit(lambda k: strong_types(jax.vmap(env.reset)(k))),
            jax.jit(lambda s, a: strong_types(jax.vmap(env.step)(s, a))))


def rollout_numpy(env: BraxEnv, policy: Callable[[np.ndarray], np.ndarray], keys: jax.Array,
                  horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode (returns, lengths) of ``policy(obs[n, d]) -> actions[n, a]`` (numpy) on the core.

    Same semantics as :func:`gradgym.envs.rollout`: one episode per key,
    rewards after the episode ends are masked; a length counts the steps up
    to and including the one that ended the episode (``horizon`` if none did).
    """
    reset, step = _batched_core(env)
    state = reset(jnp.stack([jax.random.split(k)[0] for k in keys]))
    alive = np.ones(len(keys), np.float64)
    total = np.zeros(len(keys), np.float64)
    length = np.zeros(len(keys), np.int64)
    for _ in range(horizon):
        action = np.asarray(policy(np.asarray(state.obs)), np.float32)
        state = step(state, jnp.asarray(action))
        total += alive * np.asarray(state.reward, np.float64)
        length += alive.astype(np.int64)
        alive *= 1.0 - np.asarray(state.done, np.float64)
        if not alive.any():
            break
    return total, length


def evaluate_numpy(env: BraxEnv, policy: Callable[[np.ndarray], np.ndarray], keys: jax.Array,
                   horizon: int) -> np.ndarray:
    """Per-episode returns of :func:`rollout_numpy` (the training curve's evaluation)."""
    return rollout_numpy(env, policy, keys, horizon)[0]


@contextlib.contextmanager
def torch_seeded(keys: jax.Array) -> Iterator[None]:
    """Seeds torch's generator from the JAX ``keys`` (restored on exit): sampled actions repeat with the keys."""
    import torch

    seed = int(jax.random.randint(jax.random.fold_in(keys[0], len(keys)), (), 0, 2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Runs torch on one intra-op thread (restored on exit).

    Small MLPs gain nothing from intra-op threads, and spinning threads starve
    the JAX env step on a busy machine; evaluating under the same setting as
    training also keeps the policy's float results identical.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def make_model(env: BraxEnv, cfg: Sb3Config, seed: int) -> tuple[Any, Any]:
    """``(model, venv)``: ``cfg.algorithm`` with an MLP policy on the SB3 shell of ``env``'s robot."""
    import stable_baselines3
    import torch
    from stable_baselines3.common.vec_env import VecMonitor

    from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv

    noise = {k: v for k, v in dataclasses.asdict(env.noise).items() if v not in (None, 0.0)}
    venv = VecMonitor(GradGymSB3VecEnv(env.robot, num_envs=cfg.num_envs, backend=env.backend,
                                       max_episode_steps=env.episode_length or -1, **noise))
    venv.seed(seed)
    kwargs = {**DEFAULT_ALGO_KWARGS.get(cfg.algorithm, {}), **cfg.algo_kwargs}
    act = getattr(torch.nn, TORCH_ACTIVATIONS[cfg.activation])
    policy_kwargs = {"net_arch": list(cfg.hidden), "activation_fn": act, **kwargs.pop("policy_kwargs", {})}
    model = getattr(stable_baselines3, cfg.algorithm)("MlpPolicy", venv, seed=seed, device="cpu", verbose=0,
                                                      policy_kwargs=policy_kwargs, **kwargs)
    return model, venv


def predict_fn(model: Any, deterministic: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """``policy(obs[n, d]) -> actions[n, a]``: the model's deterministic action (float32, clipped to the space);
    ``deterministic=False``: an action sampled from the policy (torch's generator draws the noise)."""

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(np.asarray(obs, np.float32), deterministic=deterministic)[0], np.float32)

    policy.model = model  # type: ignore[attr-defined]
    return policy


def restore_model(env: BraxEnv, cfg: Sb3Config, seed: int, path: str | os.PathLike) -> Any:
    """The SB3 model whose policy tensors are stored in the checkpoint at ``path``.

    Builds the algorithm as :func:`train_sb3` did (:func:`make_model`) and
    loads the saved ``policy.state_dict()`` into it; names, shapes and dtypes
    are checked (:class:`~gradgym.agents.checkpoint.CheckpointError` otherwise).
    """
    import torch

    model, venv = make_model(env, cfg, seed)
    venv.close()
    template = {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}
    params, _ = load_checkpoint(path, template, {})
    model.policy.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in params.items()})
    return model


def train_sb3(env: BraxEnv, cfg: Sb3Config, seed: int, *, checkpoint_dir=None, resume=False, progress=True,
              log_dir: str | os.PathLike | None = None) -> TrainResult:
    """Trains ``cfg.algorithm`` on the SB3 shell of ``env``'s robot; see :func:`gradgym.agents.train`.

    ``log_dir``: write the evaluation points and SB3's ``train/*`` scalars to
    ``log_dir/sb3-<robot>-seed<seed>/`` (:class:`~gradgym.agents.logs.TrainLog`).
    """
    if resume:
        raise ValueError("resume is not supported for the sb3 agent (SB3 keeps optimiser state in torch); "
                         "train from scratch or use apg/ppo/es.")
    from stable_baselines3.common.logger import Logger

    model, venv = make_model(env, cfg, seed)
    with contextlib.ExitStack() as stack:
        stack.callback(venv.close)
        log = None
        if log_dir is not None:
            from gradgym.agents.logs import TrainLog

            log = stack.enter_context(TrainLog(log_dir, f"sb3-{env.robot}-seed{seed}"))
        # Without a logger of its own, every ``learn`` call (one per evaluation chunk) would make an empty
        # SB3-<date> directory in the system's temp folder. A ``tensorboard_log`` in ``algo_kwargs`` keeps
        # SB3's own logger, which writes there.
        if not cfg.algo_kwargs.get("tensorboard_log"):
            model.set_logger(Logger(folder=None, output_formats=[_train_log_writer(log)] if log is not None else []))
        stack.enter_context(one_torch_thread())
        return _learn(env, cfg, seed, model, checkpoint_dir, progress, log)


def _train_log_writer(log: Any) -> Any:
    """An SB3 logger output that forwards the numeric ``train/*`` values of each dump to ``log``."""
    from stable_baselines3.common.logger import KVWriter

    class Writer(KVWriter):
        def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
            scalars = {k[len("train/"):]: [float(v)] for k, v in key_values.items()
                       if k.startswith("train/") and isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
            if scalars:
                log.record_updates([step], scalars)

        def close(self) -> None:
            pass

    return Writer()


def _progress_callback(bar: Progress, curve: Curve, clock: list[float]):
    """An SB3 callback that moves ``bar`` after every vectorised step (``clock[0]``: training s before this chunk)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Bar(BaseCallback):
        def _on_training_start(self) -> None:
            self._t0 = time.perf_counter()

        def _on_step(self) -> bool:
            wall = clock[0] + time.perf_counter() - self._t0
            bar.update(self.model.num_timesteps, wall, curve.returns[-1])
            return True

    return _Bar()


def _learn(env, cfg, seed, model, checkpoint_dir, progress, log) -> TrainResult:
    from gradgym.agents.checkpoint import env_options

    policy = predict_fn(model)
    keys, horizon = eval_keys(seed, cfg.eval_episodes), eval_horizon(env, cfg.eval_horizon)
    curve, elapsed = Curve(), 0.0

    def evaluate() -> None:
        curve.append(model.num_timesteps, elapsed, float(np.mean(evaluate_numpy(env, policy, keys, horizon))))
        if log is not None:
            log.record_eval(model.num_timesteps, elapsed, curve.returns[-1],
                            model.num_timesteps / elapsed if elapsed > 0 else 0.0)

    evaluate()
    clock = [0.0]  # training seconds before the current chunk, read by the callback
    with Progress(f"sb3-{cfg.algorithm} {env.robot} seed {seed}", cfg.total_steps, progress) as bar:
        bar.update(0, 0.0, curve.returns[-1])
        callback = _progress_callback(bar, curve, clock) if progress else None
        for i in range(1, cfg.num_evals + 1):
            target = round(i * cfg.total_steps / cfg.num_evals)
            t0 = time.perf_counter()
            if target > model.num_timesteps:
                model.learn(target - model.num_timesteps, reset_num_timesteps=False, progress_bar=False,
                            callback=callback)
            elapsed += time.perf_counter() - t0
            clock[0] = elapsed
            if log is not None:  # SB3 dumps an update's train/* values at the next iteration: flush the last one
                model.logger.dump(model.num_timesteps)
            evaluate()
            bar.update(model.num_timesteps, elapsed, curve.returns[-1], force=True)
    params = {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}
    if checkpoint_dir is not None:
        header = {"agent": "sb3", "config": cfg.to_dict(), "env": env_options(env), "seed": seed,
                  "iteration": cfg.num_evals, "env_steps": model.num_timesteps, "wall_s": elapsed,
                  "curve": curve.to_dict(), "history": {}}
        save_checkpoint(checkpoint_path(checkpoint_dir, cfg.num_evals), params, header)
    return TrainResult(agent="sb3", robot=env.robot, seed=seed, config=cfg, curve=curve, params=params,
                       metrics=summarize({}, curve, 0), policy=policy)
