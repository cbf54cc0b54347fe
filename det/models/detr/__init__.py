"""Building blocks of the query-based detector (DETR and its speed-ups): positional encodings, the
transformer encoder / decoder, deformable cross-attention, denoising queries, the one-to-many switch
(plain parts built by :class:`det.models.detectors.DETR`) and the registered query sources it chooses by
config."""
from .deformable_attention import DeformableCrossAttention
from .denoising import DenoisingQueries, DenoisingQueriesOutput
from .one_to_many import OneToMany, hybrid_attention_mask
from .positional_encoding import SinePositionalEncoding, box_sine_embedding
from .queries import AnchorQueries, EmbeddingQueries, EncoderQueries, Proposals, Queries
from .transformer import (
    MLP,
    DetrTransformerDecoder,
    DetrTransformerEncoder,
    MultiheadAttention,
    inverse_sigmoid,
)

__all__ = ['AnchorQueries', 'DeformableCrossAttention', 'DenoisingQueries', 'DenoisingQueriesOutput',
           'EmbeddingQueries', 'EncoderQueries', 'OneToMany', 'Proposals', 'Queries',
           'SinePositionalEncoding', 'box_sine_embedding', 'hybrid_attention_mask', 'MLP',
           'DetrTransformerDecoder', 'DetrTransformerEncoder', 'MultiheadAttention', 'inverse_sigmoid']
