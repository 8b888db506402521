"""Normalizing-flow priors: Glow and RealNVP as ``tfd.TransformedDistribution``s.

See docs/flows.md. Builders return ``tfd.TransformedDistribution(N(0, I_D),
Invert(flow))`` over images ``[..., height, width, channels]`` in data units.
"""

from flow_models.actnorm import ActNorm
from flow_models.conv1x1 import InvertibleConv1x1
from flow_models.couplings import AffineCoupling, checkerboard_coupling
from flow_models.glow import GlowConfig, build_glow
from flow_models.model import (initialize, is_initialized, normalizing_flow, sample,
                               training_mode)
from flow_models.preprocessing import (bits_per_dim, dequantization_rescale,
                                       preprocessing_bijector)
from flow_models.realnvp import RealNVPConfig, build_realnvp
from flow_models.utils import num_parameters, print_summary
