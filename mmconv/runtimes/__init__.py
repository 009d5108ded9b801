"""Running a framework out of process (today: the real CNTK 2.7 bridge, :mod:`.cntk`).

Framework runtimes that cannot be imported into mmconv's interpreter live
here, behind a small subprocess API; nothing else in mmconv spawns them.
"""
