"""NCSN: score network, noise schedules, DSM loss, annealed Langevin sampling."""

from ncsn.schedules import NoiseSchedule, ncsn_v1, ncsn_v2
from ncsn.model import ScoreNetConfig, ScoreNetwork
from ncsn.losses import dsm_loss
from ncsn.sampling import annealed_langevin, make_sampler, langevin_step_sizes
