"""The functional core (gradgym.envs.core): same physics as raw Brax, determinism,
noise, autoreset, divergence, no recompilation, and errors on bad options.

Compiles dominate the cost, so every test jits one function (a ``lax.scan``
over several steps where it can) and compares many numbers from one call.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax import envs as brax_envs

import gradgym.envs as ge
from gradgym.envs import BACKENDS, ROBOTS, BraxEnv, NoiseConfig
from gradgym.envs.compiled import compiled
from gradgym.envs.gym_env import Single
from gradgym.jax_utils import strong_types

# Every robot on its default backend, plus every backend on one cheap robot.
DYNAMICS_CASES = [(name, spec.default_backend) for name, spec in ROBOTS.items()] + [
    ("inverted_pendulum", b) for b in BACKENDS if b != ROBOTS["inverted_pendulum"].default_backend
]


def _random_actions(env: BraxEnv, key: jax.Array, n: int) -> jax.Array:
    low, high = env.action_bounds
    return jax.random.uniform(key, (n, env.action_size), minval=low, maxval=high)


@pytest.mark.parametrize("robot,backend", DYNAMICS_CASES)
def test_same_dynamics_as_raw_brax(robot, backend):
    """Our step without noise is the raw Brax step: same q, qd, obs, reward, done.

    Ours is the Gymnasium shell's compiled reset and step (``compiled(env, Single)``), the programs the checker
    tests in test_gym_env.py run too, so a robot's step compiles once for both (in one process, or through the
    suite's shared compilation cache); Brax's step is jitted on its own.
    """
    env = ge.make(robot, backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = brax_envs.get_environment(robot, backend=backend)
    n = 12
    fns = compiled(env, Single)
    raw_step = jax.jit(lambda s, a: strong_types(raw.step(s, a)))
    state, _ = fns.reset(np.uint32(3))
    theirs, q0 = state.inner, np.asarray(state.inner.pipeline_state.q)
    low, high = env.action_bounds
    actions = np.random.default_rng(3).uniform(low, high, (n, env.action_size)).astype(np.float32)
    rows: dict[str, list] = {k: [] for k in ("ours", "raw", "flags")}
    for a in actions:
        state, _ = fns.step(state, a)
        theirs = raw_step(theirs, a)
        rows["ours"].append((state.inner.pipeline_state.q, state.inner.pipeline_state.qd, state.obs, state.reward))
        rows["raw"].append((theirs.pipeline_state.q, theirs.pipeline_state.qd, theirs.obs, theirs.reward))
        rows["flags"].append((state.terminated, theirs.done, state.diverged, state.truncated))
    out = {k: [np.stack([np.asarray(r[i]) for r in v]) for i in range(4)] for k, v in rows.items()}
    assert raw_step._cache_size() == 1  # Brax's state went through its step without a retrace
    for name, ours, theirs in zip(("q", "qd", "obs", "reward"), out["ours"], out["raw"], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6, err_msg=name)
    terminated, raw_done, diverged, truncated = out["flags"]
    np.testing.assert_array_equal(terminated, raw_done > 0)
    assert not diverged.any() and not truncated.any()
    # The test is not vacuous: the robot moved and produced finite numbers.
    q = out["ours"][0]
    assert np.all(np.isfinite(q)) and np.abs(q[-1] - q0).max() > 1e-3


@functools.cache
def _rollout_fn(env: BraxEnv, n: int):
    """jit(vmap over keys) of an n-step rollout with key-derived actions."""

    def one(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)
        actions = _random_actions(env, k_act, n)

        def body(s, a):
            s = env.step(s, a)
            return s, (s.obs, s.reward, s.inner.obs, s.inner.pipeline_state.q)

        _, (obs, reward, clean_obs, q) = jax.lax.scan(body, state, actions)
        return {
            "obs": obs,
            "reward": reward,
            "clean_obs": clean_obs,
            "q": q,
            "obs0": state.obs,
            "physics": state.physics,
        }

    return jax.jit(jax.vmap(one))


FULL_NOISE = dict(
    reset_noise_scale=0.2, action_noise=0.1, obs_noise=0.05, friction_range=(0.5, 1.5), mass_range=(0.8, 1.2)
)


def test_bit_identical_reruns_from_a_seed():
    """Two envs (cached make twice, and a fresh instance), same keys, every noise option on: identical.

    The cached env's program is shared with the noise test below (one ant compile fewer)."""
    env_a = ge.make("ant", **FULL_NOISE)
    assert ge.make("ant", **FULL_NOISE) is env_a  # make is cached by options
    env_b = BraxEnv("ant", noise=NoiseConfig(**FULL_NOISE))  # a separate object with its own compiled code
    assert env_b is not env_a
    keys = jnp.stack([jax.random.PRNGKey(7), jax.random.PRNGKey(8)])
    a = jax.device_get(_rollout_fn(env_a, 30)(keys))
    b = jax.device_get(_rollout_fn(env_b, 30)(keys))
    for name in ("obs", "reward", "q", "obs0", "clean_obs"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert np.all(np.isfinite(a["obs"]))
    # Different seeds give different episodes.
    assert np.abs(a["obs"][0] - a["obs"][1]).max() > 1e-3


def test_noise_same_key_identical_different_key_different():
    env = ge.make("ant", **FULL_NOISE)
    assert env.noise == NoiseConfig(**FULL_NOISE)
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    fn = _rollout_fn(env, 30)
    out = jax.device_get(fn(jnp.stack([k1, k1, k2])))
    again = jax.device_get(fn(jnp.stack([k1, k2, k2])))
    for name in ("obs", "reward", "q", "obs0"):
        np.testing.assert_array_equal(out[name][0], out[name][1], err_msg=name)  # same key, same batch
        np.testing.assert_array_equal(out[name][0], again[name][0], err_msg=name)  # same key, another call
        assert np.abs(out[name][0] - out[name][2]).max() > 1e-4, name  # different key
    fr, ms = out["physics"].friction, out["physics"].mass
    assert fr[0] == fr[1] and fr[0] != fr[2] and np.all((fr >= 0.5) & (fr <= 1.5))
    assert ms[0] == ms[1] and ms[0] != ms[2] and np.all((ms >= 0.8) & (ms <= 1.2))
    # Observation noise is N(0, 0.05^2) on top of the clean observation.
    resid = out["obs"] - out["clean_obs"]
    assert abs(resid.std() / 0.05 - 1.0) < 0.15 and abs(resid.mean()) < 0.01


@pytest.mark.parametrize(
    "option",
    [
        {"action_noise": 0.3},
        {"obs_noise": 0.1},
        {"reset_noise_scale": 0.3},
        {"friction_range": (0.5, 1.5)},
        {"mass_range": (0.5, 1.5)},
    ],
    ids=lambda o: next(iter(o)),
)
def test_each_noise_option_is_keyed(option):
    """Each option alone: same key repeats it, another key changes it, and it changes the episode."""
    clean = _rollout_fn(ge.make("inverted_pendulum"), 20)
    noisy = _rollout_fn(ge.make("inverted_pendulum", **option), 20)
    keys = jnp.stack([jax.random.PRNGKey(1), jax.random.PRNGKey(1), jax.random.PRNGKey(2)])
    c, n = jax.device_get(clean(keys)), jax.device_get(noisy(keys))
    for name in ("obs", "q"):
        np.testing.assert_array_equal(n[name][0], n[name][1], err_msg=name)
        assert np.abs(n[name][0] - n[name][2]).max() > 1e-5, name
    name = next(iter(option))
    if name in ("friction_range", "mass_range"):
        field = "friction" if name == "friction_range" else "mass"
        values = getattr(n["physics"], field)
        assert values[0] == values[1] != values[2] and np.all((values >= 0.5) & (values <= 1.5))
        np.testing.assert_array_equal(getattr(c["physics"], field), 1.0)
    if name == "obs_noise":  # the actions are open loop: only what the agent sees changes
        np.testing.assert_array_equal(n["q"], c["q"])
        assert np.abs(n["obs"][0] - c["obs"][0]).max() > 1e-3
    elif name != "friction_range":  # the pendulum has no contacts, so friction cannot change its motion
        assert np.abs(n["q"][0] - c["q"][0]).max() > 1e-4
    if name == "action_noise":  # reset is untouched by action noise: same first obs as the clean env
        np.testing.assert_array_equal(n["obs0"], c["obs0"])


def test_autoreset_fresh_state_final_obs_and_gradient_stop():
    env = ge.make("inverted_pendulum", episode_length=4)
    action = jnp.full((env.action_size,), 0.2)

    @jax.jit
    def run(key):
        def body(s, _):
            nxt, final = env.autoreset_step(s, action)
            return nxt, (nxt.obs, nxt.steps, final.obs, final.truncated, final.done, env.step(s, action).obs)

        s0 = env.reset(key)
        return s0.obs, jax.lax.scan(body, s0, None, length=12)[1]

    obs0, (obs, steps, final_obs, truncated, done, plain_obs) = jax.device_get(run(jax.random.PRNGKey(0)))
    np.testing.assert_array_equal(steps, [1, 2, 3, 0] * 3)
    np.testing.assert_array_equal(truncated, [False, False, False, True] * 3)
    np.testing.assert_array_equal(done, truncated)
    # final_state holds the true terminal obs (what a plain step gives), next_state a new episode.
    np.testing.assert_array_equal(final_obs, plain_obs)
    ends = np.flatnonzero(done)
    assert np.abs(obs[ends] - final_obs[ends]).max() > 1e-3
    fresh = np.concatenate([obs0[None], obs[ends]])
    for i in range(len(fresh)):  # every restart is a newly sampled state, never a cached one
        for j in range(i):
            assert np.abs(fresh[i] - fresh[j]).max() > 1e-4
    np.testing.assert_array_equal(obs[~done], final_obs[~done])

    # Gradients stop at the boundary: the next episode does not depend on the last action.
    @jax.jit
    def grads(key):
        last = env.reset(key).replace(steps=jnp.int32(3))  # the next step ends the episode
        return jax.jacrev(lambda a: [jnp.sum(s.obs) for s in env.autoreset_step(last, a)])(action)

    g_next, g_final = grads(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(g_next, 0.0)
    assert np.abs(g_final).max() > 1e-4


@functools.cache
def _diverge_fn(env: BraxEnv):
    """jit: inject ``value`` into qd, step, autoreset, and step the restarted state."""

    def run(key, value):
        s = env.reset(key)
        vec = env.state_vector(s)
        nq = vec.shape[0] // 2
        bad = env.with_state_vector(s, vec.at[nq:].set(value))
        action = jnp.zeros(env.action_size)
        restarted, final = env.autoreset_step(bad, action)
        after = env.step(restarted, action)
        return env.step(bad, action), restarted, final, after, env.state_vector(restarted), env.state_vector(after)

    return jax.jit(run)


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e38])
def test_divergence_terminates_and_autoreset_recovers(value):
    env = ge.make("inverted_pendulum", backend="generalized")
    nxt, restarted, final, after, vec_restarted, vec_after = _diverge_fn(env)(jax.random.PRNGKey(0), value)
    assert bool(nxt.terminated) and bool(nxt.diverged) and float(nxt.reward) == 0.0
    assert np.all(np.isfinite(np.asarray(nxt.obs)))
    assert bool(final.diverged) and bool(final.terminated) and float(final.reward) == 0.0
    assert np.all(np.isfinite(np.asarray(final.obs)))
    assert int(restarted.steps) == 0 and not bool(restarted.done)
    assert np.all(np.isfinite(np.asarray(vec_restarted))) and np.all(np.isfinite(np.asarray(restarted.obs)))
    assert not bool(after.diverged) and not bool(after.terminated) and np.all(np.isfinite(np.asarray(vec_after)))


def _signature(tree):
    return [(x.dtype, x.shape, getattr(x, "weak_type", False)) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("method", ["step", "autoreset_step"])
def test_jitted_step_does_not_retrace_on_its_own_output(method):
    env = ge.make("inverted_pendulum", episode_length=3)
    traces = []

    def fn(state, action):
        traces.append(1)  # runs only while tracing
        out = getattr(env, method)(state, action)
        return out if method == "step" else out[0]

    jfn = jax.jit(fn)
    state = env.reset(jax.random.PRNGKey(0))
    first = _signature(state)
    action = jnp.zeros(env.action_size)
    for _ in range(7):  # crosses two episode ends when autoresetting
        state = jfn(state, action)
        assert _signature(state) == first
    assert len(traces) == 1


def test_float64_state_dtypes_and_no_retrace():
    with jax.enable_x64(True):
        env = ge.make("inverted_pendulum", dtype="float64")
        traces = []

        def fn(s, a):
            traces.append(1)
            return env.step(s, a)

        jfn = jax.jit(fn)
        s = env.reset(jax.random.PRNGKey(0))
        for _ in range(3):
            s = jfn(s, jnp.zeros(env.action_size, jnp.float64))
        assert len(traces) == 1
        assert s.obs.dtype == jnp.float64 and s.reward.dtype == jnp.float64
        assert s.inner.pipeline_state.q.dtype == jnp.float64


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"robot": "antt"}, r"Unknown robot 'antt'.*available: ant"),
        ({"robot": "ant", "backend": "bullet"}, r"Unknown backend 'bullet'.*generalized"),
        ({"robot": "swimmer", "backend": "spring"}, r"'swimmer' has no 'spring'.*generalized"),
        ({"robot": "ant", "actoin_noise": 0.1}, r"Unknown env option.*'actoin_noise'.*action_noise"),
        ({"robot": "ant", "dtype": "float16"}, r"dtype.*'float16'"),
        ({"robot": "ant", "dtype": "float64"}, r"float64.*jax_enable_x64"),
        ({"robot": "ant", "episode_length": 0}, r"episode_length.*got 0"),
        ({"robot": "ant", "episode_length": 2.5}, r"episode_length.*got 2.5"),
        ({"robot": "ant", "action_noise": -0.1}, r"action_noise.*>= 0.*-0.1"),
        ({"robot": "ant", "obs_noise": math.nan}, r"obs_noise.*nan"),
        ({"robot": "ant", "obs_noise": "0.1"}, r"obs_noise.*'0.1'"),
        ({"robot": "ant", "reset_noise_scale": -1.0}, r"reset_noise_scale.*-1.0"),
        ({"robot": "ant", "friction_range": (1.5, 0.5)}, r"friction_range.*low <= high.*\(1.5, 0.5\)"),
        ({"robot": "ant", "friction_range": (-1.0, 1.0)}, r"friction_range.*0 < low.*\(-1.0, 1.0\)"),
        ({"robot": "ant", "mass_range": (0.5, math.inf)}, r"mass_range.*finite.*inf"),
        ({"robot": "ant", "mass_range": (0.5,)}, r"mass_range.*\(low, high\) pair.*\(0.5,\)"),
        ({"robot": "ant", "mass_range": "wide"}, r"mass_range.*'wide'"),
    ],
)
def test_make_rejects_bad_options_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ge.make(**kwargs)


def test_make_rejects_wrong_noise_type():
    with pytest.raises(TypeError, match="NoiseConfig.*dict"):
        BraxEnv("ant", noise={"action_noise": 0.1})


@pytest.mark.parametrize("robot", list(ROBOTS))
def test_action_bounds_are_brax_unit_box(robot):
    """Brax robots take actions in [-1, 1]; those with wider actuators (pendulum: +-3)
    rescale inside step, so advertising the control range would scale twice."""
    low, high = ge.make(robot).action_bounds
    assert low.shape == high.shape == (ge.make(robot).action_size,)
    np.testing.assert_array_equal(low, -1.0)
    np.testing.assert_array_equal(high, 1.0)


def test_float32_env_made_in_64bit_mode_stays_float32():
    """make() caches envs and Brax systems: a float32 env first built inside ``jax.enable_x64`` must not keep a
    float64 system. It used to fail later, outside 64-bit mode, in Brax's reset (which
    ``observation_size`` traces): ``lax.mul requires arguments to have the same dtypes, got float32, float64``."""
    with jax.enable_x64(True):
        made_in_x64 = ge.make("inverted_pendulum", episode_length=7)
    plain = ge.make("inverted_pendulum", episode_length=8)  # another env on the same cached Brax system
    assert plain.observation_size == made_in_x64.observation_size == 4
    key, action = jax.random.PRNGKey(0), jnp.full((plain.action_size,), 0.3)
    a = jax.jit(made_in_x64.step)(made_in_x64.reset(key), action)
    b = jax.jit(plain.step)(plain.reset(key), action)
    assert a.obs.dtype == jnp.float32
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.reward, b.reward)


def test_float32_env_under_64bit_jax_computes_in_float32():
    """A float32 env used with 64-bit JAX on: Brax would promote parts of its state to float64 (a scan over
    steps then failed: its carry changed dtype). It computes in float32 instead, bit for bit as with 64-bit off."""
    env = ge.make("inverted_pendulum", episode_length=7)
    action = jnp.full((env.action_size,), 0.3, jnp.float32)

    def one(state, _):
        nxt = env.step(state, action)
        return nxt, nxt.reward

    def run(key):
        out, rewards = jax.lax.scan(one, env.reset(key), None, 3)
        return env.with_state_vector(out, env.state_vector(out)), rewards

    plain = jax.jit(run)(jax.random.PRNGKey(0))
    with jax.enable_x64(True):
        wide = jax.jit(run)(jax.random.PRNGKey(0))
    floats = [x.dtype for x in jax.tree.leaves(wide) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and set(floats) == {jnp.dtype(jnp.float32)}
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(wide), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    def obs_sum(a):  # differentiable through three steps
        state, _ = jax.lax.scan(lambda s, _: (env.step(s, a), None), env.reset(jax.random.PRNGKey(1)), None, 3)
        return jnp.sum(state.obs)

    g_plain = jax.jit(jax.grad(obs_sum))(action)
    with jax.enable_x64(True):
        g_wide = jax.jit(jax.grad(obs_sum))(action)
    assert g_wide.dtype == jnp.float32 and np.any(np.asarray(g_plain) != 0)
    np.testing.assert_array_equal(np.asarray(g_plain), np.asarray(g_wide))
