"""BASIS separation with any prior that has ``score(x, sigma)``."""

from basis.separate import separate, Separator, DivergenceError
from basis.priors import GaussianPrior, NCSNPrior, check_prior
from basis.flow_prior import FlowFamilyPrior
from basis.mixing import mix_sum, mix_mean, DbPowerSum, get_mixing
from basis.diagnostics import denoising_error, score_roughness, stability_table
