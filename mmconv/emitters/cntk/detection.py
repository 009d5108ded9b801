"""Detection ops.  MaxRoiPool has no handler yet: CNTK's ``roipooling`` takes the
ROIs of each sample as a batched (R, 4) input, while the IR op takes all ROIs
of the batch as one static [R, 5] tensor with a batch-index column; mapping
back needs the frontend's pattern (CumSum over the batch, Concat, Reshape)
recognized as a whole, which is not done yet.  Without a handler the builder
reports every MaxRoiPool node by name."""

from __future__ import annotations
