"""Model names → local files. All Hub traffic goes through huggingface_hub (cache, offline, mirrors).

Sources, parsed here and nowhere else (see :func:`parse_source`):

* a manifest name (``celeba-r50``, ``random-r18``) from ``weights_manifest.json``;
* ``hf-hub:org/name[@revision]`` — a model directory on the Hub;
* a local model directory (``config.json`` + ``model.safetensors``);
* ``timm:ARCH[.tag]`` — any timm architecture.

Model directories are written here too (:func:`save_model_dir`, :func:`push_saved`), and the learned descriptor
projection and the descriptor PCA are split from the weights file (:func:`split_projection`, :func:`split_pca`).
"""

from __future__ import annotations

import difflib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from . import __version__
from .config import CONFIG_NAME, PCA_PREFIX, PROJECTION_PREFIX, WEIGHTS_NAME
from .errors import (
    ChecksumMismatchError,
    ModelNotFoundError,
    OfflineModeError,
    WeightsMismatchError,
    WeightsNotPublishedError,
)
from .integrity import sha256_file
from .manifest import ManifestEntry, load_manifest

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .config import ModelConfig
    from .features import Projection
    from .model import HyperlandModel

logger = logging.getLogger(__name__)

SourceKind = Literal["builtin", "manifest", "hub", "dir", "timm"]
_TRUE = {"1", "on", "yes", "true"}
SAVE_DTYPES = ("float32", "float16", "bfloat16")  # the torch dtypes save_model_dir can store weights in


@dataclass(frozen=True)
class Source:
    """A parsed model reference. ``value`` is a name, repo_id, directory or timm architecture."""

    kind: SourceKind
    value: str
    revision: str | None = None
    entry: ManifestEntry | None = None


def parse_source(name: str | os.PathLike, *, manifest: dict[str, ManifestEntry] | None = None) -> Source:
    """Decide what ``name`` refers to, without touching the network."""
    if isinstance(name, os.PathLike):
        return Source("dir", os.fspath(name))
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError(f"Model name {name!r} is empty or not a string. Try one of hyperland.list_models().")
    name = name.strip()
    if name.startswith("hf-hub:"):
        ref = name[len("hf-hub:"):]
        repo_id, _, revision = ref.partition("@")
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ModelNotFoundError(f"'{name}': expected 'hf-hub:org/name' or 'hf-hub:org/name@revision'.")
        return Source("hub", repo_id, revision or None)
    if name.startswith("timm:"):
        arch = name[len("timm:"):]
        if not arch:
            raise ModelNotFoundError("'timm:' needs an architecture, e.g. 'timm:resnet50' or 'timm:resnet50.a1_in1k'.")
        return Source("timm", arch)
    entries = load_manifest() if manifest is None else manifest
    if name in entries:
        entry = entries[name]
        return Source("builtin" if entry.status == "builtin" else "manifest", name, entry.revision, entry)
    if Path(name).expanduser().is_dir():
        return Source("dir", str(Path(name).expanduser()))
    looks_like_path = os.sep in name or name.startswith((".", "~")) or (os.altsep and os.altsep in name)
    if looks_like_path:
        raise ModelNotFoundError(
            f"Model directory '{name}' does not exist. A model directory holds {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(write one with model.save_pretrained(DIR))."
        )
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ModelNotFoundError(
        f"Unknown model '{name}'.{hint} Known names: {', '.join(sorted(entries))}; or use "
        "'hf-hub:org/name[@revision]', 'timm:ARCH' or a local model directory."
    )


def offline_requested(local_files_only: bool | None = None) -> bool:
    """``local_files_only`` if given, else the HF_HUB_OFFLINE environment variable (read at call time)."""
    if local_files_only is not None:
        return bool(local_files_only)
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _evict(path: Path) -> None:
    """Remove a cached file: the snapshot link and the blob it points to, so it is never served again."""
    try:
        blob = path.resolve()
    except OSError:
        blob = path
    for p in {path, blob}:
        p.unlink(missing_ok=True)


def download_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    sha256: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Fetch one file through huggingface_hub (cache first); verify its full sha256 when one is pinned."""
    offline = offline_requested(local_files_only)
    where = f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    try:
        path = Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=offline,
                library_name="hyperland",
                library_version=__version__,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )
        )
    except LocalEntryNotFoundError as exc:
        # huggingface_hub also reads HF_HUB_OFFLINE once at import; honour that too.
        if offline or hf_constants.is_offline_mode():
            raise OfflineModeError(
                f"'{where}' is not in the local cache ({cache_dir or 'default HF cache'}) and offline mode is on "
                "(HF_HUB_OFFLINE=1 or local_files_only=True). Run the same load once with network access "
                "(unset HF_HUB_OFFLINE) to fill the cache, or point cache_dir= at a cache that has it."
            ) from exc
        raise ModelNotFoundError(
            f"Could not reach the Hub for '{where}' and it is not cached ({exc}). Check your connection or "
            "HF_ENDPOINT, or load a local model directory."
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(f"Revision '{revision}' does not exist in '{repo_id}'. Check the @revision.") from exc
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hub repository '{repo_id}' not found (or private: log in with `hf auth login`)."
        ) from exc
    except EntryNotFoundError as exc:
        raise ModelNotFoundError(
            f"'{filename}' not found in '{repo_id}'" + (f" at {revision}" if revision else "")
            + f". A hyperland model repo holds {CONFIG_NAME} and {WEIGHTS_NAME}."
        ) from exc
    except HfHubHTTPError as exc:
        raise ModelNotFoundError(f"Hub request for '{where}' failed: {exc}") from exc
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            _evict(path)
            raise ChecksumMismatchError(
                f"sha256 mismatch for '{where}': expected {sha256}, got {actual}. The file was removed from the "
                "cache; loading again downloads it anew. If it persists, the repository changed under a pinned "
                "revision or a mirror serves other bytes — report it."
            )
    return path


def fetch_model_dir(
    repo_id: str,
    *,
    revision: str | None = None,
    filename: str = WEIGHTS_NAME,
    sha256: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool | None = None,
) -> tuple[Path, Path]:
    """Download config.json and the weights of a Hub model directory; return their local paths."""
    config = download_file(repo_id, CONFIG_NAME, revision=revision, cache_dir=cache_dir,
                           local_files_only=local_files_only)
    weights = download_file(repo_id, filename, sha256=sha256, revision=revision, cache_dir=cache_dir,
                            local_files_only=local_files_only)
    return config, weights


def require_published(entry: ManifestEntry) -> None:
    if entry.status == "unpublished":
        raise WeightsNotPublishedError(
            f"The weights of '{entry.name}' ({entry.architecture}, trained on {entry.data}) are not published yet. "
            f"To get them, {entry.how_to_get()}"
        )


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str = "Upload hyperland model", revision: str | None = None) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` with huggingface_hub; return the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token,
                library_name="hyperland", library_version=__version__)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message,
                             revision=revision)
    return str(getattr(info, "commit_url", info))


def save_model_dir(model: HyperlandModel, directory: str | os.PathLike, *, dtype: str = "float32",
                   card_extra: str = "") -> Path:
    """Write a model directory (:meth:`HyperlandModel.save_pretrained`): config.json with the weights' sha256,
    model.safetensors (backbone in timm keys + the learned projection + the descriptor PCA, in ``dtype``),
    README.md."""
    import hashlib
    from dataclasses import replace

    import torch
    from safetensors.torch import save

    from ._io import atomic_write_bytes, atomic_write_text
    from .backbone import backbone_state
    from .errors import InvalidOptionError
    from .modelcard import model_card

    if dtype not in SAVE_DTYPES:
        raise InvalidOptionError(f"dtype={dtype!r}: expected one of {sorted(SAVE_DTYPES)}.")
    state = backbone_state(model.backbone)
    if model.projection is not None:
        state.update({PROJECTION_PREFIX + k: v.detach().cpu().contiguous()
                      for k, v in model.projection.state_dict().items()})
    if model.pca is not None:
        state.update({PCA_PREFIX + "mean": model.pca.mean.detach().cpu().contiguous(),
                      PCA_PREFIX + "components": model.pca.components.detach().cpu().contiguous()})
    state = {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in state.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InvalidOptionError(f"{len(bad)} weight tensors (e.g. {bad[:2]}) are not finite in {dtype}: they "
                                 "overflow its range or were NaN already. Save in float32 or bfloat16.")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if dtype != "float32":
        card_extra = (f"## Precision\nWeights stored as {dtype}; hyperland casts them to float32 when loading.\n\n"
                      + card_extra)
    # One metadata key only: safetensors writes a multi-key metadata map in a per-process random order, which
    # would change the file's sha256 from one export of the same weights to the next.
    data = save(state, metadata={"format": "pt"})
    atomic_write_bytes(d / WEIGHTS_NAME, data)  # config.json records its sha256; load() verifies it
    atomic_write_text(d / CONFIG_NAME, replace(model.config, weights_sha256=hashlib.sha256(data).hexdigest()).to_json())
    atomic_write_text(d / "README.md", model_card(model.config, extra=card_extra))
    return d


def _split(state: dict[str, torch.Tensor], prefix: str, *, key: str, layers: tuple[int, ...] | None,
           shapes: Callable[[dict[str, torch.Tensor]], bool], expected: str, source: str
           ) -> dict[str, torch.Tensor] | None:
    """Remove the tensors under ``prefix`` from ``state`` (an explicit prefix filter): None when there are none
    and config.json's ``key`` (``layers``) is unset, else the tensors by their name after the prefix, which must
    be exactly those ``shapes`` accepts (WeightsMismatchError otherwise)."""
    own = {k[len(prefix):]: state.pop(k) for k in list(state) if k.startswith(prefix)}
    if layers is None and not own:
        return None
    if layers is None or not shapes(own):
        raise WeightsMismatchError(
            f"'{source}': config.json {key}={layers} and the file's {prefix}* tensors {sorted(own)} do not agree. "
            f"Expected both or neither ({expected}); export the model again.")
    return own


def split_projection(state: dict[str, torch.Tensor], config: ModelConfig, *, source: str) -> nn.Conv2d | None:
    """Remove the learned projection's tensors (``hyperland_projection.weight`` (D, C, 1, 1), ``.bias`` (D,)) from
    ``state`` and build the 1x1 convolution; None when the model has none."""
    own = _split(state, PROJECTION_PREFIX, key="projection_layers", layers=config.projection_layers, source=source,
                 expected="weight (D, C, 1, 1) and bias (D,)",
                 shapes=lambda t: set(t) == {"weight", "bias"} and t["weight"].ndim == 4
                 and t["weight"].shape[2:] == (1, 1) and t["bias"].shape == (t["weight"].shape[0],))
    return None if own is None else projection_conv(own["weight"], own["bias"])


def split_pca(state: dict[str, torch.Tensor], config: ModelConfig, *, source: str) -> Projection | None:
    """Remove the descriptor PCA's tensors (``hyperland_pca.mean`` (C,), ``.components`` (D, C)) from ``state``
    and build its :class:`~hyperland.features.Projection` in float32 (with the explained variance its
    provenance records); None when the model has none."""
    from .features import Projection

    own = _split(state, PCA_PREFIX, key="pca_layers", layers=config.pca_layers, source=source,
                 expected="mean (C,) and components (D, C)",
                 shapes=lambda t: set(t) == {"mean", "components"} and t["mean"].ndim == 1
                 and t["components"].ndim == 2 and t["components"].shape[1] == t["mean"].shape[0])
    if own is None:
        return None
    explained = float(config.provenance.get("pca", {}).get("explained_variance", 1.0))
    return Projection(own["mean"].detach().float().cpu(), own["components"].detach().float().cpu(), explained)


def projection_conv(weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """The frozen 1x1 convolution of a learned descriptor projection from its (D, C, 1, 1) weight and (D,) bias
    (copied to CPU float32): what a loaded model, an export and the training probe run."""
    from torch import nn

    conv = nn.Conv2d(int(weight.shape[1]), int(weight.shape[0]), kernel_size=1)
    conv.load_state_dict({"weight": weight.detach().float().cpu(), "bias": bias.detach().float().cpu()}, strict=True)
    return conv.eval().requires_grad_(False)


def push_saved(write: Callable[[str], object], repo_id: str, *, private: bool = False, token: str | None = None,
               commit_message: str) -> str:
    """``write`` a folder (a model's or a head's save_pretrained) into a temporary directory and upload it with
    huggingface_hub (:func:`push_folder`); return the commit URL."""
    with tempfile.TemporaryDirectory(prefix="hyperland-push-") as tmp:
        write(tmp)
        return push_folder(tmp, repo_id, private=private, token=token, commit_message=commit_message)


__all__ = [
    "SAVE_DTYPES",
    "Source",
    "download_file",
    "fetch_model_dir",
    "offline_requested",
    "parse_source",
    "projection_conv",
    "push_folder",
    "push_saved",
    "require_published",
    "save_model_dir",
    "sha256_file",
    "split_pca",
    "split_projection",
]
