"""TFP's ``Chain``, ``Invert`` and ``JointMap``, hashed by identity.

TFP bijectors hash by value: the hash of a ``Chain`` hashes every bijector
inside it, recursively, and TFP's bijector cache hashes a bijector at every
``forward``/``inverse``/log-det lookup. In a deep, nested flow (a Glow level
holds the next level inside a ``JointMap``; a checkerboard coupling is a
chain holding a squeeze chain) that costs time proportional to the size of
the whole subtree at every call: an eager ``log_prob`` of a tiny two-level
RealNVP took 3.5 s, 19x its 0.19 s with identity hashing (and Glow's
traces got faster too). Nothing here relies on two distinct but equal
bijectors sharing cache entries, so the composites below keep TFP's
behaviour and only hash by identity.

They subclass TFP's non-CompositeTensor base classes (``_Chain`` ...), which
is what ``tfb.Chain(...)`` itself returns when a member is not a
CompositeTensor (our bijectors hold ``tf.Module`` networks, so they never
are).
"""

from tensorflow_probability.python.bijectors import chain as _chain
from tensorflow_probability.python.bijectors import invert as _invert
from tensorflow_probability.python.bijectors import joint_map as _joint_map

# pylint: disable=protected-access


class Chain(_chain._Chain):
  """``tfb.Chain`` (applies its list last-to-first), hashed by identity."""

  __hash__ = object.__hash__


class Invert(_invert._Invert):
  """``tfb.Invert``, hashed by identity."""

  __hash__ = object.__hash__


class JointMap(_joint_map._JointMap):
  """``tfb.JointMap``, hashed by identity."""

  __hash__ = object.__hash__


InvertBase = _invert._Invert
