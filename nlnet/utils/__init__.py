"""Checks and set-up around a run: preflight checks, CPU process groups, lr scaling."""
from .distributed import close_distributed, exit_after_distributed_run, init_cpu_distributed
from .lr_scaling import apply_auto_scale_lr, auto_scale_lr_report, scale_optimizer_lr, scaled_lr
from .preflight import (PreflightError, build_datasets, build_runner, check_checkpoint_exists,
                        check_config_keys, check_data_paths, check_state_dict,
                        checkpoint_load_errors, resolve_checkpoint)

__all__ = [
    'close_distributed', 'exit_after_distributed_run', 'init_cpu_distributed',
    'apply_auto_scale_lr', 'auto_scale_lr_report', 'scale_optimizer_lr', 'scaled_lr', 'PreflightError',
    'build_datasets', 'build_runner',
    'check_checkpoint_exists', 'check_config_keys', 'check_data_paths', 'check_state_dict',
    'checkpoint_load_errors', 'resolve_checkpoint'
]
