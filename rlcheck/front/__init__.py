"""What people run and read: the commands and their options, the table, results.json, the
figures, report.html and the CI job summary. (The console script is ``rlcheck.cli``, kept
light; the pytest plugin is ``rlcheck.plugin`` and its shipped gate ``rlcheck.gate``.)"""
