"""Loss slices and random directions on functions with closed-form values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gradgym.diagnostics import loss_slice, loss_slice_2d, random_direction, smoothed_loss


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _theta():
    return {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]], jnp.float64), "b": jnp.array([0.5, -0.5], jnp.float64)}


def quad(th):
    return jnp.sum(th["w"] ** 2) + jnp.sum(th["b"] ** 2)


def test_random_direction_normalisations():
    THETA = _theta()  # noqa: N806
    d = random_direction(jax.random.PRNGKey(0), THETA, "unit")
    assert d.shape == (6,) and abs(float(jnp.linalg.norm(d)) - 1.0) < 1e-12
    f = random_direction(jax.random.PRNGKey(0), THETA, "filter")
    _, unravel = ravel_pytree(THETA)
    ft = unravel(f)
    np.testing.assert_allclose(jnp.linalg.norm(ft["w"]), jnp.linalg.norm(THETA["w"]), rtol=1e-10)
    np.testing.assert_allclose(jnp.linalg.norm(ft["b"]), jnp.linalg.norm(THETA["b"]), rtol=1e-10)
    with pytest.raises(ValueError, match="normalize"):
        random_direction(jax.random.PRNGKey(0), THETA, "l2")


def test_slices_match_closed_form():
    THETA = _theta()  # noqa: N806
    x, _ = ravel_pytree(THETA)
    d1 = random_direction(jax.random.PRNGKey(1), THETA)
    d2 = random_direction(jax.random.PRNGKey(2), THETA)
    s = jnp.linspace(-1, 1, 5)
    # |x + a d1 + b d2|^2 expanded.
    want1 = float(x @ x) + 2 * s * float(x @ d1) + s**2
    np.testing.assert_allclose(loss_slice(quad, THETA, d1, s), want1, rtol=1e-12)
    grid = loss_slice_2d(quad, THETA, d1, d2, s, s[:3])
    a, b = np.meshgrid(np.asarray(s), np.asarray(s[:3]), indexing="ij")
    want2 = np.sum((np.asarray(x)[None, None] + a[..., None] * np.asarray(d1) + b[..., None] * np.asarray(d2)) ** 2, -1)
    np.testing.assert_allclose(grid, want2, rtol=1e-12)
    with pytest.raises(ValueError, match="direction"):
        loss_slice(quad, THETA, jnp.ones(5), s)


def test_smoothed_loss_of_quadratic():
    THETA = _theta()  # noqa: N806
    # E|x + eps|^2 = |x|^2 + n sigma^2.
    mean, std = smoothed_loss(quad, THETA, jax.random.PRNGKey(3), 0.5, 40000)
    x, _ = ravel_pytree(THETA)
    assert abs(float(mean) - (float(x @ x) + 6 * 0.25)) < 0.05
    assert float(std) > 0
