"""The ways runs are made: a scenario run (`run`, on an `Executor`: this process or Ray), its
plan before it runs (`plan`), a stored run replayed or forked (`replay`), re-judged
(`rejudge`), or judged by people offline (`offline`). Each takes what it needs from the
layers below; nothing below imports a workflow."""
