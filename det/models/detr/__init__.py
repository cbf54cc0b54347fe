"""Building blocks of the query-based detector (DETR and its speed-ups): positional encodings, the
transformer encoder / decoder, deformable cross-attention and denoising queries. Plain ``nn.Module``
parts built by :class:`det.models.detectors.DETR`, not registry entries."""
from .deformable_attention import DeformableCrossAttention
from .denoising import DenoisingQueries, DenoisingQueriesOutput
from .positional_encoding import SinePositionalEncoding, box_sine_embedding
from .transformer import (
    MLP,
    DetrTransformerDecoder,
    DetrTransformerEncoder,
    MultiheadAttention,
    inverse_sigmoid,
)

__all__ = ['DeformableCrossAttention', 'DenoisingQueries', 'DenoisingQueriesOutput', 'SinePositionalEncoding',
           'box_sine_embedding', 'MLP', 'DetrTransformerDecoder', 'DetrTransformerEncoder',
           'MultiheadAttention', 'inverse_sigmoid']
