"""Build timm backbones as feature extractors and run them only as far as the requested layers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .config import ModelConfig
from .errors import InvalidLayerError, ModelNotFoundError, WeightsMismatchError


def create_backbone(config: ModelConfig, *, pretrained: bool = False, seed: int | None = 0) -> nn.Module:
    """timm ``features_only`` model for ``config``; random init is seeded so builtins are reproducible."""
    import timm

    arch_base = config.architecture.split(".")[0]
    if not timm.is_model(arch_base):
        close = timm.list_models(f"*{arch_base.split('_')[0]}*")[:5]
        raise ModelNotFoundError(
            f"timm has no architecture '{config.architecture}'. Similar: {close or 'none'}; see timm.list_models()."
        )
    kw: dict[str, Any] = dict(features_only=True, out_indices=config.out_indices, **config.timm_kwargs)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            try:  # transformers need their token grid sized to our input; CNNs reject img_size
                model = timm.create_model(config.architecture, pretrained=pretrained, img_size=config.input_size, **kw)
            except TypeError:
                model = timm.create_model(config.architecture, pretrained=pretrained, **kw)
        except (IndexError, AssertionError) as exc:
            raise InvalidLayerError(
                f"{config.architecture} cannot return feature indices {config.out_indices} ({exc})."
            ) from exc
        except (OSError, RuntimeError) as exc:
            if pretrained:
                raise ModelNotFoundError(
                    f"timm could not fetch pretrained weights for '{config.architecture}' ({exc}). Without network "
                    "access use a local model directory, or drop the tag for random init."
                ) from exc
            raise
    return model.eval()


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (WeightsMismatchError when it cannot be read)."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsMismatchError(f"Cannot read weights file '{path}' ({exc}). Re-download or re-export it.") from exc


def load_weights(backbone: nn.Module, path: str | Path, *, drop: Sequence[str] = ()) -> None:
    """Load safetensors weights strictly; keys starting with a prefix in ``drop`` are removed explicitly."""
    load_state(backbone, read_weights(path), source=str(path), drop=drop)


def _wrapper_prefix(backbone: nn.Module) -> str:
    """``"model."`` for timm wrappers that hold the network as ``.model`` (FeatureGetterNet: ViTs), else ``""``."""
    keys = list(backbone.state_dict())
    return "model." if keys and all(k.startswith("model.") for k in keys) else ""


def backbone_state(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights under timm's key names (a ViT wrapper's ``model.`` prefix removed), on CPU."""
    n = len(_wrapper_prefix(backbone))
    return {k[n:]: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}


def load_state(backbone: nn.Module, state: dict[str, torch.Tensor], *, source: str, drop: Sequence[str] = ()) -> None:
    """Load ``state`` with ``strict=True`` semantics; keys are timm names (wrapper prefixes are added here).

    Keys starting with a prefix in ``drop`` are removed first (an explicit filter, e.g. a projection head).
    """
    state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in drop)}
    prefix = _wrapper_prefix(backbone)
    if prefix and not all(k.startswith(prefix) for k in state):
        state = {prefix + k: v for k, v in state.items()}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:2]})")
        raise WeightsMismatchError(
            f"Weights in '{source}' do not match the architecture: " + "; ".join(parts)
            + ". Check config.json's architecture/out_indices, or export the weights again."
        )
    backbone.load_state_dict(state, strict=True)


class FeatureRunner:
    """Maps timm feature indices to positions and runs the backbone only as deep as needed."""

    def __init__(self, backbone: nn.Module, architecture: str) -> None:
        info: Any = backbone.feature_info
        self.architecture = architecture
        self.indices: tuple[int, ...] = tuple(info.out_indices)
        self.channels: dict[int, int] = dict(zip(self.indices, info.channels()))
        self.reduction: dict[int, int] = dict(zip(self.indices, info.reduction()))
        # FeatureListNet / FeatureDictNet (CNNs) are ModuleDicts we can walk and stop early.
        self._walkable = isinstance(backbone, nn.ModuleDict) and hasattr(backbone, "return_layers")
        self._module_of = {int(v): k for k, v in getattr(backbone, "return_layers", {}).items()
                           if str(v).isdigit()}
        if self._walkable and set(self._module_of) != set(self.indices):
            self._walkable = False

    def check(self, layers: Sequence[int] | None, default: Sequence[int]) -> tuple[int, ...]:
        if layers is None:
            return tuple(default)
        if isinstance(layers, int):
            layers = (layers,)
        out = tuple(int(i) for i in layers)
        bad = [i for i in out if i not in self.channels]
        if not out or bad or len(set(out)) != len(out):
            raise InvalidLayerError(
                f"layers={tuple(layers)} is not valid for {self.architecture}: available feature indices are "
                f"{self.indices} (channels {list(self.channels.values())}, strides {list(self.reduction.values())}); "
                "give each at most once."
            )
        return out

    def __call__(self, backbone: nn.Module, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        if not self._walkable:
            feats = backbone(x)
            pos = {idx: p for p, idx in enumerate(self.indices)}
            return [feats[pos[i]] for i in layers]
        wanted = {self._module_of[i]: i for i in layers}
        got: dict[int, torch.Tensor] = {}
        for name, module in backbone.items():  # type: ignore[operator]
            x = module(x)
            if name in wanted:
                got[wanted[name]] = x
                if len(got) == len(wanted):
                    break
        return [got[i] for i in layers]


__all__ = ["FeatureRunner", "backbone_state", "create_backbone", "load_state", "load_weights", "read_weights"]
