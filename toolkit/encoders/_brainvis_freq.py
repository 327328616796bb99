"""The BrainVis frequency branch: ``|rFFT|`` bins over time per channel → LSTM → Linear + ReLU.

Private to :mod:`toolkit.encoders.brainvis`; see the reference sheet (BRAINVIS.md §3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def magnitude_spectrum(eeg: torch.Tensor, n_bins: int) -> torch.Tensor:
    """FFT magnitudes of bins ``1 … n_bins`` (DC dropped) as a sequence over frequency.

    Differentiable and on ``eeg``'s device (``torch.fft.rfft``; the reference's numpy round trip is gone).

    Parameters
    ----------
    eeg : torch.Tensor, shape (batch, n_chans, n_times)
        Real EEG.
    n_bins : int
        Bins kept after DC (``n_times // 2``: 220 for 440 samples).

    Returns
    -------
    torch.Tensor, shape (batch, n_bins, n_chans)
        ``|rfft(eeg)|`` per channel, one frequency step per row.
    """
    return torch.fft.rfft(eeg, dim=-1).abs()[..., 1 : n_bins + 1].transpose(1, 2)


class FreqBackbone(nn.Module):
    """``|rFFT|`` sequence → one-layer batch-first LSTM → last hidden state → Linear + ReLU.

    Parameters
    ----------
    n_chans : int
        Input channels (the LSTM's input size).
    n_bins : int
        Frequency steps (bins after DC).
    hidden : int
        LSTM hidden size (128).
    features : int
        Output size of the Linear + ReLU (128).
    """

    def __init__(self, n_chans: int, n_bins: int, hidden: int, features: int) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.lstm = nn.LSTM(n_chans, hidden, num_layers=1, batch_first=True)
        self.fc = nn.Linear(hidden, features)

    def forward(self, eeg: torch.Tensor) -> torch.Tensor:
        """``(batch, n_chans, n_times)`` → ``(batch, features)``."""
        _, (hidden, _) = self.lstm(magnitude_spectrum(eeg, self.n_bins).contiguous())
        return F.relu(self.fc(hidden[-1]))
