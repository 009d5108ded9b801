"""Detection ops: none emitted yet.

MaxRoiPool has no Keras layer and no exact, serializable ``keras.ops`` form
here yet, so it has no handler: the builder reports every such node in one
UnsupportedError (and docs/support-matrix.md shows the gap).
"""
