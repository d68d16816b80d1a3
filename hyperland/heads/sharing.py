"""Heads shared like models: ``save_pretrained`` (the head folder + a model card), ``push_to_hub`` and
``from_pretrained("hf-hub:org/name[@revision]")``, all through huggingface_hub (cache, offline mode,
``HF_ENDPOINT`` mirrors).

A pushed head must name a model that others can load: a manifest name or an ``hf-hub:`` reference. A head fitted
on a local model folder is refused with the fix (push the model, load it from the Hub, refit), since the folder
would not exist on the reader's machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_text
from ..errors import InvalidOptionError
from .io import HEAD_CONFIG, HEAD_WEIGHTS
from .reference import model_reference

if TYPE_CHECKING:
    from ..model import HyperlandModel
    from .estimator import LandmarkHead

CARD = "README.md"
SUBHEADS = ("coarse", "fine")  # a framed head's two heads (heads/framing.py)


def head_card(head: LandmarkHead) -> str:
    """A model card: landmarks, training images, validation error, the backbone reference and fingerprint."""
    ref = model_reference(head.model_, ".")
    sel = getattr(head, "selection_", None) or getattr(getattr(head, "fine_", None), "selection_", None) or {}
    names = getattr(head, "landmark_names_", None) or [str(i) for i in range(head.n_landmarks)]
    val = sel.get("val_error")
    lines = [
        "---", "library_name: hyperland", "tags: [landmarks, keypoints, hyperland]", "---", "",
        f"# A hyperland landmark head: {head.n_landmarks} landmarks", "",
        f"- landmarks: {', '.join(names)}",
        f"- method: `{head.method}`, framing: `{head.framing}`",
        f"- labelled training images: {sel.get('n_labelled', 'not recorded')}",
        ("- validation error (mean normalised point error on held-out labelled images, chosen settings): "
         + ("not measured" if val is None else f"{val:.4f}")),
        (f"- backbone: `{ref['source']}` (fingerprint `{head.fingerprint_}`, input {ref['resize']} px, border "
         f"{ref['border']})"), "",
        "```python",
        "import hyperland",
        "head = hyperland.LandmarkHead.from_pretrained(\"hf-hub:ORG/NAME\")   # loads its backbone too",
        "points, confidence = head.predict(\"image.jpg\", return_confidence=True)",
        "```", "",
    ]
    return "\n".join(lines)


def save_pretrained(head: LandmarkHead, directory: str | os.PathLike) -> Path:
    d = Path(directory)
    head.save(d)
    atomic_write_text(d / CARD, head_card(head))
    return d


def push_to_hub(head: LandmarkHead, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str = "Upload hyperland head") -> str:
    from ..hub import push_saved

    source = model_reference(head.model_, ".")["source"]
    if source is None or not (source.startswith("hf-hub:") or "/" not in source):
        raise InvalidOptionError(
            f"This head was fitted on model {source!r}, which others cannot load from the Hub. Push the model first "
            "(model.push_to_hub('org/model')), load it as hyperland.load('hf-hub:org/model'), refit the head on it, "
            "then push the head.")
    return push_saved(lambda d: save_pretrained(head, d), repo_id, private=private, token=token,
                      commit_message=commit_message)


def from_pretrained(cls: type[LandmarkHead], source: str | os.PathLike, *, model: HyperlandModel | None = None,
                    device: Any = None, cache_dir: str | Path | None = None,
                    local_files_only: bool | None = None) -> LandmarkHead:
    """A head from ``hf-hub:org/name[@revision]`` or a local folder; its model from its head.json unless given."""
    from ..hub import download_file, parse_source

    if isinstance(source, str) and source.startswith("hf-hub:"):
        src = parse_source(source)

        def get(name: str) -> Path:
            return download_file(src.value, name, revision=src.revision, cache_dir=cache_dir,
                                 local_files_only=local_files_only)

        config = get(HEAD_CONFIG)
        get(HEAD_WEIGHTS)
        params = json.loads(config.read_text(encoding="utf-8")).get("params", {})
        if isinstance(params, dict) and params.get("framing", "none") != "none":
            for sub in SUBHEADS:
                get(f"{sub}/{HEAD_CONFIG}")
                get(f"{sub}/{HEAD_WEIGHTS}")
        source = config.parent
    return cls.load(source, model=model, device=device)


__all__ = ["from_pretrained", "head_card", "push_to_hub", "save_pretrained"]
