"""Documents: reading an input (``inputs``), its skeleton and units
(``document``), one module per format (``formats/``), segmentation into
chunks (``segment``), placeholders (``protect``) and the pieces a chunk is
split into by the quality ladder (``pieces``).

Nothing here touches the store or a model: a format turns bytes into units
and units back into bytes, and the stages around it do the rest.
"""
