"""Checks shared by the flow configs (GlowConfig, RealNVPConfig)."""

import dataclasses
from typing import Any, Dict

from flow_models import couplings
from flow_models import preprocessing
from flow_models import utils
from common.errors import ParameterError


def check_common_fields(config):
  """Validates the fields every flow config has; ParameterError naming the value."""
  utils.check_int('levels', config.levels)
  utils.check_int('steps_per_level', config.steps_per_level)
  utils.check_int('hidden_channels', config.hidden_channels)
  if config.coupling not in couplings.COUPLING_KINDS:
    raise ParameterError(
        f'coupling must be one of {couplings.COUPLING_KINDS}, got {config.coupling!r}')
  if config.preprocessing not in preprocessing.PREPROCESSINGS:
    raise ParameterError(f'preprocessing must be one of {preprocessing.PREPROCESSINGS}, '
                         f'got {config.preprocessing!r}')
  if not 0.0 < config.logit_alpha < 0.5:
    raise ParameterError(f'logit_alpha must be in (0, 0.5), got {config.logit_alpha!r}')


def config_from_dict(cls, d: Dict[str, Any]):
  """``cls(**d)``; ParameterError for keys that are not fields of ``cls``."""
  unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
  if unknown:
    raise ParameterError(f'unknown {cls.__name__} keys {sorted(unknown)}')
  return cls(**d)
