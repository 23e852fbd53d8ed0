"""teg-plugin: training-free NAS with TEG indicators for Optuna and NNI."""

__version__ = "0.1.0"
