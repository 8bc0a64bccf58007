"""The shipped gate: ``pytest --pyargs rlcheck.gate --rlcheck-net mypkg.nets:make_net``."""
