"""mmconv: convert trained models between frameworks through one IR.

The flow is one-directional: a frontend turns a source model into an
:class:`mmconv.ir.Graph` (plus weights), an emitter turns the graph into code
or a model file for a target, and the command-line scripts only wire the two.
"""

__version__ = "0.1.0"
