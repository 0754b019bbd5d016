"""gradgym: when do exact gradients through a physics simulator help?

Importing ``gradgym`` registers the Gymnasium ids ``gradgym/<Robot>-v0``.
"""

__version__ = "0.1.0"

from gradgym.envs.brax_compat import quiet_missing_warp  # noqa: E402

quiet_missing_warp()  # before anything imports mujoco.mjx: drop its "Failed to import warp" lines

from gradgym.envs import make  # noqa: E402
from gradgym.envs.registration import register_envs  # noqa: E402

register_envs()

__all__ = ["__version__", "make", "register_envs"]
