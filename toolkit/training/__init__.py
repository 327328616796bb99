"""Training: one trainer for every encoder and objective (contrastive, ATM mixes, MSE, classification, a model's own
loss), validation-only model selection, resumable checkpoints, few-shot adaptation.

An application layer in the open_clip_train sense: the core library never imports it. Names are imported on first
use, so ``import toolkit.training`` is cheap::

    from toolkit.training import TrainConfig, train

    result = train(TrainConfig(data="store", subject="sub-01", image_embeds="train.safetensors",
                               test_image_embeds="test.safetensors", out="runs/atm-s-sub-01"))
    result.test.full(1).value   # test top-1 of the validation-selected checkpoint

The same trainer trains the reconstruction models (``TrainConfig.task``; :mod:`toolkit.training.tasks`): the
diffusion prior on (EEG embedding, image embedding) pairs, the low-level encoder (EEG → VAE latents) and the caption
projector (embedding → GIT vision tokens)::

    result = train(TrainConfig(task="prior", inputs="eeg_embeds.safetensors", image_embeds="raw.safetensors",
                               lr=1e-3, weight_decay=0.0, schedule="cosine", warmup_steps=500, grad_clip=1.0,
                               out="runs/prior"))
    PriorPipeline.from_pretrained(result.model_dir)

The command line is ``python -m toolkit train`` (flags mapped 1:1 onto :class:`TrainConfig`).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # configuration
    "TrainConfig": "config",
    "OBJECTIVES": "config",
    "TASKS": "config",
    "TASK_OBJECTIVES": "config",
    "SETTINGS": "config",
    "SELECTIONS": "config",
    "VAL_UNITS": "config",
    "RESUME_FREE_FIELDS": "config",
    # losses
    "Objective": "losses",
    "clip_loss": "losses",
    "atm_mix_loss": "losses",
    "recon_mix_loss": "losses",
    "mse_loss": "losses",
    "classification_loss": "losses",
    # data
    "TrialSample": "data",
    "PairedTrials": "data",
    "EpochSampler": "data",
    "ValidationSplit": "data",
    "make_validation_split": "data",
    "EmbeddingTable": "data",
    "load_embedding_file": "data",
    "RunData": "data",
    "build_run_data": "data",
    "collate_trials": "data",
    "batch_to_dict": "data",
    "subject_numbers": "data",
    "UNKNOWN_SUBJECT": "data",
    # trainer
    "Trainer": "trainer",
    "TaskTrainer": "tasks",
    "TaskData": "tasks",
    "PairedRows": "tasks",
    "DiffusionObjective": "tasks",
    "RegressionObjective": "tasks",
    "build_task_data": "tasks",
    "load_array_file": "tasks",
    "save_training_arrays": "tasks",
    "TrainResult": "trainer",
    "Callback": "trainer",
    "LoggingCallback": "trainer",
    "WarmupCosine": "trainer",
    "train": "trainer",
    "train_loso": "trainer",
    "run_epoch": "trainer",
    "evaluate_loss": "trainer",
    "retrieval_top1": "trainer",
    # checkpoints
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "capture_rng_state": "checkpoint",
    "restore_rng_state": "checkpoint",
    # adaptation
    "AdaptConfig": "adapt",
    "AdaptResult": "adapt",
    "AdaptedEncoder": "adapt",
    "ChannelAdapter": "adapt",
    "adapt_encoder": "adapt",
}

__all__ = list(_LAZY)


# PEP 562 lazy attributes: keeps `import toolkit.training` free of torch until a name is used.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
