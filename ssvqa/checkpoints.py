"""Resuming a trainer's checkpoint with every weight: full weights or a peft adapter, copied in place.

transformers 5 saves weights under their original checkpoint names, and the Trainer's own
``strict=False`` load matched 1 of 57 tensors of the tiny model: a resumed run trained on from
mostly random weights. :func:`load_full_checkpoint` and :func:`load_adapter_checkpoint` copy every
stored tensor into the model in place (the optimizer's references stay valid) and raise
:class:`~ssvqa.errors.CheckpointError` for a tensor that is missing, unexpected, reshaped or
stored converted. :meth:`ssvqa.trainer.RankTrainer._load_from_checkpoint` calls them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ssvqa.errors import CheckpointError


def load_full_checkpoint(model, folder: str | Path) -> int:
    """Copy a ``save_pretrained`` checkpoint's weights into ``model`` in place; returns how many.

    The names on disk are the model's names after the conversion ``save_pretrained`` applies
    (tied copies dropped, ``transformers.core_model_loading.revert_weight_conversion``), so the
    same conversion of the model's own state dict says which stored tensor each parameter is.
    Parameters keep their identity (the optimizer's references stay valid).

    Raises:
        CheckpointError: a tensor is missing, unexpected, of another shape or dtype, or stored in a
            converted form (fused or split) that cannot be copied back in place.
    """
    from safetensors import safe_open
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    folder = Path(folder)
    own = model.state_dict()
    for key in getattr(model, "_keys_to_ignore_on_save", None) or ():
        own.pop(key, None)
    targets = revert_weight_conversion(model, remove_tied_weights_from_state_dict(own, model))
    ours = {id(tensor) for tensor in own.values()}
    converted = sorted(name for name, tensor in targets.items() if id(tensor) not in ours)
    if converted:
        raise CheckpointError(folder, f"{len(converted)} tensors are stored converted (fused or split), which resuming "
                                      f"cannot copy back in place: {_names(converted)}")
    files = _weight_files(folder)
    stored: dict[str, Path] = {}
    for file in files:
        with safe_open(file, framework="pt") as handle:
            stored.update(dict.fromkeys(handle.keys(), file))
    _check_names(folder, expected=targets, stored=stored)
    with torch.no_grad():
        for file in files:
            with safe_open(file, framework="pt") as handle:
                for name in handle.keys():
                    value, target = handle.get_tensor(name), targets[name]
                    if value.shape != target.shape or value.dtype != target.dtype:
                        raise CheckpointError(folder, f"{name} is {value.dtype} {tuple(value.shape)} in the checkpoint "
                                                      f"but {target.dtype} {tuple(target.shape)} in the model")
                    target.copy_(value)
    return len(targets)



def load_adapter_checkpoint(model, folder: str | Path) -> int:
    """Load a peft adapter checkpoint into ``model``'s active adapter in place; returns how many tensors.

    Expected are exactly the tensors peft saves for that adapter (``get_peft_model_state_dict``:
    LoRA matrices and ``modules_to_save`` copies), under the names it saves them.

    Raises:
        CheckpointError: a tensor is missing, unexpected or of another shape, or the model has
            several adapters.
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    folder = Path(folder)
    if len(model.peft_config) != 1:
        raise CheckpointError(folder, f"resuming a model with several adapters ({', '.join(model.peft_config)}) is not supported")
    adapter = model.active_adapter
    expected = get_peft_model_state_dict(model, adapter_name=adapter)
    if not (folder / "adapter_model.safetensors").is_file():
        raise CheckpointError(folder, "no adapter_model.safetensors (an adapter checkpoint is needed to resume a LoRA model)")
    stored = load_peft_weights(str(folder), device="cpu")
    _check_names(folder, expected=expected, stored=stored)
    for name, value in stored.items():
        if value.shape != expected[name].shape:
            raise CheckpointError(folder, f"{name} is {tuple(value.shape)} in the checkpoint but {tuple(expected[name].shape)} in the model")
    result = set_peft_model_state_dict(model, stored, adapter_name=adapter)
    if result.unexpected_keys:
        raise CheckpointError(folder, f"{len(result.unexpected_keys)} tensors matched no parameter: {_names(result.unexpected_keys)}")
    return len(stored)



def _weight_files(folder: Path) -> list[Path]:
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
    raise CheckpointError(folder, "no model.safetensors or model.safetensors.index.json")



def _check_names(folder: Path, *, expected, stored) -> None:
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    problems = [f"{len(missing)} of {len(expected)} tensors missing: {_names(missing)}"] if missing else []
    problems += [f"{len(unexpected)} unexpected tensors: {_names(unexpected)}"] if unexpected else []
    if problems:
        raise CheckpointError(folder, "; ".join(problems))



def _names(names, shown: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")
