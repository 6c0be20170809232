"""The learning-rate schedule shared by the training stages: linear warm-up over 2% of the steps, then cosine."""

import math


def cosine_lr(step: int, total_steps: int, peak: float) -> float:
    warmup = max(1, total_steps // 50)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))
