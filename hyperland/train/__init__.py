"""hyperland.train: the MoCo trainer behind ``hyperland-train`` (recipes, one or many processes, export).

Import the pieces from their modules (``hyperland.train.trainer.train``, ``hyperland.train.export``); this
package keeps its import light so ``python -m hyperland.train`` starts fast.
"""

from .config import TrainConfig, list_recipes, load_recipe

__all__ = ["TrainConfig", "list_recipes", "load_recipe"]
