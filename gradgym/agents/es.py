"""Evolution strategies on the core via evosax (``init/ask/tell``).

Default: antithetic OpenAI-ES with centred-rank fitness shaping (Salimans et
al. 2017, arXiv 1703.03864). Other evosax strategies by name: ``ars``
(Augmented Random Search, Mania et al. 2018, arXiv 1803.07055: SGD on the
best ``elite_ratio`` of the antithetic directions, scaled by their return
std), ``pgpe``, ``snes``, ``cma_es``, ``pes`` (Persistent ES, Vicol et al.
2021, arXiv 2112.13835, for truncated unrolls) or any key of
``evosax.algorithms.algorithms``.
Fitness is the return of the deterministic (mean) policy over ``horizon``
steps, vmapped over the population; all members of a generation start from the
same sampled state (common random numbers). evosax minimises, so fitness is
the negated return.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import algorithms as EVOSAX_ALGORITHMS
from evosax.core.fitness_shaping import centered_rank_fitness_shaping_fn, identity_fitness_shaping_fn
from flax import struct

from gradgym.agents.base import init_policy_params, observe, policy_net
from gradgym.agents.config import CommonConfig, check_bool, check_float, check_int
from gradgym.agents.normalize import RunningStats, init_stats, normalize
from gradgym.envs.core import BraxEnv
from gradgym.jax_utils import strong_types
from gradgym.sharding import constrain_batch

STRATEGIES = {"open_es": "Open_ES", "ars": "ARS", "pgpe": "PGPE", "snes": "SNES", "cma_es": "CMA_ES", "pes": "PersistentES"}


@dataclasses.dataclass(frozen=True)
class EsConfig(CommonConfig):
    """Evolution-strategy settings.

    Attributes:
        strategy: ``open_es`` (default), ``ars``, ``pgpe``, ``snes``, ``cma_es``,
            ``pes``, or any evosax algorithm name (e.g. ``"xNES"``).
        population_size: candidates per generation (even: antithetic pairs).
        sigma: initial perturbation std in parameter space.
        learning_rate: learning rate of the mean: Adam for open_es, pgpe and
            pes; plain SGD (the paper's step size) for ars.
        elite_ratio: for ``ars``: the fraction of antithetic directions whose
            better return is highest that enter the update (ARS's b / N).
        horizon: fitness unroll length; ``None`` = the env's episode length.
        pes_truncation: for ``pes``: steps per partial unroll (K); must divide
            ``horizon`` (T). Ignored by other strategies.
        obs_norm: normalise observations with running statistics.
        reward_shift: subtracted from every reward of a fitness unroll (not
            from evaluations). ARS's trick for robots with a survive bonus:
            with ``reward_shift`` = the bonus, standing still is worth
            nothing and only forward progress raises fitness.
    """

    strategy: str = "open_es"
    population_size: int = 32
    sigma: float = 0.05
    learning_rate: float = 0.02
    horizon: int | None = None
    pes_truncation: int = 50
    obs_norm: bool = True
    elite_ratio: float = 0.5
    reward_shift: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strategy not in STRATEGIES and self.strategy not in EVOSAX_ALGORITHMS:
            raise ValueError(
                f"config field 'strategy' is {self.strategy!r}; use one of {', '.join(STRATEGIES)} "
                f"or an evosax algorithm name ({', '.join(sorted(EVOSAX_ALGORITHMS))})."
            )
        check_int("population_size", self.population_size, 2)
        if self.population_size % 2:
            raise ValueError(f"config field 'population_size' must be even (antithetic pairs), got "
                             f"{self.population_size}.")
        check_float("sigma", self.sigma, 0.0, low_open=True)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        if self.horizon is not None:
            check_int("horizon", self.horizon)
        check_int("pes_truncation", self.pes_truncation)
        if self.strategy == "pes" and self.horizon is not None and self.horizon % self.pes_truncation:
            raise ValueError(f"config field 'pes_truncation' ({self.pes_truncation}) must divide 'horizon' "
                             f"({self.horizon}) for strategy 'pes'.")
        check_bool("obs_norm", self.obs_norm)
        check_float("elite_ratio", self.elite_ratio, 0.0, 1.0, low_open=True)
        check_float("reward_shift", self.reward_shift, -math.inf)


ROBOT_DEFAULTS: dict[str, dict[str, Any]] = {
    "inverted_pendulum": {"population_size": 16, "sigma": 0.1, "learning_rate": 0.05},
    # Locomotion: ARS (Mania et al. 2018) with a linear policy, their step sizes and noise; docs/agents.md.
    # Halfcheetah, their HalfCheetah setting (32 directions, best 4), whole episodes: 2,377 at 2M steps,
    # seed 0 (OpenAI-ES with the 4x32 MLP on 200-step unrolls: 333; 200-step unrolls with ARS: 1,470).
    "halfcheetah": {"strategy": "ars", "hidden": (), "population_size": 64, "elite_ratio": 0.125, "sigma": 0.03,
                    "learning_rate": 0.02, "horizon": 1000},
    # Ant, their Ant setting (60 directions, best 20) with the survive bonus shifted out, on 200-step unrolls
    # (5x the generations of whole episodes): 3,331 at 3M, seed 0 (whole episodes: 1,050; OpenAI-ES: 972).
    "ant": {"strategy": "ars", "hidden": (), "population_size": 120, "elite_ratio": 1 / 3, "sigma": 0.025,
            "learning_rate": 0.015, "horizon": 200, "reward_shift": 1.0},
}


def make_strategy(cfg: EsConfig, solution: Any):
    """Builds the evosax strategy and its params for ``cfg``."""
    name = STRATEGIES.get(cfg.strategy, cfg.strategy)
    cls = EVOSAX_ALGORITHMS[name]
    adam = optax.adam(cfg.learning_rate)
    if name == "Open_ES":
        es = cls(cfg.population_size, solution, use_antithetic_sampling=True, optimizer=adam,
                 std_schedule=optax.constant_schedule(cfg.sigma), fitness_shaping_fn=centered_rank_fitness_shaping_fn)
    elif name == "ARS":
        es = cls(cfg.population_size, solution, optimizer=optax.sgd(cfg.learning_rate),
                 std_schedule=optax.constant_schedule(cfg.sigma))
        es.elite_ratio = cfg.elite_ratio  # evosax fixes b / N = 0.5 in __init__; num_elites reads this attribute
    elif name == "PersistentES":
        es = cls(cfg.population_size, solution, optimizer=adam, std_schedule=optax.constant_schedule(cfg.sigma),
                 fitness_shaping_fn=identity_fitness_shaping_fn)
    elif name == "PGPE":
        es = cls(cfg.population_size, solution, optimizer=adam)
    else:
        es = cls(cfg.population_size, solution)
    params = es.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=jnp.asarray(cfg.sigma, jnp.asarray(params.std_init).dtype))
    return es, params


@struct.dataclass
class EsState:
    """Training state: the evosax state, obs statistics, PES env states."""

    es_state: Any
    stats: RunningStats
    key: jax.Array
    env_state: Any
    alive: jax.Array


class Es:
    """ES on one env and config; :meth:`iterate` is one jitted generation."""

    name = "es"

    def __init__(self, env: BraxEnv, config: EsConfig):
        self.env = env
        self.config = config
        self.horizon = config.horizon or env.episode_length or 1000
        self.pes = STRATEGIES.get(config.strategy, config.strategy) == "PersistentES"
        if self.pes and self.horizon % config.pes_truncation:
            raise ValueError(f"config field 'pes_truncation' ({config.pes_truncation}) must divide the horizon "
                             f"({self.horizon}); set 'horizon' or 'pes_truncation'.")
        self.unroll_len = config.pes_truncation if self.pes else self.horizon
        self.steps_per_iter = config.population_size * self.unroll_len
        self._policy_fn = policy_net(env.action_size, config.hidden, config.activation)[1]
        template = init_policy_params(env, config.hidden, config.activation, jax.random.PRNGKey(0))
        self.strategy, self.es_params = make_strategy(config, template)
        if self.pes:
            self.es_params = self.es_params.replace(T=self.horizon, K=config.pes_truncation)
        self.init = jax.jit(lambda key: strong_types(self._init(key)))
        self.iterate = jax.jit(lambda ts: strong_types(self._iterate(ts)))

    def _init(self, key: jax.Array) -> EsState:
        k_pol, k_es, k_env, k_run = jax.random.split(key, 4)
        params = init_policy_params(self.env, self.config.hidden, self.config.activation, k_pol)
        es_state = self.strategy.init(k_es, params, self.es_params)
        n = self.config.population_size if self.pes else 0
        env_state = jax.vmap(self.env.reset)(jnp.broadcast_to(k_env, (n, *k_env.shape))) if self.pes else ()
        return EsState(es_state, init_stats(self.env.observation_size), k_run, env_state, jnp.ones((n,)))

    def policy_params(self, ts: EsState) -> tuple[Any, RunningStats]:
        return self.strategy.get_mean(ts.es_state), ts.stats

    def unroll(self, params, stats, state, alive, key):
        """Deterministic policy for ``unroll_len`` steps; returns (shifted return, state, alive, obs, obs mask)."""
        shift = jnp.asarray(self.config.reward_shift, state.reward.dtype)

        def one(carry, _):
            s, a = carry
            nxt = self.env.step(s, self._policy_fn(params, normalize(stats, s.obs), None))
            nxt = jax.tree.map(lambda x, y: jnp.where(a > 0, x, y), nxt, s)  # freeze after the episode ends
            return (nxt, a * (1.0 - nxt.done.astype(a.dtype))), ((nxt.reward - shift) * a, s.obs, a)

        (state, alive), (rew, obs, mask) = jax.lax.scan(one, (state, alive), None, self.unroll_len)
        return jnp.sum(rew), state, alive, obs, mask

    def _iterate(self, ts: EsState) -> tuple[EsState, dict[str, jax.Array]]:
        key, k_ask, k_tell, k_env = jax.random.split(ts.key, 4)
        pop, es_state = self.strategy.ask(k_ask, ts.es_state, self.es_params)
        pop = constrain_batch(pop)  # split the population over the devices of the mesh in context (if any)
        n = self.config.population_size
        fresh = constrain_batch(jax.vmap(self.env.reset)(jnp.broadcast_to(k_env, (n, *k_env.shape))))
        if self.pes:  # a new inner problem starts when evosax's counter wraps to 0
            restart = ts.es_state.inner_step_counter == 0
            state = jax.tree.map(lambda a, b: jnp.where(restart, a, b), fresh, ts.env_state)
            alive = jnp.where(restart, jnp.ones((n,)), ts.alive)
        else:
            state, alive = fresh, jnp.ones((n,))
        ret, state, alive, obs, mask = jax.vmap(self.unroll, in_axes=(0, None, 0, 0, None))(pop, ts.stats, state,
                                                                                             alive, key)
        es_state, _ = self.strategy.tell(k_tell, pop, -ret, es_state, self.es_params)
        stats = observe(self.config, ts.stats, obs, mask)
        env_state = state if self.pes else ()
        ts = EsState(es_state, stats, key, env_state, alive if self.pes else ts.alive)
        return ts, {"pop_return_mean": jnp.mean(ret), "pop_return_max": jnp.max(ret)}
