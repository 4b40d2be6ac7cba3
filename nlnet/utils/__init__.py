"""Checks and set-up around a run: preflight checks of the config and the checkpoint, CPU
process groups, lr scaling."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .checkpoint_checks import (check_checkpoint_exists, check_state_dict, checkpoint_load_errors,
                                resolve_checkpoint)
from .distributed import close_distributed, exit_after_distributed_run, init_cpu_distributed
from .lr_scaling import apply_auto_scale_lr, auto_scale_lr_report, scale_optimizer_lr, scaled_lr
from .preflight import PreflightError, check_config_keys, check_data_paths

__all__ = [
    'check_checkpoint_exists', 'check_state_dict', 'checkpoint_load_errors', 'resolve_checkpoint',
    'close_distributed', 'exit_after_distributed_run', 'init_cpu_distributed',
    'apply_auto_scale_lr', 'auto_scale_lr_report', 'scale_optimizer_lr', 'scaled_lr',
    'PreflightError', 'check_config_keys', 'check_data_paths'
]
