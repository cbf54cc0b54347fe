"""Folds BatchNorm into the convolutions before testing, so ``tools/test.py`` scores the model as
``det.apis.init_detector`` serves it."""
from mmengine.hooks import Hook

from det.models.utils import fuse_conv_bn
from det.registry import HOOKS


@HOOKS.register_module()
class FuseConvBNHook(Hook):
    """Before the test epoch (the checkpoint is loaded by then) puts the model in eval mode and folds every
    BatchNorm that follows a convolution into it (:func:`det.models.utils.fuse_conv_bn`): the same
    detections within float rounding, one op fewer per Conv-BN pair. Test loop only: a fused model can no
    longer train its BatchNorms, so validation during training is left alone."""

    priority = 'LOW'

    def before_test_epoch(self, runner) -> None:
        model = runner.model
        model.eval()
        fuse_conv_bn(model)
        runner.logger.info('FuseConvBNHook: BatchNorms folded into their convolutions for testing')
