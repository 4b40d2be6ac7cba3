"""A hook recording how a training run computes, for the --amp tests of in-process runs.

``AmpProbeHook`` appends one record per run to :data:`RECORDS`: the type of the run's
optim wrapper, the dtype of the input of each non-local block at every training forward,
and the dtypes of the parameters after training.
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

RECORDS = []


@HOOKS.register_module()
class AmpProbeHook(Hook):
    priority = 'LOWEST'

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        record = dict(wrapper=type(runner.optim_wrapper).__name__, block_inputs=[])
        RECORDS.append(record)
        self._model, self._record = model, record
        for module in model.modules():
            if type(module).__name__ == 'NonLocalBlock':
                module.register_forward_hook(
                    lambda _, inputs, output: record['block_inputs'].append(inputs[0].dtype))

    def after_train(self, runner):
        self._record['parameters'] = {p.dtype for p in self._model.parameters()}
