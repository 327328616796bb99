"""The encoder base class, the configuration dataclass base, the logit scale and the encoder registry.

Every EEG encoder of the toolkit is an :class:`EEGEncoder`: an ``nn.Module`` with one call signature
``forward(eeg, subject_ids=None) -> eeg_embeds``, a frozen configuration dataclass (a subclass of
:class:`EncoderConfig`) serialised to ``config.json``, and a ``save_pretrained`` / ``from_pretrained`` round trip
through safetensors. Input validation lives here, once, for all encoders.

Encoders register themselves with :func:`register_encoder`; :func:`create_encoder` builds one by name and
:func:`list_encoders` enumerates them (the contract tests run on every registered encoder).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from .._version import __version__
from ..errors import ToolkitError
from ..utils import atomic_path, atomic_write_json

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
LOGIT_SCALE_PARAMETRIZATIONS = ("raw", "exp")

# owner/name, as the Hugging Face Hub spells repository ids.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_MAX_LISTED_KEYS = 8


# --------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------
def check_int_field(config: Any, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ToolkitError(
            f"{type(config).__name__}.{name} must be an integer >= {minimum}; got {value!r}; fix the value passed "
            f"for '{name}'."
        )


def check_float_field(
    config: Any, name: str, *, low: float, high: float | None = None, open_low: bool = False
) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ToolkitError(
            f"{type(config).__name__}.{name} must be a finite number {bound}; got {value!r}; fix the value passed "
            f"for '{name}'."
        )
    # Frozen dataclass: store JSON-friendly floats (an int such as sfreq=250 becomes 250.0).
    object.__setattr__(config, name, float(value))


def check_choice_field(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ToolkitError(
            f"{type(config).__name__}.{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}."
        )


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """Fields every encoder configuration has (the signal vocabulary and the contrastive temperature).

    Subclasses add their architecture's fields (all with documented defaults) and extend :meth:`validate`.

    Parameters
    ----------
    n_chans : int
        Number of EEG/MEG channels the encoder expects.
    n_times : int
        Number of samples per trial the encoder expects.
    sfreq : float
        Sampling rate of those samples in Hz (recorded so a checkpoint says what data it was trained on).
    embed_dim : int
        Size of the output embedding (1024 for OpenCLIP ViT-H-14 image embeddings).
    logit_scale : str
        How the contrastive loss turns its learnable scalar into the logit multiplier (see :class:`LogitScale`):
        ``"raw"`` uses the parameter directly, as the ATM reference code does; ``"exp"`` uses its exponential,
        as CLIP does. The scale belongs to the loss, never to the forward pass.
    logit_scale_init : float
        Initial value of that parameter: ``log(1 / 0.07) ≈ 2.659`` (the reference), i.e. a multiplier of 2.659
        with ``"raw"`` and 14.29 with ``"exp"``.
    """

    n_chans: int = 63
    n_times: int = 250
    sfreq: float = 250.0
    embed_dim: int = 1024
    logit_scale: str = "raw"
    logit_scale_init: float = math.log(1 / 0.07)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; subclasses call ``super().validate()`` first and add their own checks."""
        check_int_field(self, "n_chans", minimum=1)
        check_int_field(self, "n_times", minimum=1)
        check_float_field(self, "sfreq", low=0.0, open_low=True)
        check_int_field(self, "embed_dim", minimum=1)
        check_choice_field(self, "logit_scale", LOGIT_SCALE_PARAMETRIZATIONS)
        check_float_field(self, "logit_scale_init", low=-math.inf)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the configuration fields, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the configuration") -> EncoderConfig:
        """Build a configuration from a dict, rejecting unknown fields.

        Parameters
        ----------
        data : Mapping
            Field name → value; missing fields take their defaults.
        source : str
            Where the dict came from (a file or a call), named in error messages.

        Returns
        -------
        EncoderConfig
            The validated configuration.
        """
        if not isinstance(data, Mapping):
            raise ToolkitError(f"{source} must hold a mapping of configuration fields; got {type(data).__name__}.")
        names = cls.field_names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ToolkitError(
                f"{source} has unknown {cls.__name__} fields {', '.join(unknown)}; valid fields are "
                f"{', '.join(names)}."
            )
        return cls(**dict(data))

    def replace(self, **changes: Any) -> EncoderConfig:
        """A copy with some fields changed (validated again)."""
        return self.from_dict({**self.to_dict(), **changes}, source="replace()")


# --------------------------------------------------------------------------------------------------------------
# Logit scale (belongs to the loss)
# --------------------------------------------------------------------------------------------------------------
class LogitScale(nn.Module):
    """The learnable multiplier of a CLIP-style contrastive loss, kept out of every encoder's forward pass.

    The trainer owns one (built by :meth:`EEGEncoder.make_logit_scale` from the encoder's configuration) next to
    its loss and optimises it together with the encoder; it is saved with the trainer's state, not with the
    encoder's weights, because retrieval only ranks cosine similarities and never needs it.

    Parameters
    ----------
    parametrization : str
        ``"raw"``: the multiplier is the parameter itself, unclamped (the ATM reference code, §3.1 item 9 of the
        reference sheet: initialised to ``log(1/0.07)`` but used without ``exp``). ``"exp"``: the multiplier is
        ``exp(parameter)``, clamped to ``max_scale`` (CLIP).
    init : float
        Initial value of the parameter.
    max_scale : float
        Upper clamp of the multiplier with ``"exp"`` (CLIP uses 100); ignored with ``"raw"``.
    """

    def __init__(self, parametrization: str = "raw", init: float = math.log(1 / 0.07), max_scale: float = 100.0):
        super().__init__()
        if parametrization not in LOGIT_SCALE_PARAMETRIZATIONS:
            raise ToolkitError(
                f"LogitScale parametrization must be one of {', '.join(LOGIT_SCALE_PARAMETRIZATIONS)}; got "
                f"{parametrization!r}."
            )
        self.parametrization = parametrization
        self.max_scale = float(max_scale)
        self.logit_scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self) -> torch.Tensor:
        """The multiplier applied to cosine-similarity logits (a 0-d tensor)."""
        if self.parametrization == "exp":
            return self.logit_scale.exp().clamp(max=self.max_scale)
        return self.logit_scale

    def extra_repr(self) -> str:
        return f"parametrization={self.parametrization!r}"


# --------------------------------------------------------------------------------------------------------------
# Input and checkpoint validation (the one place for all encoders)
# --------------------------------------------------------------------------------------------------------------
def check_encoder_input(
    eeg: Any, subject_ids: Any, config: EncoderConfig, *, encoder: str, reference: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Validate an encoder's inputs and return ``subject_ids`` as int64 on the device of ``eeg``.

    Parameters
    ----------
    eeg : torch.Tensor, shape (batch, n_chans, n_times)
        Floating-point EEG.
    subject_ids : torch.Tensor | None, shape (batch,)
        Non-negative integer subject indices, or ``None``.
    config : EncoderConfig
        The encoder's configuration (expected channel count and length).
    encoder : str
        Registry name of the encoder, for messages.
    reference : torch.Tensor | None
        A parameter of the encoder; ``eeg`` must share its dtype and device.

    Returns
    -------
    torch.Tensor | None
        The subject ids as int64 on ``eeg``'s device, or ``None``.
    """
    if not isinstance(eeg, torch.Tensor):
        raise ToolkitError(
            f"eeg must be a torch.Tensor of shape (batch, n_chans, n_times); got {type(eeg).__name__}; convert it "
            "with torch.as_tensor(x, dtype=torch.float32)."
        )
    if eeg.ndim != 3:
        hint = " (add a batch dimension with eeg[None])" if eeg.ndim == 2 else ""
        raise ToolkitError(f"eeg must be 3-D (batch, n_chans, n_times); got shape {tuple(eeg.shape)}{hint}.")
    batch, n_chans, n_times = eeg.shape
    if (n_chans, n_times) != (config.n_chans, config.n_times):
        raise ToolkitError(
            f"eeg has {n_chans} channels x {n_times} samples but this '{encoder}' encoder expects "
            f"{config.n_chans} channels x {config.n_times} samples (config n_chans, n_times); select channels and "
            "crop/resample the trials to match, or build the encoder for this shape."
        )
    if batch == 0:
        raise ToolkitError("eeg has an empty batch (batch size 0); pass at least one trial.")
    if not eeg.is_floating_point():
        raise ToolkitError(f"eeg must be floating point (float32); got {eeg.dtype}; convert it with eeg.float().")
    if reference is not None and (eeg.dtype != reference.dtype or eeg.device != reference.device):
        raise ToolkitError(
            f"eeg is {eeg.dtype} on {eeg.device} but the '{encoder}' encoder's weights are {reference.dtype} on "
            f"{reference.device}; move one of them with .to(...)."
        )
    finite = torch.isfinite(eeg)
    if not bool(finite.all()):
        n_bad = int(finite.numel() - finite.sum())
        raise ToolkitError(
            f"eeg contains {n_bad} NaN or infinite value(s); interpolate or drop the bad trials/channels first."
        )
    if subject_ids is None:
        return None
    if not isinstance(subject_ids, torch.Tensor):
        raise ToolkitError(
            f"subject_ids must be an int64 torch.Tensor of shape (batch,) or None; got {type(subject_ids).__name__}."
        )
    if subject_ids.is_floating_point() or subject_ids.is_complex() or subject_ids.dtype == torch.bool:
        raise ToolkitError(f"subject_ids must be an integer tensor (int64); got {subject_ids.dtype}.")
    if tuple(subject_ids.shape) != (batch,):
        raise ToolkitError(
            f"subject_ids must have shape ({batch},) to match the eeg batch; got {tuple(subject_ids.shape)}."
        )
    if bool((subject_ids < 0).any()):
        raise ToolkitError("subject_ids must be non-negative subject indices; got a negative value.")
    return subject_ids.to(device=eeg.device, dtype=torch.long)


def _list_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def check_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, what: str) -> None:
    """Fail with one message naming missing, unexpected and shape-mismatched keys, if there are any.

    Parameters
    ----------
    module : nn.Module
        The module the state dict is meant for.
    state : Mapping of str to torch.Tensor
        The checkpoint's tensors.
    source : str
        Where the checkpoint came from (a file), named in the message.
    what : str
        What the module is (e.g. ``"'atm-s' encoder with n_chans=63, n_times=250"``), named in the message.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} (checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"missing keys: {_list_keys(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_list_keys(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches: {_list_keys(mismatched)}")
    raise ToolkitError(
        f"The checkpoint {source} does not fit the {what} ({'; '.join(parts)}); it was saved from another "
        "architecture or configuration, so load it with the configuration it was saved with."
    )


# --------------------------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------------------------
EncoderT = TypeVar("EncoderT", bound="EEGEncoder")


class FusedEncoder(nn.Module):
    """Base of the inference-only folded copies returned by :meth:`EEGEncoder.fuse`.

    A fused encoder holds pre-folded tensors as buffers (it has no parameters), always computes eval-mode
    outputs, and never records gradients. Subclasses implement :meth:`run`.

    Parameters
    ----------
    config : EncoderConfig
        The configuration of the encoder it was folded from (used to validate inputs).
    name : str
        Registry name of that encoder.
    """

    def __init__(self, config: EncoderConfig, name: str) -> None:
        super().__init__()
        self.config = config
        self.encoder_name = name

    def _first_buffer(self) -> torch.Tensor | None:
        return next(iter(self.buffers()), None)

    def forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Eval-mode embeddings ``(batch, embed_dim)`` (not normalised), computed without autograd."""
        ids = check_encoder_input(
            eeg, subject_ids, self.config, encoder=self.encoder_name, reference=self._first_buffer()
        )
        with torch.no_grad():
            return self.run(eeg, ids)

    def run(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        """Compute embeddings from validated inputs (no checks, no autograd)."""
        raise NotImplementedError


class EEGEncoder(nn.Module):
    """Base class of all EEG encoders: one forward signature, a frozen config, validation, save/load.

    Subclasses set ``config_class``, implement :meth:`_forward` (the layer-by-layer computation used in training
    and as the reference) and may implement :meth:`_build_fused` (a folded inference copy). They are registered
    with :func:`register_encoder`, which sets ``name``.

    Parameters
    ----------
    config : EncoderConfig | None
        The configuration; ``None`` uses the defaults of ``config_class``.

    Attributes
    ----------
    fast_inference : bool
        In eval mode, when no gradient is needed, run the cached fused copy (:meth:`fuse`) instead of the
        layer-by-layer path. Default ``True``; outputs agree within 1e-5.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[EncoderConfig]] = EncoderConfig

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise ToolkitError(
                f"{type(self).__name__} needs a {self.config_class.__name__}; got {type(config).__name__}."
            )
        self.config = config
        self.fast_inference = True
        # (key, fused module); a tuple so that nn.Module does not register the fused copy as a submodule.
        self._fused_cache: tuple[tuple, FusedEncoder] | None = None

    # -- the one forward signature ---------------------------------------------------------------------------
    def forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Embed EEG trials.

        Parameters
        ----------
        eeg : torch.Tensor, shape (batch, n_chans, n_times)
            float32 EEG (same dtype and device as the encoder).
        subject_ids : torch.Tensor | None, shape (batch,)
            int64 subject indices for encoders with subject-specific parts (ignored by the others); ``None``
            means unknown subjects.

        Returns
        -------
        eeg_embeds : torch.Tensor, shape (batch, embed_dim)
            The embeddings, **not** L2-normalised.
        """
        ids = check_encoder_input(eeg, subject_ids, self.config, encoder=self.name, reference=self._reference())
        if self._can_use_fused(eeg):
            fused = self._cached_fused()
            if fused is not None:
                with torch.no_grad():
                    return fused.run(eeg, ids)
        return self._forward(eeg, ids)

    def _forward(self, eeg: torch.Tensor, subject_ids: torch.Tensor | None) -> torch.Tensor:
        """The layer-by-layer computation on validated inputs (subclasses implement it)."""
        raise NotImplementedError

    def _reference(self) -> torch.Tensor | None:
        return next(iter(self.parameters()), None)

    # -- fused inference path ----------------------------------------------------------------------------------
    def _build_fused(self) -> FusedEncoder | None:
        """Fold the current weights into an inference-only copy; ``None`` if the encoder has no fused path."""
        return None

    def fuse(self) -> FusedEncoder:
        """Return an inference-only copy with eval-mode layers folded together (same outputs within 1e-5).

        The copy holds snapshots of the current weights: later changes to this encoder do not reach it. The
        encoder itself uses an internally cached copy automatically in eval mode (see ``fast_inference``).

        Returns
        -------
        FusedEncoder
            A module with the same ``forward(eeg, subject_ids=None)`` signature, computing eval-mode outputs.
        """
        with torch.no_grad():
            fused = self._build_fused()
        if fused is None:
            raise ToolkitError(f"The '{self.name}' encoder has no fused inference path; call it directly.")
        return fused.eval()

    def _can_use_fused(self, eeg: torch.Tensor) -> bool:
        if self.training or not self.fast_inference:
            return False
        if not torch.is_grad_enabled():
            return True
        # Autograd is on: keep the exact layer-by-layer path whenever a gradient is wanted (attribution w.r.t.
        # the input, or fine-tuning parameters in eval mode).
        return not eeg.requires_grad and not any(p.requires_grad for p in self.parameters())

    def _weights_key(self) -> tuple:
        # Identifies the current weights: storage address and in-place version counter of every parameter and
        # buffer, so optimiser steps, load_state_dict, .to() and manual in-place edits all invalidate the cache.
        return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in (*self.parameters(), *self.buffers()))

    def _cached_fused(self) -> FusedEncoder | None:
        key = self._weights_key()
        if self._fused_cache is not None and self._fused_cache[0] == key:
            return self._fused_cache[1]
        with torch.no_grad():
            fused = self._build_fused()
        self._fused_cache = None if fused is None else (key, fused.eval())
        return fused

    def train(self: EncoderT, mode: bool = True) -> EncoderT:
        """Set training mode; entering training drops the cached fused copy."""
        if mode:
            self._fused_cache = None
        return super().train(mode)

    # -- conveniences ------------------------------------------------------------------------------------------
    def make_logit_scale(self) -> LogitScale:
        """A fresh :class:`LogitScale` for the contrastive loss, as this encoder's configuration asks."""
        return LogitScale(self.config.logit_scale, self.config.logit_scale_init)

    def encode(
        self,
        eeg: Any,
        subject_ids: Any = None,
        *,
        batch_size: int = 256,
        normalize: bool = False,
    ) -> torch.Tensor:
        """Embed many trials in eval mode, in batches, under ``torch.inference_mode``.

        Parameters
        ----------
        eeg : torch.Tensor | np.ndarray, shape (n_trials, n_chans, n_times)
            EEG; converted to the encoder's dtype and device.
        subject_ids : torch.Tensor | np.ndarray | int | None, shape (n_trials,)
            Subject indices, one for all trials, or ``None``.
        batch_size : int
            Trials per forward pass.
        normalize : bool
            L2-normalise the embeddings.

        Returns
        -------
        eeg_embeds : torch.Tensor, shape (n_trials, embed_dim)
            Embeddings (an inference tensor: use it for retrieval, not in autograd).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ToolkitError(f"batch_size must be a positive integer; got {batch_size!r}.")
        ref = self._reference()
        device = ref.device if ref is not None else torch.device("cpu")
        dtype = ref.dtype if ref is not None else torch.float32
        try:
            eeg = torch.as_tensor(eeg, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ToolkitError(f"eeg could not be converted to a tensor ({err}); pass a numeric array.") from err
        if subject_ids is not None:
            subject_ids = torch.as_tensor(subject_ids, device=device)
            if subject_ids.ndim == 0 and eeg.ndim >= 1:
                subject_ids = subject_ids.expand(eeg.shape[0])
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                if eeg.ndim == 3 and eeg.shape[0] > batch_size:
                    chunks = []
                    for start in range(0, eeg.shape[0], batch_size):
                        ids = None if subject_ids is None else subject_ids[start : start + batch_size]
                        chunks.append(self(eeg[start : start + batch_size], ids))
                    out = torch.cat(chunks)
                else:
                    out = self(eeg, subject_ids)
                if normalize:
                    out = nn.functional.normalize(out, dim=-1)
        finally:
            self.train(was_training)
        return out

    def n_parameters(self, trainable_only: bool = True) -> int:
        """Number of (trainable) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"

    # -- save / load -------------------------------------------------------------------------------------------
    def _describe(self) -> str:
        return f"'{self.name}' encoder with n_chans={self.config.n_chans}, n_times={self.config.n_times}"

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (each file written atomically).

        Parameters
        ----------
        directory : str | Path
            Target folder (created if needed; other files in it are left alone).

        Returns
        -------
        Path
            The folder.
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ToolkitError(f"save_pretrained needs a directory but {directory} is a file; pick another path.")
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        meta = {"format": "pt", "encoder": self.name, "toolkit_version": __version__}
        # Weights first, then the config that describes them.
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata=meta)
        atomic_write_json(
            directory / CONFIG_NAME,
            {
                "encoder": self.name,
                "toolkit_version": __version__,
                "format_version": FORMAT_VERSION,
                "config": self.config.to_dict(),
            },
        )
        return directory

    @classmethod
    def from_pretrained(cls, dir_or_hub_id: str | Path, revision: str | None = None) -> EEGEncoder:
        """Load an encoder saved with :meth:`save_pretrained` from a folder or a Hugging Face Hub repository.

        Called on :class:`EEGEncoder` it builds whichever registered encoder ``config.json`` names; called on a
        subclass it also checks that the checkpoint is of that encoder.

        Parameters
        ----------
        dir_or_hub_id : str | Path
            A local folder, or a Hub id ``"owner/name"`` (fetched with ``huggingface_hub.snapshot_download``, which
            honours ``HF_HUB_OFFLINE`` and the local cache).
        revision : str | None
            Hub branch, tag or commit; only for Hub ids.

        Returns
        -------
        EEGEncoder
            The encoder, in eval mode.
        """
        directory = _resolve_pretrained(dir_or_hub_id, revision)
        config_path = directory / CONFIG_NAME
        meta = _read_config_json(config_path)
        name = meta["encoder"]
        target = get_encoder_class(name)
        if cls is not EEGEncoder and not issubclass(target, cls):
            raise ToolkitError(
                f"{config_path} holds a '{name}' encoder, not a '{cls.name}' one; load it with "
                f"EEGEncoder.from_pretrained or {target.__name__}.from_pretrained."
            )
        config = target.config_class.from_dict(meta["config"], source=str(config_path))
        model = target(config)
        state = _read_weights(directory / WEIGHTS_NAME)
        check_state_dict(model, state, source=str(directory / WEIGHTS_NAME), what=model._describe())
        model.load_state_dict(state)
        return model.eval()


def _resolve_pretrained(dir_or_hub_id: str | Path, revision: str | None) -> Path:
    if not isinstance(dir_or_hub_id, (str, Path)):
        raise ToolkitError(
            f"from_pretrained needs a folder or a Hub id 'owner/name'; got {type(dir_or_hub_id).__name__}."
        )
    path = Path(dir_or_hub_id).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ToolkitError(f"revision={revision!r} only applies to Hub ids, but {path} is a local folder.")
        return path
    if path.exists():
        raise ToolkitError(f"{path} is a file; from_pretrained needs the folder holding {CONFIG_NAME}.")
    text = str(dir_or_hub_id)
    if not _HUB_ID.fullmatch(text) or ".." in text:
        raise ToolkitError(
            f"{text!r} is neither an existing folder nor a Hugging Face Hub id ('owner/name'); check the path."
        )
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(repo_id=text, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME])
    except (OSError, ValueError) as err:  # hub HTTP/offline/validation errors derive from these
        raise ToolkitError(
            f"{text!r} is not a local folder and could not be fetched from the Hugging Face Hub ({err}); check the "
            "path or repository id, or download the encoder first."
        ) from err
    return Path(local)


def _read_config_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ToolkitError(f"{path} is missing; the folder does not hold an encoder saved with save_pretrained.")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ToolkitError(f"{path} is not valid JSON ({err}); re-save the encoder.") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("encoder"), str) or "config" not in meta:
        raise ToolkitError(f"{path} must hold an object with 'encoder' (a name) and 'config'; re-save the encoder.")
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ToolkitError(
            f"{path} has format_version {version!r}, newer than this toolkit reads ({FORMAT_VERSION}); upgrade "
            "eeg-visual-toolkit."
        )
    return meta


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ToolkitError(f"{path} is missing; the folder does not hold an encoder saved with save_pretrained.")
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise ToolkitError(f"{path} is not a readable safetensors file ({err}); re-save the encoder.") from err


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------
_ENCODERS: dict[str, type[EEGEncoder]] = {}


def register_encoder(name: str) -> Callable[[type[EncoderT]], type[EncoderT]]:
    """Class decorator registering an :class:`EEGEncoder` subclass under ``name``.

    Parameters
    ----------
    name : str
        Registry name (lower case, e.g. ``"atm-s"``); stored as the class's ``name``.
    """
    if not isinstance(name, str) or not name:
        raise ToolkitError(f"An encoder name must be a non-empty string; got {name!r}.")

    def wrap(cls: type[EncoderT]) -> type[EncoderT]:
        if not (isinstance(cls, type) and issubclass(cls, EEGEncoder)):
            raise ToolkitError(f"register_encoder('{name}') decorates EEGEncoder subclasses; got {cls!r}.")
        existing = _ENCODERS.get(name)
        same = existing is not None and (existing.__module__, existing.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        )
        if existing is not None and not same:
            raise ToolkitError(
                f"The encoder name '{name}' is already taken by {existing.__module__}.{existing.__qualname__}; "
                "choose another name."
            )
        cls.name = name
        _ENCODERS[name] = cls
        return cls

    return wrap


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    return sorted(_ENCODERS)


def get_encoder_class(name: str) -> type[EEGEncoder]:
    """The encoder class registered as ``name``; an unknown name fails listing the known ones."""
    try:
        return _ENCODERS[name]
    except (KeyError, TypeError):
        raise ToolkitError(f"Unknown encoder {name!r}; known encoders: {', '.join(list_encoders())}.") from None


def create_encoder(name: str, **config: Any) -> EEGEncoder:
    """Build the encoder ``name`` with configuration fields ``config`` (others take their defaults).

    Parameters
    ----------
    name : str
        A name from :func:`list_encoders`.
    **config
        Fields of that encoder's configuration dataclass.

    Returns
    -------
    EEGEncoder
        A freshly initialised encoder (training mode, like any new ``nn.Module``).
    """
    cls = get_encoder_class(name)
    return cls(cls.config_class.from_dict(config, source=f"create_encoder({name!r})"))
