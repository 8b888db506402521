"""The shared training loop (strategy, checkpoints, EMA, TensorBoard, eval)."""

from training.loop import LoopConfig, Task, train
from training.strategy import get_strategy
from training.ema import EMA
