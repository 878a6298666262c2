"""diffviz: score-based diffusion models you can see, with exact references beside every simulation.

Core (no Jupyter needed): processes, schedules, targets, samplers, theory, models/train/cache, inits, metrics.
Notebook side: plotting, widgets, dashboards (plotly/ipywidgets imported only there).
"""
__version__ = "0.1.0"  # set first: the model cache keys on it

from . import inits, metrics, schedules, targets, theory
from .checks import DivergenceWarning
from .device import default_device, interactive_threads, resolve_device
from .notebook_params import run_defaults
from .processes import VE, VP, Interpolant, Process, SubVP
from .rng import make_generator
from .samplers import Trajectory, ddim, euler_maruyama, interpolant_ode, ode_euler, ode_heun, predictor_corrector, sample


__all__ = [
    "DivergenceWarning", "VE", "VP", "Interpolant", "Process", "SubVP", "Trajectory", "ddim", "default_device", "euler_maruyama",
    "inits", "interactive_threads", "interpolant_ode", "make_generator", "metrics", "ode_euler", "ode_heun",
    "predictor_corrector", "resolve_device", "run_defaults", "sample", "schedules", "targets", "theory",
]
