"""Channel sets used by the models: the THINGS-EEG 63-channel order, the OSF 17-channel subset, ATM's regions."""

from __future__ import annotations

# THINGS-EEG2 preprocessed order used by ATM/NICE (ATM.md §1.5).
THINGS_EEG_63 = (
    "Fp1 Fp2 AF7 AF3 AFz AF4 AF8 F7 F5 F3 F1 F2 F4 F6 F8 FT9 FT7 FC5 FC3 FC1 FCz FC2 FC4 FC6 FT8 FT10 T7 C5 C3 C1 "
    "Cz C2 C4 C6 T8 TP9 TP7 CP5 CP3 CP1 CPz CP2 CP4 CP6 TP8 TP10 P7 P5 P3 P1 Pz P2 P4 P6 P8 PO7 PO3 POz PO4 PO8 O1 "
    "Oz O2"
).split()

# The 17 posterior channels of the OSF preprocessed release (100 Hz variant) and of UBP's configuration.
THINGS_EEG_17 = ("Pz P3 P7 O1 Oz O2 P4 P8 P1 P5 PO7 PO3 POz PO4 PO8 P6 P2").split()

# ATM's five region groups (ATM.md §11.2); they partition the 63 channels.
REGIONS_63 = {
    "frontal": ("Fp1", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "F2", "F4", "F6", "F8"),
    "central": ("FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4", "C6"),
    "parietal": (
        "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8",
    ),
    "temporal": ("FT9", "FT7", "T7", "TP9", "TP7", "TP8", "TP10", "T8", "FT8", "FT10"),
    "occipital": ("PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2"),
}

__all__ = ["REGIONS_63", "THINGS_EEG_17", "THINGS_EEG_63"]
