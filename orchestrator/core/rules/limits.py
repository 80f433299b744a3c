"""How large a rule set may be, and why: it is input from people and other tools.

A rule set is checked by every worker when it is published; an accidental or hostile one must
be refused quickly, with a readable error, and never exhaust the worker. Each bound is far
above what the shipped rule set uses (2 files, 9 KB, 550 YAML nodes, 10 levels deep, conditions
4 levels deep) and far below what would cost a worker noticeable time or memory.
"""

from __future__ import annotations

#: Bytes of one rule file (the shipped web.yaml is 7 KB).
MAX_FILE_BYTES = 256 * 1024
#: Bytes of all files of a set: a published set is one record on the rules topic, and JSON
#: escaping (newlines, quotes) can double YAML text; twice this stays under Kafka's 1 MB.
MAX_RULE_SET_BYTES = 384 * 1024
#: YAML nodes of a set, an alias counted as every node it stands for: what the checks walk.
#: "Billion laughs" (aliases of aliases) stops here, after reading only the file's own text.
MAX_YAML_NODES = 50_000
#: Nesting of YAML mappings and lists in one file: the checks (and PyYAML) recurse through it.
MAX_YAML_DEPTH = 64
#: Nesting of all / any / not in one condition: compiled, indexed and evaluated recursively.
MAX_CONDITION_DEPTH = 16
#: Rules in a set: every event is checked against the rules that can fire on its type.
MAX_RULES = 500
#: Characters of a number (digits, sign, point, exponent): a 5,000-digit integer is no value
#: anyone means, and converting it is slow (Python refuses from 4,300 digits).
MAX_NUMBER_CHARS = 32
#: Problems reported for one set; the rest are counted.
MAX_REPORTED_PROBLEMS = 200
