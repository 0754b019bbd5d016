"""Gradient diagnostics over the functional core (Metz et al. 2021, "Gradients are Not All You Need").

Pure functions returning metrics (dicts / pytrees); plotting (:mod:`.plots`)
reads saved results. Modules: :mod:`.estimators` (pathwise, ES, score
function, combination), :mod:`.landscape` (loss slices), :mod:`.objectives`
(robot policy losses and batched gradients), :mod:`.horizon` (variance vs
unroll length, recommended truncation), :mod:`.spectrum` (closed-loop
Jacobian spectra), :mod:`.lyapunov` (QR Lyapunov exponents), :mod:`.report`
and :mod:`.cli` (``gradgym diagnose``).
"""

from gradgym.diagnostics.estimators import GradEstimate, combine, es_antithetic, estimate_all, pathwise, score_function
from gradgym.diagnostics.horizon import fit_growth_rate, gradient_stats_vs_horizon, recommend_truncation
from gradgym.diagnostics.landscape import loss_slice, loss_slice_2d, random_direction, smoothed_loss
from gradgym.diagnostics.lyapunov import lyapunov_of_map, lyapunov_spectrum, map_jacobians
from gradgym.diagnostics.objectives import default_policy, gradient_samples, init_policy, policy_loss_slice
from gradgym.diagnostics.spectrum import closed_loop_jacobians, eigenvalues, spectrum_stats

__all__ = [
    "GradEstimate",
    "closed_loop_jacobians",
    "combine",
    "default_policy",
    "eigenvalues",
    "es_antithetic",
    "estimate_all",
    "fit_growth_rate",
    "gradient_samples",
    "gradient_stats_vs_horizon",
    "init_policy",
    "loss_slice",
    "loss_slice_2d",
    "lyapunov_of_map",
    "lyapunov_spectrum",
    "map_jacobians",
    "pathwise",
    "policy_loss_slice",
    "random_direction",
    "recommend_truncation",
    "score_function",
    "smoothed_loss",
    "spectrum_stats",
]
