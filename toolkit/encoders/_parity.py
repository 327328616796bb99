"""Compatibility with the ATM reference implementation (``ncclab-sustech/EEG_Image_decode`` commit 61fc9c3).

Three things live here:

- the explicit key mapping from the reference ``ATMS`` (and ``NICE``) state-dict names to this toolkit's names
  (:data:`REFERENCE_KEY_RULES`), with the reference entries that are deliberately not loaded
  (:data:`REFERENCE_IGNORED_KEYS`) and those recomputed instead of loaded (:data:`REFERENCE_RECOMPUTED_KEYS`);
- :func:`load_reference_atms`, which builds an :class:`~toolkit.encoders.ATMSEncoder` from a reference checkpoint;
- :func:`reference_forward`, a literal op-by-op transcription of the reference forward pass (separate
  convolution and pooling, einsum attention, ``Conv1d`` feed-forward) running on an encoder's own parameters. It
  is slow on purpose: the tests and the benchmark compare the fast paths with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ToolkitError
from ._layers import sinusoidal_encoding
from .atm import ATMSConfig, ATMSEncoder
from .base import EEGEncoder, check_state_dict
from .nice import NICEEncoder

#: Reference entries that have no counterpart in the forward pass, dropped on purpose (prefix match).
REFERENCE_IGNORED_KEYS: dict[str, str] = {
    "logit_scale": "the contrastive loss's temperature, not part of the forward pass (see LogitScale)",
    "subject_wise_linear.": "per-subject Linear(250, 250) layers that the reference defines but never calls",
    "encoder.enc_embedding.temporal_embedding.": "time-feature embedding, only used with time marks (never passed)",
    "encoder.enc_embedding.mask_token": "masking token for masked modelling, unused by ATMS",
    "encoder.enc_embedding.subject_embedding.mask_embedding": "masking embedding, unused by ATMS",
}

#: Reference buffers recomputed from the configuration rather than loaded (checked against the file).
REFERENCE_RECOMPUTED_KEYS: dict[str, str] = {
    "encoder.enc_embedding.position_embedding.pe": "sinusoidal table (1, 5000, d_model), recomputed for n_chans rows",
}

_TSCONV = {"0": "temporal", "2": "bn1", "4": "spatial", "5": "bn2"}
_ATTENTION = {
    "query_projection": "query",
    "key_projection": "key",
    "value_projection": "value",
    "out_projection": "out",
}
_BN_OR_CONV = "weight|bias|running_mean|running_var|num_batches_tracked"
_FFN = {"conv1": "ffn1", "conv2": "ffn2", "norm1": "norm1", "norm2": "norm2"}

#: Reference name (regular expression) -> toolkit name (template). ``{i}`` is a layer index.
REFERENCE_KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"encoder\.enc_embedding\.value_embedding\.(weight|bias)", r"value_embedding.\1"),
    (r"encoder\.enc_embedding\.subject_embedding\.subject_embedding\.weight", "subject_embedding.weight"),
    (r"encoder\.enc_embedding\.subject_embedding\.shared_embedding", "shared_token"),
    *(
        (rf"encoder\.encoder\.attn_layers\.(\d+)\.attention\.{ref}\.(weight|bias)", rf"layers.\1.{ours}.\2")
        for ref, ours in _ATTENTION.items()
    ),
    *(
        (rf"encoder\.encoder\.attn_layers\.(\d+)\.{ref}\.(weight|bias)", rf"layers.\1.{ours}.\2")
        for ref, ours in _FFN.items()
    ),
    (r"encoder\.encoder\.norm\.(weight|bias)", r"norm.\1"),
    *((rf"enc_eeg\.0\.tsconv\.{index}\.({_BN_OR_CONV})", rf"tsconv.{name}.\1") for index, name in _TSCONV.items()),
    (r"enc_eeg\.0\.projection\.0\.(weight|bias)", r"tsconv.pointwise.\1"),
    (r"proj_eeg\.0\.(weight|bias)", r"projector.linear.\1"),
    (r"proj_eeg\.1\.fn\.1\.(weight|bias)", r"projector.residual.\1"),
    (r"proj_eeg\.2\.(weight|bias)", r"projector.norm.\1"),
)
_COMPILED_RULES = tuple((re.compile(pattern), target) for pattern, target in REFERENCE_KEY_RULES)


def map_reference_key(key: str) -> str | None:
    """The toolkit name for a reference state-dict key, or ``None`` if it is ignored or recomputed.

    Parameters
    ----------
    key : str
        A name from the reference ``ATMS`` or ``NICE`` state dict.

    Returns
    -------
    str | None
        The toolkit name, or ``None`` for keys listed in :data:`REFERENCE_IGNORED_KEYS` /
        :data:`REFERENCE_RECOMPUTED_KEYS`.
    """
    if key in REFERENCE_RECOMPUTED_KEYS or any(key.startswith(prefix) for prefix in REFERENCE_IGNORED_KEYS):
        return None
    for pattern, target in _COMPILED_RULES:
        if pattern.fullmatch(key):
            return pattern.sub(target, key)
    raise ToolkitError(
        f"The reference checkpoint has an entry {key!r} that the ATM key mapping does not know; it is not a "
        "reference ATMS/NICE state dict of commit 61fc9c3."
    )


def convert_reference_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and reshape) a reference ``ATMS`` or ``NICE`` state dict to this toolkit's names.

    Every key is either mapped, recomputed or explicitly ignored; an unknown key fails. The feed-forward
    ``Conv1d`` kernels ``(out, in, 1)`` become ``Linear`` weights ``(out, in)``.

    Parameters
    ----------
    state : Mapping of str to torch.Tensor
        The reference state dict.

    Returns
    -------
    dict of str to torch.Tensor
        Tensors under the toolkit's names (ignored and recomputed entries left out).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        target = map_reference_key(key)
        if target is None:
            continue
        if re.fullmatch(r"layers\.\d+\.ffn[12]\.weight", target) and value.ndim == 3:
            value = value.squeeze(-1)
        out[target] = value
    return out


def _layer_indices(state: Mapping[str, torch.Tensor]) -> list[int]:
    found = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.encoder\.attn_layers\.(\d+)\.", k))}
    return sorted(found)


def reference_config_from_state_dict(state: Mapping[str, torch.Tensor], **overrides) -> ATMSConfig:
    """Infer an :class:`ATMSConfig` from the shapes of a reference ``ATMS`` state dict.

    ``n_heads`` (4), ``pool_kernel`` (51), ``pool_stride`` (5) and the dropouts cannot be read from shapes and
    keep their defaults unless given in ``overrides``; the positional encoding is ``"sinusoidal"`` (the reference
    always adds it) and the token slice ``"reference"``.

    Parameters
    ----------
    state : Mapping of str to torch.Tensor
        The reference state dict.
    **overrides
        :class:`ATMSConfig` fields that take precedence.

    Returns
    -------
    ATMSConfig
        The configuration.
    """
    required = (
        "encoder.enc_embedding.value_embedding.weight",
        "encoder.enc_embedding.subject_embedding.subject_embedding.weight",
        "enc_eeg.0.tsconv.0.weight",
        "enc_eeg.0.tsconv.4.weight",
        "proj_eeg.0.weight",
    )
    missing = [k for k in required if k not in state]
    layers = _layer_indices(state)
    if missing or not layers:
        what = ", ".join(missing) if missing else "encoder.encoder.attn_layers.*"
        raise ToolkitError(f"The checkpoint is not a reference ATMS state dict: it lacks {what}.")
    value = state["encoder.enc_embedding.value_embedding.weight"]
    inferred = {
        "d_model": int(value.shape[0]),
        "n_times": int(value.shape[1]),
        "n_subjects": int(state["encoder.enc_embedding.subject_embedding.subject_embedding.weight"].shape[0]),
        "n_chans": int(state["enc_eeg.0.tsconv.4.weight"].shape[2]),
        "n_filters": int(state["enc_eeg.0.tsconv.0.weight"].shape[0]),
        "temporal_kernel": int(state["enc_eeg.0.tsconv.0.weight"].shape[-1]),
        "embed_dim": int(state["proj_eeg.0.weight"].shape[0]),
        "d_ff": int(state[f"encoder.encoder.attn_layers.{layers[0]}.conv1.weight"].shape[0]),
        "n_layers": len(layers),
        "positional_encoding": "sinusoidal",
        "token_slice": "reference",
    }
    if inferred["d_model"] == inferred["n_times"]:
        inferred["d_model"] = None
    config = ATMSConfig.from_dict({**inferred, **overrides}, source="the reference ATMS checkpoint")
    flatten = int(state["proj_eeg.0.weight"].shape[1])
    if flatten != config.flatten_size:
        raise ToolkitError(
            f"The reference checkpoint's projector takes {flatten} features but the inferred configuration gives "
            f"{config.flatten_size}; pass the checkpoint's pool_kernel/pool_stride explicitly."
        )
    return config


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ToolkitError(f"The reference checkpoint {path} does not exist; check the path.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            # weights_only=True: tensors and plain containers only, no code execution from the file.
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors, pickle and zip readers raise unrelated error types
        raise ToolkitError(
            f"The reference checkpoint {path} could not be read ({type(err).__name__}: {err}); it must be a "
            "safetensors file or a torch.save'd state dict."
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ToolkitError(f"The reference checkpoint {path} does not hold a state dict of tensors.")
    if state and all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_reference_atms(
    checkpoint: str | Path | Mapping[str, torch.Tensor], config: ATMSConfig | None = None
) -> ATMSEncoder:
    """Build an :class:`ATMSEncoder` from a reference ``ATMS`` checkpoint through the explicit key mapping.

    Parameters
    ----------
    checkpoint : str | Path | Mapping of str to torch.Tensor
        A ``.safetensors`` file, a ``torch.save``'d state dict (read with ``weights_only=True``), or the state
        dict itself.
    config : ATMSConfig | None
        The configuration; ``None`` infers it from the tensor shapes (:func:`reference_config_from_state_dict`).

    Returns
    -------
    ATMSEncoder
        The encoder, in eval mode.
    """
    source = "given as a state dict"
    if isinstance(checkpoint, (str, Path)):
        source = str(checkpoint)
        checkpoint = _read_checkpoint(Path(checkpoint))
    state = dict(checkpoint)
    if config is None:
        config = reference_config_from_state_dict(state)
    encoder = ATMSEncoder(config)
    converted = convert_reference_state_dict(state)
    check_state_dict(encoder, converted, source=source, what=encoder._describe())
    pe_key = next(iter(REFERENCE_RECOMPUTED_KEYS))
    if pe_key in state and encoder.positional_encoding is not None:
        stored = state[pe_key].reshape(-1, state[pe_key].shape[-1])[: config.n_chans].float()
        expected = sinusoidal_encoding(config.n_chans, config.width)
        if stored.shape != expected.shape or not torch.allclose(stored, expected, atol=1e-5):
            raise ToolkitError(
                f"The positional-encoding table in the reference checkpoint {source} differs from the sinusoidal "
                "table this toolkit computes; the checkpoint is from another reference version."
            )
    encoder.load_state_dict(converted)
    return encoder.eval()


# --------------------------------------------------------------------------------------------------------------
# Literal reference forward
# --------------------------------------------------------------------------------------------------------------
def _reference_tsconv_projector(encoder: ATMSEncoder | NICEEncoder, x: torch.Tensor) -> torch.Tensor:
    tsconv, projector = encoder.tsconv, encoder.projector
    y = F.conv2d(x.unsqueeze(1), tsconv.temporal.weight, tsconv.temporal.bias)
    y = F.avg_pool2d(y, (1, tsconv.pool_kernel), (1, tsconv.pool_stride))
    y = F.elu(tsconv.bn1(y))
    y = F.conv2d(y, tsconv.spatial.weight, tsconv.spatial.bias)
    y = tsconv.dropout(F.elu(tsconv.bn2(y)))
    y = F.conv2d(y, tsconv.pointwise.weight, tsconv.pointwise.bias)
    y = y.flatten(2).transpose(1, 2).contiguous().view(x.shape[0], -1)  # 'b e h w -> b (h w) e', then flatten
    h = F.linear(y, projector.linear.weight, projector.linear.bias)
    h = h + projector.dropout(F.linear(F.gelu(h), projector.residual.weight, projector.residual.bias))
    return F.layer_norm(h, h.shape[-1:], projector.norm.weight, projector.norm.bias, projector.norm.eps)


def reference_forward(encoder: EEGEncoder, eeg: torch.Tensor, subject_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The reference forward pass, op by op, on ``encoder``'s parameters (ATM-S or NICE; train or eval mode).

    Parameters
    ----------
    encoder : ATMSEncoder | NICEEncoder
        Supplies the parameters, the configuration and the mode (dropout and BatchNorm follow ``training``).
    eeg : torch.Tensor, shape (batch, n_chans, n_times)
        EEG (not validated).
    subject_ids : torch.Tensor | None, shape (batch,)
        Subject indices (ATM-S only).

    Returns
    -------
    torch.Tensor, shape (batch, embed_dim)
        The embeddings.
    """
    if isinstance(encoder, NICEEncoder):
        return _reference_tsconv_projector(encoder, eeg)
    if not isinstance(encoder, ATMSEncoder):
        raise ToolkitError(f"reference_forward covers ATM-S and NICE; got the '{encoder.name}' encoder.")
    x = F.linear(eeg, encoder.value_embedding.weight, encoder.value_embedding.bias)
    if encoder.positional_encoding is not None:
        x = x + encoder.positional_encoding[None]
    x = torch.cat([encoder.subject_tokens(subject_ids, eeg.shape[0]), x], dim=1)
    x = encoder.embed_dropout(x)
    for layer in encoder.layers:
        batch, n_tokens, _ = x.shape
        heads = layer.n_heads
        q = F.linear(x, layer.query.weight, layer.query.bias).view(batch, n_tokens, heads, -1)
        k = F.linear(x, layer.key.weight, layer.key.bias).view(batch, n_tokens, heads, -1)
        v = F.linear(x, layer.value.weight, layer.value.bias).view(batch, n_tokens, heads, -1)
        scores = torch.einsum("blhe,bshe->bhls", q, k)
        weights = torch.softmax(scores * (1.0 / math.sqrt(q.shape[-1])), dim=-1)
        weights = F.dropout(weights, layer.attn_dropout, layer.training)
        attn = torch.einsum("bhls,bshd->blhd", weights, v).contiguous().view(batch, n_tokens, -1)
        x = x + layer.dropout(F.linear(attn, layer.out.weight, layer.out.bias))
        y = x = layer.norm1(x)
        y = layer.dropout(F.gelu(F.conv1d(y.transpose(-1, 1), layer.ffn1.weight[..., None], layer.ffn1.bias)))
        y = layer.dropout(F.conv1d(y, layer.ffn2.weight[..., None], layer.ffn2.bias).transpose(-1, 1))
        x = layer.norm2(x + y)
    x = encoder.norm(x)[:, : encoder.config.n_tokens_kept]
    return _reference_tsconv_projector(encoder, x)
