"""Running a framework out of process: real CNTK 2.7 (:mod:`.cntk`), MXNet 1.9.1 (:mod:`.mxnet`).

Framework runtimes that cannot be imported into mmconv's interpreter live
here, behind a small subprocess API; nothing else in mmconv spawns them.
"""
