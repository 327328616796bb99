"""Attribution over electrodes and time through captum: one entry point, :func:`attribute`.

Every method is captum's own (nothing is re-implemented here); this module builds the scalar target
(:mod:`toolkit.explain.targets`), checks the inputs once, chooses baselines, runs captum's single ``.attribute``
verb and returns a detached ``(batch, n_chans, n_times)`` numpy array.

Methods (:data:`METHODS`):

======================  =====================  ==========================================================
name                    captum class           notes
======================  =====================  ==========================================================
``ig``                  IntegratedGradients    path integral from the baseline; ``n_steps`` (captum: 50),
                                               ``method``, ``internal_batch_size``. Exact for any
                                               differentiable model (completeness up to the quadrature).
``saliency``            Saliency               gradient at the input (``abs=True`` by captum's default);
                                               no baseline.
``deeplift``            DeepLift               one baseline; see the caveat below.
``deeplift_shap``       DeepLiftShap           a baseline *distribution* ``(n_baselines >= 2, n_chans,
                                               n_times)``, e.g. a few dozen other trials.
``occlusion``           Occlusion              sliding rectangle over (channels, samples):
                                               ``sliding_window_shapes`` (default one channel x 10 % of
                                               the epoch), ``strides`` (default half of it).
``feature_ablation``    FeatureAblation        ablate the features of ``feature_mask``: an int array
                                               ``(n_chans, n_times)`` or a :class:`~toolkit.explain.FeatureMask`
                                               from :func:`~toolkit.explain.make_feature_mask` (channel
                                               groups x time windows: grouped occlusion); default: each
                                               channel.
======================  =====================  ==========================================================

Baselines: ``None`` or ``"zeros"`` (zero signal), ``"mean"`` (the mean trial of the batch; use
:func:`~toolkit.explain.attribute_batched` for the mean over a whole data set), or an array ``(n_chans,
n_times)`` / ``(batch, n_chans, n_times)``; for ``deeplift_shap`` an array ``(n_baselines, n_chans, n_times)``.

**DeepLift and functional non-linearities.** captum's DeepLift applies its rescale rule only to non-linearities that
are ``nn.Module`` layers of the types it knows (``ReLU``, ``ELU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``,
``Softplus``, ``MaxPool1d/2d/3d``, ``Softmax``), and each such layer must be called once per forward pass (it keeps
its input on the module). Everything else — ``F.gelu``/``F.elu`` called as functions, attention softmax inside
``scaled_dot_product_attention``, LayerNorm, products of two activations, the cosine normalisation of the
similarity target — is passed with its plain gradient, and the attributions no longer sum to ``f(x) - f(baseline)``.
The toolkit's ATM-S and NICE encoders use such functions, so by default (``strict=True``) :func:`attribute` inspects
one forward pass, lists what captum cannot handle and refuses with that list; ``strict=False`` runs DeepLift anyway
(as captum would) and logs the summation error. Integrated gradients has no such restriction.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ToolkitError
from .aggregate import FeatureMask
from .targets import AttributionTarget, make_target

logger = logging.getLogger(__name__)

METHODS: dict[str, str] = {
    "ig": "IntegratedGradients",
    "saliency": "Saliency",
    "deeplift": "DeepLift",
    "deeplift_shap": "DeepLiftShap",
    "occlusion": "Occlusion",
    "feature_ablation": "FeatureAblation",
}
"""Method name → captum class name."""

GRADIENT_METHODS = ("ig", "saliency", "deeplift", "deeplift_shap")
PERTURBATION_METHODS = ("occlusion", "feature_ablation")
BASELINE_NAMES = ("zeros", "mean")

# Arguments this module sets itself; users cannot pass them through **method_kwargs.
_RESERVED = ("inputs", "baselines", "target", "additional_forward_args", "return_convergence_delta", "self", "kwargs")

# Functions that are non-linear in a tensor that depends on the input (names as torch reports them).
_NONLINEAR_FUNCTIONS = frozenset(
    {
        "gelu", "elu", "selu", "celu", "silu", "mish", "relu", "relu_", "relu6", "leaky_relu", "prelu", "rrelu",
        "hardtanh", "hardswish", "hardsigmoid", "softplus", "softsign", "sigmoid", "tanh", "logsigmoid",
        "tanhshrink", "softshrink", "hardshrink", "threshold", "glu", "softmax", "log_softmax", "softmin",
        "scaled_dot_product_attention", "multi_head_attention_forward", "layer_norm", "group_norm",
        "instance_norm", "rms_norm", "local_response_norm", "normalize", "max_pool1d", "max_pool2d", "max_pool3d",
        "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool1d", "lp_pool2d",
        "logsumexp", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "pow", "square",
        "reciprocal", "abs", "norm", "linalg_vector_norm", "max", "amax", "min", "amin", "maximum", "minimum",
        "clamp", "clip", "sin", "cos", "erf", "sign", "topk", "sort", "prod", "cumprod",
    }
)
_PRODUCTS = frozenset({"mul", "matmul", "bmm", "mm", "einsum", "baddbmm", "addbmm", "bilinear"})
_DIVISIONS = frozenset({"div", "true_divide", "truediv", "floor_divide"})


# ------------------------------------------------------------------------------------------------------ helpers
def _captum() -> Any:
    from ..utils import require

    return require("captum.attr", extra="explain", purpose="attribution maps")


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ToolkitError(f"Unknown attribution method {method!r}; known methods: {', '.join(METHODS)}.")
    return str(method)


def _reference(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    ref = next(iter(model.parameters()), None)
    if ref is None:
        ref = next(iter(model.buffers()), None)
    if ref is None:
        return torch.device("cpu"), torch.float32
    return ref.device, ref.dtype if ref.is_floating_point() else torch.float32


def _as_eeg(eeg: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(eeg, torch.Tensor):
        with torch.inference_mode(False):
            x = eeg.detach().to(device=device, dtype=dtype).clone()
    else:
        try:
            # np.array copies: memory-mapped trials are read-only, and torch cannot wrap read-only arrays.
            x = torch.from_numpy(np.array(eeg, dtype=np.float32)).to(device=device, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise ToolkitError(
                f"eeg could not be read as a float array ({err}); pass (batch, n_chans, n_times)."
            ) from None
    if x.ndim != 3:
        hint = " (add a batch dimension with eeg[None])" if x.ndim == 2 else ""
        raise ToolkitError(f"eeg must be 3-D (batch, n_chans, n_times); got shape {tuple(x.shape)}{hint}.")
    if 0 in x.shape:
        raise ToolkitError(f"eeg is empty (shape {tuple(x.shape)}); pass at least one trial.")
    if not bool(torch.isfinite(x).all()):
        raise ToolkitError("eeg contains NaN or infinite values; interpolate or drop the bad trials/channels first.")
    return x


def _as_index(index: Any, batch: int, target: AttributionTarget) -> torch.Tensor:
    if index is None:
        if target.name == "logit":
            raise ToolkitError(
                "The logit target explains one class per trial, but no class index was given; pass index= (the "
                "class of each trial, or one class for all)."
            )
        raise ToolkitError(
            f"The {target.name} target needs index=: the row of image_embeds holding each trial's true image "
            "(e.g. the condition index for THINGS test trials)."
        )
    if isinstance(index, torch.Tensor):
        index = index.detach().cpu().numpy()
    arr = np.asarray(index)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ToolkitError(
            f"index must be integers, one per trial ({batch},) or one for all; got {arr.dtype} {arr.shape}."
        )
    if arr.ndim == 0:
        arr = np.full(batch, int(arr))
    if arr.shape != (batch,):
        raise ToolkitError(f"index has {arr.shape[0]} values but eeg has {batch} trials; pass one per trial.")
    n_items = target.n_items()
    if n_items is not None and arr.size and (arr.min() < 0 or arr.max() >= n_items):
        raise ToolkitError(
            f"index holds values from {arr.min()} to {arr.max()} but the gallery has {n_items} items "
            f"(valid: 0 to {n_items - 1})."
        )
    return torch.as_tensor(arr.astype(np.int64))


def _as_subject_ids(subject_ids: Any, batch: int, device: torch.device) -> torch.Tensor | None:
    if subject_ids is None:
        return None
    if isinstance(subject_ids, torch.Tensor):
        subject_ids = subject_ids.detach().cpu().numpy()
    arr = np.asarray(subject_ids)
    if arr.dtype.kind not in "iu":
        raise ToolkitError(f"subject_ids must be integers; got dtype {arr.dtype}.")
    if arr.ndim == 0:
        arr = np.full(batch, int(arr))
    if arr.shape != (batch,):
        raise ToolkitError(f"subject_ids must have shape ({batch},) or be one integer; got {arr.shape}.")
    return torch.as_tensor(arr.astype(np.int64), device=device)


def _as_array(values: Any, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().to(device=device, dtype=dtype)
    try:
        return torch.as_tensor(np.asarray(values, dtype=np.float32)).to(device=device, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ToolkitError(f"{name} could not be read as a float array ({err}).") from None


def _resolve_baselines(baselines: Any, method: str, eeg: torch.Tensor) -> torch.Tensor | None:
    """The baseline tensor captum gets (``None`` for saliency)."""
    batch, n_chans, n_times = eeg.shape
    if method == "saliency":
        if baselines is not None:
            raise ToolkitError("method='saliency' is the gradient at the input and takes no baselines; drop them.")
        return None
    if method == "deeplift_shap":
        if baselines is None or isinstance(baselines, str):
            raise ToolkitError(
                "method='deeplift_shap' needs a baseline distribution: an array (n_baselines >= 2, n_chans, n_times) "
                f"of reference trials (e.g. 32 other trials); got {baselines!r}."
            )
        dist = _as_array(baselines, "baselines", eeg.device, eeg.dtype)
        if dist.ndim != 3 or dist.shape[0] < 2 or tuple(dist.shape[1:]) != (n_chans, n_times):
            raise ToolkitError(
                f"baselines for deeplift_shap must be (n_baselines >= 2, {n_chans}, {n_times}); got shape "
                f"{tuple(dist.shape)}."
            )
        if not bool(torch.isfinite(dist).all()):
            raise ToolkitError("baselines contain NaN or infinite values.")
        return dist
    if baselines is None or (isinstance(baselines, str) and baselines == "zeros"):
        return torch.zeros(1, n_chans, n_times, device=eeg.device, dtype=eeg.dtype)
    if isinstance(baselines, str):
        if baselines != "mean":
            raise ToolkitError(
                f"Unknown baseline {baselines!r}; use 'zeros', 'mean' or an array (n_chans, n_times) / "
                "(batch, n_chans, n_times)."
            )
        if batch < 2:
            raise ToolkitError(
                "baselines='mean' averages the trials passed, and with one trial that is the trial itself (every "
                "attribution would be 0); pass the mean of a data set as an array, or use attribute_batched(), "
                "which averages all its trials."
            )
        return eeg.mean(dim=0, keepdim=True)
    if isinstance(baselines, (int, float)) and not isinstance(baselines, bool):
        return torch.full((1, n_chans, n_times), float(baselines), device=eeg.device, dtype=eeg.dtype)
    base = _as_array(baselines, "baselines", eeg.device, eeg.dtype)
    if base.ndim == 2:
        base = base[None]
    if base.ndim != 3 or tuple(base.shape[1:]) != (n_chans, n_times) or base.shape[0] not in (1, batch):
        raise ToolkitError(
            f"baselines has shape {tuple(base.shape)} but eeg is {tuple(eeg.shape)}; pass ({n_chans}, {n_times}), "
            f"(1, {n_chans}, {n_times}) or ({batch}, {n_chans}, {n_times}) (or 'zeros' / 'mean')."
        )
    if not bool(torch.isfinite(base).all()):
        raise ToolkitError("baselines contain NaN or infinite values.")
    return base


def _feature_mask(mask: Any, eeg: torch.Tensor) -> torch.Tensor:
    _, n_chans, n_times = eeg.shape
    if mask is None:
        ids = torch.arange(n_chans, device=eeg.device)[:, None].expand(n_chans, n_times)
        return ids[None].contiguous()
    if isinstance(mask, FeatureMask):
        mask = mask.mask
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (n_chans, n_times) or arr.dtype.kind not in "iu":
        raise ToolkitError(
            f"feature_mask must be an integer array ({n_chans}, {n_times}) (one feature id per channel and sample; "
            f"see toolkit.explain.make_feature_mask); got {arr.dtype} {arr.shape}."
        )
    ids = np.unique(arr)
    if ids[0] != 0 or ids[-1] != ids.size - 1:
        raise ToolkitError("feature_mask ids must run from 0 to n_features - 1 without gaps.")
    return torch.as_tensor(arr.astype(np.int64), device=eeg.device)[None]


def _split_kwargs(cls: type, method: str, kwargs: dict[str, Any]) -> tuple[dict, dict]:
    init_names = set(inspect.signature(cls.__init__).parameters) - {"self", "forward_func", "model"}
    call_names = set(inspect.signature(cls.attribute).parameters) - set(_RESERVED)
    unknown = sorted(set(kwargs) - init_names - call_names)
    if unknown:
        valid = sorted(init_names | call_names)
        raise ToolkitError(
            f"method={method!r} does not take {', '.join(unknown)}; its options are: {', '.join(valid) or 'none'}."
        )
    init = {k: v for k, v in kwargs.items() if k in init_names}
    call = {k: v for k, v in kwargs.items() if k in call_names}
    return init, call


@contextlib.contextmanager
def attribution_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode with frozen parameters for the duration of an attribution, restored afterwards.

    Dropout is off and BatchNorm uses its running statistics (the model as used for retrieval); parameters do not
    require gradients, so autograd computes only the input gradients captum asks for.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def _forward_args(index: torch.Tensor, subject_ids: torch.Tensor | None) -> tuple:
    return (index,) if subject_ids is None else (index, subject_ids)


def _check_differentiable(forward: AttributionTarget, eeg: torch.Tensor, args: tuple, *, frozen: bool) -> None:
    """One forward/backward on the first trial: the target must be a tensor (1,) with a gradient w.r.t. the input.

    ``frozen`` says whether the caller's model had all its parameters frozen (before attribution froze them).
    """
    probe = eeg[:1].detach().clone().requires_grad_(True)
    with torch.inference_mode(False), torch.enable_grad():
        out = forward(probe, *(a[:1] for a in args))
        _check_output(out, 1)
        why = (
            "its forward runs under torch.no_grad()/torch.inference_mode(), detaches tensors or goes through numpy"
        )
        if out.grad_fn is None:
            extra = " (and all of its parameters are frozen, so nothing in it tracks gradients)" if frozen else ""
            raise ToolkitError(
                f"The model's output carries no gradient with respect to the EEG{extra}: {why}. Gradient methods "
                f"({', '.join(GRADIENT_METHODS)}) cannot run on it; remove the no_grad/detach from its forward, or "
                f"use a perturbation method ({', '.join(PERTURBATION_METHODS)})."
            )
        (grad,) = torch.autograd.grad(out.sum(), probe, allow_unused=True)
    if grad is None:
        raise ToolkitError(
            f"The model's output does not depend differentiably on the EEG input ({why}); use a perturbation method "
            f"({', '.join(PERTURBATION_METHODS)}) or fix the forward."
        )


def _check_output(out: Any, batch: int) -> None:
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch,):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ToolkitError(f"The attribution target must return one value per trial ({batch},); got {got}.")
    if not bool(torch.isfinite(out.detach()).all()):
        raise ToolkitError("The model produced NaN or infinite target values on this EEG; check the model and data.")


# ------------------------------------------------------------------------------------------ DeepLift support
def _supported_deeplift_layers() -> tuple[type, ...]:
    try:  # the authoritative list lives in a private captum module; fall back to captum 0.9's list
        from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

        return tuple(SUPPORTED_NON_LINEAR)
    except ImportError:  # pragma: no cover - depends on captum's internals
        return (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.MaxPool1d, nn.MaxPool2d,
                nn.MaxPool3d, nn.Softmax)


def _flat_tensors(values: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(_flat_tensors(v))
    return out


def _op_name(func: Any) -> tuple[str, bool]:
    """Normalised op name and whether it is a reflected operator (``__rdiv__``: the tensor is the divisor)."""
    name = getattr(func, "__name__", "") or ""
    reflected = False
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith("r") and (name[1:] in _PRODUCTS or name[1:] in _DIVISIONS or name[1:] == "pow"):
            name, reflected = name[1:], True
        elif name.startswith("i") and (name[1:] in _PRODUCTS or name[1:] in _DIVISIONS or name[1:] == "pow"):
            name = name[1:]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name, reflected


def deeplift_problems(forward: nn.Module, eeg: torch.Tensor, args: tuple = ()) -> list[str]:
    """What captum's DeepLift cannot handle exactly in one forward pass of ``forward`` (empty: fully supported).

    Runs one forward pass on the first trial, recording (through a :class:`torch.overrides.TorchFunctionMode`)
    every non-linear torch function applied to a tensor that depends on the input outside a supported
    non-linear layer, every product or division of two such tensors, and every supported layer called more than
    once.

    Parameters
    ----------
    forward : torch.nn.Module
        The module captum would wrap (an attribution target).
    eeg : torch.Tensor, shape (batch, n_chans, n_times)
        Input; only the first trial is used.
    args : tuple
        Additional forward arguments (sliced to the first trial).

    Returns
    -------
    list of str
        One line per kind of problem, e.g. ``"gelu (x2) called as a function"``.
    """
    from torch.overrides import TorchFunctionMode

    supported = _supported_deeplift_layers()
    depth = [0]
    calls: Counter = Counter()
    functions: Counter = Counter()
    products: Counter = Counter()
    handles = []

    def pre_hook(module: nn.Module, _inputs: Any) -> None:
        depth[0] += 1
        calls[module] += 1

    def post_hook(_module: nn.Module, _inputs: Any, _output: Any) -> None:
        depth[0] -= 1

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if depth[0] == 0:
                name, reflected = _op_name(func)
                tensors = _flat_tensors(list(args) + list(kwargs.values()))
                live = [t for t in tensors if t.requires_grad]
                if name in _NONLINEAR_FUNCTIONS and live:
                    functions[name] += 1
                elif name in _PRODUCTS and len(live) >= 2:
                    products[name] += 1
                elif name in _DIVISIONS and len(tensors) >= 1:
                    divisor = args[0] if reflected else (args[1] if len(args) > 1 else kwargs.get("other"))
                    if isinstance(divisor, torch.Tensor) and divisor.requires_grad:
                        products[f"{name} by an activation"] += 1
            return func(*args, **kwargs)

    names = {m: n or type(m).__name__ for n, m in forward.named_modules()}
    for module in forward.modules():
        if isinstance(module, supported):
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
    probe = eeg[:1].detach().clone().requires_grad_(True)
    try:
        with torch.inference_mode(False), torch.enable_grad(), Recorder():
            forward(probe, *(a[:1] if isinstance(a, torch.Tensor) else a for a in args))
    finally:
        for h in handles:
            h.remove()
    problems = []
    if functions:
        listed = ", ".join(f"{k} (x{v})" if v > 1 else k for k, v in sorted(functions.items()))
        problems.append(f"non-linear functions outside supported layers: {listed}")
    if products:
        listed = ", ".join(f"{k} (x{v})" if v > 1 else k for k, v in sorted(products.items()))
        problems.append(f"products of input-dependent tensors: {listed}")
    reused = [f"{names[m]} ({type(m).__name__}, x{c})" for m, c in calls.items() if c > 1]
    if reused:
        problems.append(f"layers used more than once per forward pass: {', '.join(reused)}")
    return problems


# ------------------------------------------------------------------------------------------------ entry point
def attribute(
    model: nn.Module,
    eeg: Any,
    *,
    method: str = "ig",
    target: str | AttributionTarget = "similarity",
    index: Any = None,
    image_embeds: Any = None,
    normalize: bool | None = None,
    baselines: Any = None,
    subject_ids: Any = None,
    strict: bool = True,
    **method_kwargs: Any,
) -> np.ndarray:
    """Attribution maps over channels and samples for a batch of trials.

    Parameters
    ----------
    model : torch.nn.Module
        EEG encoder ``forward(eeg, subject_ids=None) -> (batch, embed_dim)`` or classifier ``-> (batch,
        n_classes)``. It is put in eval mode with frozen parameters during the call (restored afterwards).
    eeg : array | torch.Tensor, shape (batch, n_chans, n_times)
        The trials (converted to the model's dtype and device).
    method : str
        One of :data:`METHODS`: ``"ig"``, ``"saliency"``, ``"deeplift"``, ``"deeplift_shap"``, ``"occlusion"``,
        ``"feature_ablation"``.
    target : str | AttributionTarget
        ``"similarity"``, ``"margin"`` or ``"logit"`` (see :mod:`toolkit.explain.targets`), or a target built
        around ``model`` (e.g. ``MarginTarget(model, image_embeds, normalize=True, reduce="logsumexp")``).
    index : array of int, shape (batch,) | int | None
        Per trial, the row of ``image_embeds`` holding its true image, or its class for ``"logit"``.
    image_embeds : array, shape (gallery_size, embed_dim) | None
        Gallery of the similarity and margin targets.
    normalize : bool | None
        Cosine (``True``) or dot-product (``False``) similarity; required by the similarity and margin targets.
    baselines : str | float | array | None
        See the module documentation (``None``: zeros).
    subject_ids : array of int, shape (batch,) | int | None
        Subject indices passed to the model.
    strict : bool
        For ``deeplift`` / ``deeplift_shap``: refuse models whose non-linearities captum's DeepLift cannot handle
        exactly (listing them); ``False`` runs anyway and logs the summation error.
    **method_kwargs
        Options of the captum class and its ``attribute`` (e.g. ``n_steps``, ``internal_batch_size``, ``abs``,
        ``sliding_window_shapes``, ``strides``, ``feature_mask``, ``perturbations_per_eval``,
        ``multiply_by_inputs``).

    Returns
    -------
    np.ndarray of float32, shape (batch, n_chans, n_times)
        The attributions (detached; for ``feature_ablation`` every element of a feature holds that feature's
        attribution).
    """
    method = _check_method(method)
    if not isinstance(model, nn.Module):
        raise ToolkitError(
            f"model must be a torch.nn.Module (a toolkit encoder or a torch classifier); got {type(model).__name__}. "
            "captum needs a torch model to differentiate or perturb; wrap other models in an nn.Module whose "
            "forward returns a tensor."
        )
    forward = make_target(target, model, image_embeds=image_embeds, normalize=normalize)
    device, dtype = _reference(model)
    x = _as_eeg(eeg, device, dtype)
    batch = x.shape[0]
    idx = _as_index(index, batch, forward).to(device)
    ids = _as_subject_ids(subject_ids, batch, device)
    base = _resolve_baselines(baselines, method, x)
    captum_attr = _captum()
    cls = getattr(captum_attr, METHODS[method])
    init_kwargs, call_kwargs = _split_kwargs(cls, method, dict(method_kwargs))
    args = _forward_args(idx, ids)
    frozen = not any(p.requires_grad for p in model.parameters())
    with attribution_mode(model):
        if method in GRADIENT_METHODS:
            _check_differentiable(forward, x, args, frozen=frozen)
        else:
            with torch.no_grad():
                _check_output(forward(x[:1], *(a[:1] for a in args)), 1)
        if method in ("deeplift", "deeplift_shap"):
            problems = deeplift_problems(forward, x, args)
            if problems and strict:
                raise ToolkitError(
                    f"method={method!r} cannot attribute this {type(model).__name__} exactly: captum's DeepLift "
                    "applies its rules only to nn.Module layers of the types ReLU, ELU, LeakyReLU, Sigmoid, Tanh, "
                    "Softplus, MaxPool and Softmax, each used once per pass, and passes everything else with its "
                    f"plain gradient; this model and target use {'; '.join(problems)}. Use method='ig' (exact for any "
                    "differentiable model), or strict=False to accept the approximation."
                )
        explainer = cls(forward, **init_kwargs)
        if method in GRADIENT_METHODS:
            x.requires_grad_(True)  # captum would set it and warn
        with warnings.catch_warnings():
            # DeepLift announces, on every call, that it sets hooks on the non-linear layers.
            warnings.filterwarnings("ignore", message=r"(?s)\s*Setting forward, backward hooks", category=UserWarning)
            result = _run(explainer, method, x, base, args, call_kwargs)
    if isinstance(result, tuple):
        result = result[0]
    return result.detach().to("cpu", torch.float32).numpy()


def _run(explainer: Any, method: str, x: torch.Tensor, base: Any, args: tuple, call_kwargs: dict) -> torch.Tensor:
    """Call captum's ``attribute`` with the arguments each method takes."""
    if method == "ig":
        result = explainer.attribute(x, baselines=base, additional_forward_args=args, **call_kwargs)
    elif method == "saliency":
        with torch.inference_mode(False):
            result = explainer.attribute(x, additional_forward_args=args, **call_kwargs)
    elif method in ("deeplift", "deeplift_shap"):
        result, delta = explainer.attribute(
            x, baselines=base, additional_forward_args=args, return_convergence_delta=True, **call_kwargs
        )
        _log_delta(result, delta, method)
    elif method == "occlusion":
        window = call_kwargs.pop("sliding_window_shapes", None)
        if window is None:
            width = max(1, x.shape[2] // 10)
            window = (1, width)
            call_kwargs.setdefault("strides", (1, max(1, width // 2)))
        with torch.no_grad():
            result = explainer.attribute(
                x, sliding_window_shapes=tuple(window), baselines=base, additional_forward_args=args,
                **call_kwargs,
            )
    else:
        mask = _feature_mask(call_kwargs.pop("feature_mask", None), x)
        with torch.no_grad():
            result = explainer.attribute(
                x, baselines=base, feature_mask=mask, additional_forward_args=args, **call_kwargs
            )
    return result


def _log_delta(result: torch.Tensor, delta: torch.Tensor, method: str) -> None:
    """Log DeepLift's summation error ``sum(attr) - (f(x) - f(baseline))`` relative to the explained change."""
    total = result.detach().flatten(1).sum(1).abs().mean()
    err = float(delta.detach().abs().mean())
    rel = err / max(float(total) + err, 1e-12)
    if rel > 1e-3:
        logger.warning(
            "%s: the attributions miss f(x) - f(baseline) by %.1f%% on average (non-linearities captum cannot "
            "handle were passed with their plain gradient).", method, 100 * rel,
        )


__all__ = [
    "BASELINE_NAMES",
    "GRADIENT_METHODS",
    "METHODS",
    "PERTURBATION_METHODS",
    "attribute",
    "attribution_mode",
    "deeplift_problems",
]
