"""diffviz: score-based diffusion models you can see, with exact references beside every simulation."""
from .device import default_device, interactive_threads, resolve_device
from .processes import VE, VP, Interpolant, Process, SubVP
from .rng import make_generator

__version__ = "0.1.0"
from . import schedules, theory
from .samplers import Trajectory, ddim, euler_maruyama, interpolant_ode, ode_euler, ode_heun, predictor_corrector, sample
