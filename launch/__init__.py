"""Starting the whole pipe on one machine: Redis, the sandbox Kinde, the ingest, worker launchers.

One launcher (launch/pipe.py) serves `rolesync demo`, the chaos suites, the benchmarks and the
tests that need real processes; launch/processes.py is the child-process plumbing under it.
"""
