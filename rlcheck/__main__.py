from rlcheck.cli import entry_point

entry_point()
