"""hpcsweep: hyperparameter sweeps on Slurm job arrays.

The search space is written into the command that a researcher already runs, in
Orion's syntax (``--lr~'loguniform(1e-5, 1.0)'``).  A planner turns it into trials,
submits them as job arrays through submitit, and each array task runs one trial
and records its outcome in a store on the shared filesystem.
"""

__version__ = "0.1.0"
