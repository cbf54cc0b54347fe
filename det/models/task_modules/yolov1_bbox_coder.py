"""YOLO v1's box encoding (Redmon et al. 2016, sec. 2): a box is the centre's offset inside its grid cell
and the square roots of its size relative to a fixed image size."""
import torch

from det.registry import TASK_UTILS


@TASK_UTILS.register_module()
class YOLOV1BBoxCoder:
    """xyxy input pixels <-> ``(x, y, sqrt w, sqrt h)``, each in [0, 1].

    - ``x, y``: the centre's offset inside its cell, in cells (``centre / stride - cell``);
    - ``sqrt w, sqrt h``: ``sqrt(w / norm_w)``, ``sqrt(h / norm_h)``, with ``wh_norm`` the network input
      size the model is trained at (an int for square inputs or ``(w, h)``). The paper divides by the image
      size; a fixed size keeps a box's encoding independent of how much a batch was padded. Boxes larger
      than ``wh_norm`` are clamped to it.

    Predictors are ordered cell-major, ``index = (row * S_w + col) * B + b``, with ``B`` per cell.
    """

    def __init__(self, wh_norm=448):
        norm = (wh_norm, wh_norm) if isinstance(wh_norm, (int, float)) else tuple(wh_norm)
        if len(norm) != 2 or min(norm) <= 0:
            raise ValueError(f'wh_norm must be a positive size or (w, h), got {wh_norm!r}')
        self.wh_norm = tuple(float(v) for v in norm)

    @staticmethod
    def cell_origins(grid_size: tuple, num_boxes: int, device=None) -> torch.Tensor:
        """``[S_h*S_w*B, 2]`` (col, row) of each predictor's cell."""
        s_h, s_w = grid_size
        rows, cols = torch.meshgrid(torch.arange(s_h, device=device), torch.arange(s_w, device=device),
                                    indexing='ij')
        origins = torch.stack([cols.flatten(), rows.flatten()], dim=1).float()
        return origins.repeat_interleave(num_boxes, dim=0)

    def decode(self, encoded: torch.Tensor, grid_size: tuple, stride: int) -> torch.Tensor:
        """``[..., S_h*S_w*B, 4]`` (x, y, sqrt w, sqrt h) -> xyxy input pixels, same shape."""
        num_boxes = encoded.shape[-2] // (grid_size[0] * grid_size[1])
        centres = (self.cell_origins(grid_size, num_boxes, encoded.device) + encoded[..., :2]) * stride
        sizes = encoded[..., 2:] ** 2 * encoded.new_tensor(self.wh_norm)
        return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)

    def encode(self, bboxes: torch.Tensor, origins: torch.Tensor, stride: int) -> torch.Tensor:
        """``bboxes`` ``[M, 4]`` xyxy input pixels assigned to predictors whose cells are ``origins``
        ``[M, 2]`` (col, row) -> ``[M, 4]`` (x, y, sqrt w, sqrt h), clamped to [0, 1]."""
        centres = (bboxes[:, :2] + bboxes[:, 2:]) / 2 / stride - origins
        sizes = (bboxes[:, 2:] - bboxes[:, :2]) / bboxes.new_tensor(self.wh_norm)
        return torch.cat([centres.clamp(0, 1), sizes.clamp(0, 1).sqrt()], dim=1)
