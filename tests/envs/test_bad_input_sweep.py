"""A deterministic sweep of generated bad inputs over every face and the checkpoint loader.

Over one Ant per face (Gymnasium ``gym.make``, vector ``gym.make_vec``, SB3
``GradGymSB3VecEnv``) and ``load_checkpoint``, at least 1,000 cases drawn from
a fixed-seed numpy RNG: wrong shapes/ranks/dtypes, NaN/inf mixed into actions,
values beyond float32, huge finite actions, strings/None/objects as actions,
bad seeds and reset options, bad ``gym.make``/``make_vec``/SB3 options and
``num_envs``, and truncated, bit-flipped, random, foreign and crafted
checkpoint files. Each case must

* raise a named exception (``ValueError``, ``TypeError``, a
  ``gymnasium.error.Error`` or ``CheckpointError``) whose message names the
  offending value, or
* for huge finite actions, take the documented path: not clipped, the
  physics clamps the controls; when the raw control cost overflows float32
  the step reports ``diverged`` with reward 0 and the episode ends;

after every case the face still steps with finite outputs, and no NaN/inf ever
reaches an observation or reward. docs/reliability.md records the result.
"""

from __future__ import annotations

import collections
import hashlib
import json
import reprlib
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

import gradgym  # noqa: F401  (registers the ids)
from gradgym.agents.checkpoint import MAGIC, CheckpointError, load_checkpoint, save_checkpoint
from gradgym.envs import ROBOTS
from gradgym.envs.gym_env import GradGymEnv
from gradgym.envs.sb3_vec_env import GradGymSB3VecEnv

SEED = 20261125
ANT = ROBOTS["ant"].gym_id
N = 3  # sub-envs of the vector and SB3 faces (they share one compiled batched kernel)
A = 8  # Ant's action size
F32_MAX = float(np.finfo(np.float32).max)
MIN_CASES = 1000


class Sweep:
    """Runs cases and counts them per face."""

    def __init__(self):
        self.count: collections.Counter[str] = collections.Counter()
        self.done: set[str] = set()  # the parts that ran to the end

    def error(self, face: str, call: Callable[[], object], needle: str, types=(ValueError, TypeError)) -> None:
        """``call()`` must raise one of ``types`` with ``needle`` in its message."""
        with pytest.raises(types) as info:
            call()
        assert needle in str(info.value), f"[{face}] message {str(info.value)!r} does not name {needle!r}"
        self.count[face] += 1

    def ok(self, face: str) -> None:
        self.count[face] += 1


# -- generated actions ------------------------------------------------------------
FLOATS = (np.float16, np.float32, np.float64)


def wrong_shapes(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    """Arrays (sometimes nested lists) of any rank 0-4 whose shape is not ``shape``."""
    out = []
    while len(out) < n:
        dims = tuple(int(d) for d in rng.integers(0, 10, rng.integers(0, 5)))
        if dims == shape:
            continue
        a = rng.uniform(-1, 1, dims).astype(rng.choice([*FLOATS, np.int32, np.int64]))
        if rng.random() < 0.3:  # as nested lists (a zero-length axis drops the axes after it)
            a = a.tolist()
        out.append((a, f"shape {np.shape(a)}"))
    return out


def wrong_kinds(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    """Right shape, wrong kind of value: bool/complex/str/bytes/time arrays, None/str/objects inside, non-arrays."""
    size = int(np.prod(shape))

    def one():
        x = rng.uniform(-1, 1, shape)
        k = int(rng.integers(0, 12))
        if k == 0:
            return x > 0, "dtype bool"
        if k == 1:
            c = np.complex64 if rng.random() < 0.5 else np.complex128
            return (x + 1j * rng.uniform(-1, 1, shape)).astype(c), f"dtype {np.dtype(c)}"
        if k == 2:
            s = x.round(2).astype(str)
            return s, f"dtype {s.dtype}"
        if k == 3:
            b = x.round(2).astype(bytes)
            return b, f"dtype {b.dtype}"
        if k == 4:
            t = x.astype(np.int64).astype(rng.choice(["datetime64[s]", "timedelta64[ms]"]))
            return t, f"dtype {t.dtype}"
        if k in (5, 6, 7):  # a list of numbers with one odd element
            odd = [None, "0.5", object(), 1j, b"1", [0.1], {"a": 1}][int(rng.integers(0, 7))]
            lst = x.tolist()
            flat = lst if len(shape) == 1 else lst[0]
            flat[int(rng.integers(0, len(flat)))] = odd
            if isinstance(odd, list):  # a ragged nested list
                return lst, "inhomogeneous"
            if isinstance(odd, complex):
                return lst, "complex128"
            if isinstance(odd, (str, bytes)):  # numpy makes the whole list a str/bytes array
                return lst, "dtype <U" if isinstance(odd, str) else "dtype |S"
            return lst, "not a real number"
        # not an array at all
        return [
            (None, "None"),
            ("left", "'left'"),
            (object(), "object"),
            ({"action": x}, "{'action'"),
            ({1, 2}, "{1, 2}"),
            (lambda: x, "function"),
            (b"\x00" * size, "dtype |S"),
        ][k - 8 + int(rng.integers(0, 4))]

    return [one() for _ in range(n)]


def non_finite(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    """NaN/+inf/-inf at random positions of an otherwise valid action (float16/32/64 arrays or lists)."""
    out = []
    for _ in range(n):
        a = rng.uniform(-1, 1, shape).astype(rng.choice(FLOATS))
        k = int(rng.integers(1, a.size + 1))
        flat = a.reshape(-1)
        flat[rng.choice(a.size, k, replace=False)] = rng.choice([np.nan, np.inf, -np.inf], k)
        bad = np.argwhere(~np.isfinite(a)).tolist()
        out.append((a.tolist() if rng.random() < 0.3 else a, f"indices {bad}"))
    return out


def beyond_float32(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    """Finite float64 values (or huge Python ints) that do not fit float32."""
    out = []
    for _ in range(n):
        a = rng.uniform(-1, 1, shape)
        i = tuple(int(rng.integers(0, d)) for d in shape)
        big = float(rng.choice([-1, 1]) * 10 ** rng.uniform(38.6, 300))
        a[i] = big
        if rng.random() < 0.25:
            lst = a.tolist()
            (lst if len(shape) == 1 else lst[i[0]])[i[-1]] = int(big)
            out.append((lst, "float32 range"))
        else:
            out.append((a, "float32 range"))
    return out


def huge_finite(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    """Valid float32 actions scaled up to 10**38.5 (clamped to float32's max): accepted, not clipped (documented)."""
    scale = 10 ** rng.uniform(0.5, 38.5, (n,) + (1,) * len(shape))
    return list(np.clip(rng.uniform(-1, 1, (n, *shape)) * scale, -F32_MAX, F32_MAX).astype(np.float32))


def bad_actions(rng: np.random.Generator, shape: tuple[int, ...], n: int):
    return [
        *wrong_shapes(rng, shape, n),
        *wrong_kinds(rng, shape, n),
        *non_finite(rng, shape, n),
        *beyond_float32(rng, shape, n // 3),
    ]


# -- checks on outputs ----------------------------------------------------------------
def assert_finite(*arrays) -> None:
    for x in arrays:
        assert np.all(np.isfinite(np.asarray(x, np.float64))), x


# -- the faces ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep():
    s = Sweep()
    yield s
    print("\nbad-input sweep cases per face:", dict(s.count), "total", sum(s.count.values()))


def test_gymnasium_face(sweep):
    rng = np.random.default_rng(SEED)
    env = gym.make(ANT)
    env.reset(seed=0)
    space = env.action_space

    def valid_step():
        obs, reward, terminated, truncated, info = env.step(space.sample())
        assert_finite(obs, reward)
        assert not info["diverged"]
        if terminated or truncated:
            env.reset()

    for action, needle in bad_actions(rng, (A,), 90):
        sweep.error("gym.step", lambda a=action: env.step(a), needle)
        valid_step()

    diverged = 0
    for action in huge_finite(rng, (A,), 60):
        obs, reward, terminated, truncated, info = env.step(action)
        assert_finite(obs, reward)
        assert isinstance(reward, float) and obs.dtype == np.float32
        if info["diverged"]:  # the raw control cost overflowed float32 (documented)
            assert terminated and reward == 0.0 and np.max(np.abs(action)) > 1e18, (action, reward)
            sweep.error("gym.step", lambda: env.step(np.zeros(A, np.float32)), "reset", gym.error.ResetNeeded)
            diverged += 1
        sweep.ok("gym.step")
        if terminated or truncated:
            env.reset()
        valid_step()
    assert diverged > 0  # the sweep does reach the overflow path

    for seed in [-1, -(2**40), *rng.integers(-(10**9), 0, 8).tolist()]:
        sweep.error("gym.reset", lambda s=seed: env.reset(seed=s), str(seed), gym.error.Error)
        valid_step()
    for seed in [1.5, "0", b"0", [0], (0, 1), np.int64(3), np.float32(2), {0: 1}, object(), 2.0]:
        sweep.error("gym.reset", lambda s=seed: env.reset(seed=s), type(seed).__name__, gym.error.Error)
        valid_step()
    for seed in [0, 2**32, 2**64 + 7, 2**200]:  # big seeds are valid
        obs, _ = env.reset(seed=seed)
        assert_finite(obs)
        sweep.ok("gym.reset")
    for options, needle in [({"x": 1}, "['x']"), ({1: 2, "a": 3}, "['a', 1]"), (5, "got 5"), ("abc", "'abc'"),
                            ([("a", 1)], "[('a', 1)]"), ((1,), "(1,)"), (2.5, "2.5")]:  # fmt: skip
        sweep.error("gym.reset", lambda o=options: env.reset(seed=0, options=o), needle)
        valid_step()
    sweep.done.add("gym")
    env.close()


def test_vector_face(sweep):
    rng = np.random.default_rng(SEED + 1)
    envs = gym.make_vec(ANT, num_envs=N, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)

    def valid_step():
        obs, rewards, _, _, info = envs.step(envs.action_space.sample())
        assert_finite(obs, rewards)
        assert not info["diverged"].any()

    for action, needle in bad_actions(rng, (N, A), 70):
        sweep.error("vector.step", lambda a=action: envs.step(a), needle)
        valid_step()

    for actions in huge_finite(rng, (N, A), 50):
        obs, rewards, terminated, _, info = envs.step(actions)
        assert_finite(obs, rewards)
        div = info["diverged"]
        assert np.all(terminated[div]) and np.all(rewards[div] == 0.0)
        assert np.all(np.max(np.abs(actions[div]), axis=-1) > 1e18)
        sweep.ok("vector.step")
        valid_step()  # NEXT_STEP autoreset restarts the finished sub-envs

    for seed, needle in [(-1, "got -1"), (-5, "got -5"), (1.5, "got 1.5"), ("0", "got '0'"), ([0, 1], "[0, 1]"),
                         ([0, 1, 2, 3], "[0, 1, 2, 3]"), ([0, -1, 2], "got -1"), ([0, 1.5, 2], "got 1.5"),
                         ([True, 1, 2], "got True"), (np.arange(N), "array([0, 1, 2])"), ({0: 1}, "{0: 1}")]:  # fmt: skip
        sweep.error("vector.reset", lambda s=seed: envs.reset(seed=s), needle)
        valid_step()
    for options, needle in [
        ({"foo": 1}, "['foo']"),
        ({"reset_mask": np.ones(N - 1, bool)}, "array([ True,  True])"),
        ({"reset_mask": np.ones(N, int)}, "array([1, 1, 1])"),
        ({"reset_mask": [True] * N}, "[True, True, True]"),
        ({"reset_mask": np.ones((N, 1), bool)}, "array([[ True]"),
        (5, "got 5"),
        ("abc", "'abc'"),
        ([("reset_mask", None)], "[('reset_mask', None)]"),
    ]:
        sweep.error("vector.reset", lambda o=options: envs.reset(options=o), needle)
        valid_step()
    envs.close()
    sweep.done.add("vector")


def test_sb3_face(sweep):
    rng = np.random.default_rng(SEED + 2)
    venv = GradGymSB3VecEnv("ant", num_envs=N)
    venv.seed(0)
    venv.reset()

    def valid_step():
        obs, rewards, dones, infos = venv.step(rng.uniform(-1, 1, (N, A)).astype(np.float32))
        assert_finite(obs, rewards)
        assert not any(i.get("diverged") for i in infos)

    for action, needle in bad_actions(rng, (N, A), 60):
        sweep.error("sb3.step", lambda a=action: venv.step(a), needle)
        valid_step()

    for actions in huge_finite(rng, (N, A), 40):
        obs, rewards, dones, infos = venv.step(actions)
        assert_finite(obs, rewards)
        for i, info in enumerate(infos):
            if info.get("diverged"):
                assert dones[i] and rewards[i] == 0.0 and np.max(np.abs(actions[i])) > 1e18
                assert_finite(info["terminal_observation"])
        sweep.ok("sb3.step")
        valid_step()

    for seed in [-1, -(2**33), 1.5, "0", [0, 1, 2], True, np.float64(3), object()]:
        sweep.error("sb3.seed", lambda s=seed: venv.seed(s), f"int >= 0, got {reprlib.repr(seed)}")
        valid_step()
    venv.seed(2**70)  # big seeds are valid
    assert_finite(venv.reset())
    sweep.ok("sb3.seed")
    venv.close()
    sweep.done.add("sb3")


# -- options of gym.make / make_vec / the SB3 constructor --------------------------------
GOOD = {"obs_noise": 0.01, "action_noise": 0.02, "reset_noise_scale": 0.1, "friction_range": (0.9, 1.1)}
BAD = {
    "obs_noise": [-1.0, -1e-9, float("nan"), float("inf"), "0.1", [0.1], None, 1j],
    "action_noise": [-0.5, float("-inf"), "x", (0.1,), None, b"0"],
    "reset_noise_scale": [-0.1, float("nan"), "big", [1.0], 1j],
    "friction_range": [
        (2.0, 1.0),
        (0.0, 1.0),
        (-1.0, 1.0),
        (float("nan"), 1.0),
        (1.0, float("inf")),
        "ab",
        5,
        (1, 2, 3),
        [None, 1.0],
        {},
        (),
    ],
    "mass_range": [(1.5, 0.5), (0.0, 0.0), (1.0,), "x", 3.0, [float("inf"), 2.0]],
    "backend": ["sprong", "", "SPRING", 5, 1.5, ["spring"], {"a": 1}, np.array(["spring"]), ("spring",)],
    "noise": [5, "noise", [0.1], {"obs_noise": 0.1}, 0.1],
}


KNOWN = {*GOOD, *BAD, "num_envs", "record", "width", "height", "render_mode", "robot", "wrappers", "vector_kwargs",
         "max_episode_steps", "autoreset_mode", "vectorization_mode"}  # fmt: skip


def option_cases(rng: np.random.Generator, n: int):
    """Dicts of options with exactly one bad value (or one unknown name), the rest valid."""
    cases = []
    for _ in range(n):
        opts = {k: v for k, v in GOOD.items() if rng.random() < 0.3}
        if rng.random() < 0.2:
            name = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz_"), int(rng.integers(1, 12))))
            name = name if name not in KNOWN else name + "_x"
            opts[name] = 1.0
            cases.append((opts, repr(name)))
            continue
        key = list(BAD)[int(rng.integers(0, len(BAD)))]
        value = BAD[key][int(rng.integers(0, len(BAD[key])))]
        if key == "noise":
            opts = {}  # noise=... with noise options is its own path; keep this one bad value alone
        opts[key] = value
        cases.append((opts, repr(value)[:12]))
    return cases


def test_make_and_make_vec_options(sweep):
    rng = np.random.default_rng(SEED + 3)
    for opts, needle in option_cases(rng, 60):
        sweep.error("gym.make", lambda o=opts: gym.make(ANT, **o), needle)
    kw = {"num_envs": N, "vectorization_mode": "vector_entry_point"}
    for opts, needle in option_cases(rng, 50):
        sweep.error("gym.make_vec", lambda o=opts: gym.make_vec(ANT, **kw, **o), needle)
    for opts, needle in option_cases(rng, 40):
        sweep.error("sb3.make", lambda o=opts: GradGymSB3VecEnv("ant", num_envs=N, **o), needle)
    for robot in ["antt", "Ant", "", "gradgym/Ant-v0", None, 5, ["ant"], "ant ", "humanoid2", b"ant"]:
        sweep.error("gym.make", lambda r=robot: GradGymEnv(r), f"Unknown robot {robot!r}")
    for key, value in [("render_mode", "human"), ("render_mode", 5), ("render_mode", "rgb"), ("width", 0),
                       ("width", 15), ("height", 5000), ("width", "100"), ("height", 16.5), ("width", True),
                       ("height", -1), ("width", None)]:  # fmt: skip
        sweep.error("gym.make", lambda k=key, v=value: GradGymEnv("ant", **{k: v}), repr(value))
    sweep.done.add("options")


BAD_NUM_ENVS = [0, -1, -(2**31), 2.5, 3.0, "3", None, True, False, [3], (3,), np.float64(3), 1j, np.array([3])]
BAD_MAX_STEPS = [0, -2, 2**31, 1.5, -1.0, "10", True, [5], np.float32(4), np.array([5])]


def test_bad_num_envs_and_vector_settings(sweep):
    kw = {"vectorization_mode": "vector_entry_point"}
    for n in BAD_NUM_ENVS:
        needle = f"num_envs must be a positive int, got {n!r}"
        sweep.error("gym.make_vec", lambda n=n: gym.make_vec(ANT, num_envs=n, **kw), needle)
        sweep.error("sb3.make", lambda n=n: GradGymSB3VecEnv("ant", num_envs=n), needle)
    for steps in BAD_MAX_STEPS:
        needle = f"max_episode_steps must be a positive int (at most {2**31 - 1}), None or -1 (no limit), got {steps!r}"
        make_vec = lambda s=steps: gym.make_vec(ANT, num_envs=N, max_episode_steps=s, **kw)  # noqa: E731
        sweep.error("gym.make_vec", make_vec, needle)
        sweep.error("sb3.make", lambda s=steps: GradGymSB3VecEnv("ant", num_envs=N, max_episode_steps=s), needle)
    for mode in ["sometimes", "NEXT", "", 5, None, 1.0, ["SAME_STEP"]]:
        make_vec = lambda m=mode: gym.make_vec(ANT, num_envs=N, autoreset_mode=m, **kw)  # noqa: E731
        sweep.error("gym.make_vec", make_vec, f"Unknown autoreset_mode {mode!r}")
    sweep.done.add("num_envs")


# -- checkpoints ------------------------------------------------------------------------
def test_checkpoint_loader(sweep, tmp_path: Path):
    rng = np.random.default_rng(SEED + 4)
    template = {
        "params": {"w": jnp.zeros((4, 3), jnp.float32), "b": jnp.zeros(3, jnp.float32)},
        "step": jnp.zeros((), jnp.int32),
    }
    state = {
        "params": {"w": jnp.asarray(rng.standard_normal((4, 3)), jnp.float32), "b": jnp.ones(3, jnp.float32)},
        "step": jnp.asarray(7, jnp.int32),
    }
    header = {"agent": "ppo", "seed": 1, "config": {"lr": 0.001}, "history": [1.0, 2.0]}
    expect = {"agent": "ppo", "seed": 1}
    good = save_checkpoint(tmp_path / "good" / "ckpt_00000001.gradgym", state, header)
    data = good.read_bytes()
    restored, _ = load_checkpoint(good, template, expect)
    sweep.ok("checkpoint")

    def same_as_saved(loaded) -> bool:
        pairs = zip(jax.tree.leaves(loaded), jax.tree.leaves(state), strict=True)
        return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)

    def check(name: str, blob: bytes, template=template, expect=expect) -> None:
        path = tmp_path / f"case_{sweep.count['checkpoint']:05d}_{name}.bin"
        path.write_bytes(blob)
        try:
            loaded, _ = load_checkpoint(path, template, expect)
        except CheckpointError as e:
            assert str(path) in str(e), str(e)
        else:  # a flip in an unchecked header field (e.g. the history) may load: then the state is intact
            assert name == "flip" and same_as_saved(loaded), name
        sweep.ok("checkpoint")

    for cut in sorted(set(rng.integers(0, len(data), 120).tolist())):
        check("truncated", data[:cut])
    for _ in range(120):
        blob = bytearray(data)
        for pos in rng.integers(0, len(data), int(rng.integers(1, 6))):
            blob[pos] ^= int(rng.integers(1, 256))
        check("flip", bytes(blob))
    for _ in range(30):
        check("random", rng.bytes(int(rng.integers(0, 4096))))
    for _ in range(20):
        check("magic_random", MAGIC + rng.bytes(int(rng.integers(0, 512))))
    for blob in [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"PK\x03\x04" + bytes(100),
        b'{"not": "a checkpoint"}',
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94.",  # a pickle: must never be unpickled
        data[len(MAGIC) :],
        data.replace(MAGIC, b"GRADGYM-CKPT\r\n", 1),
    ]:
        check("foreign", blob)

    body = data[len(MAGIC) + 8 + int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little") :]
    good_header = json.loads(data[len(MAGIC) + 8 : len(data) - len(body)])

    def crafted(head: bytes | dict, body: bytes = body, n: int | None = None) -> bytes:
        head = head if isinstance(head, bytes) else json.dumps(head).encode()
        return MAGIC + (len(head) if n is None else n).to_bytes(8, "little") + head + body

    def sealed(body: bytes, **extra) -> bytes:  # a header whose length and checksum match ``body``
        return crafted(
            {**good_header, "body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest(), **extra}, body
        )

    for head in [b"[" * 100_000, b'{"a":' * 100_000, b"[]", b"null", b"1", b'"s"', b"\xff\xfe", b"{", b""]:
        check("header", crafted(head))
    for n in [0, 1, len(data), 2**63, 2**64 - 1]:
        check("header_length", crafted(good_header, n=n))
    for version in [0, 2, "1", None, 1.5]:
        check("version", crafted({**good_header, "format_version": version}))
    for k in ["body_bytes", "body_sha256"]:
        check("header_field", crafted({kk: v for kk, v in good_header.items() if kk != k}))
    for _ in range(10):
        check("body", sealed(rng.bytes(int(rng.integers(1, 300)))))
    for other in [
        {"params": {"w": np.zeros((3, 4), np.float32), "b": np.zeros(3, np.float32)}, "step": np.int32(0)},
        {"params": {"w": np.zeros((4, 3), np.float64), "b": np.zeros(3, np.float32)}, "step": np.int32(0)},
        {"params": {"w": np.zeros((4, 3), np.float32)}, "step": np.int32(0)},
        {"other": np.zeros(3)},
        [1, 2, 3],
        "text",
    ]:
        check("body", sealed(serialization.to_bytes(other)))
    for field, value in [("agent", "es"), ("seed", 2), ("agent", None), ("seed", "1")]:
        check("mismatch", sealed(body, **{field: value}))
    for bad_expect in [{"agent": "apg"}, {"seed": 0}, {"config": {"lr": 1}}]:
        check("expect", data, expect=bad_expect)
    sweep.done.add("checkpoint")


def test_case_count(sweep):
    """Runs last in this file (pytest keeps file order): the sweep covered at least MIN_CASES cases."""
    if sweep.done != {"gym", "vector", "sb3", "options", "num_envs", "checkpoint"}:
        pytest.skip(f"only {sorted(sweep.done)} of the sweep ran; run the whole file for the count")
    total = sum(sweep.count.values())
    assert total >= MIN_CASES, dict(sweep.count)
