"""What devvm's Python TAP tests share: TAP output, and a device's
numeric constants read from its C header (so a test drives the device
from the same values as its source and its driver).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re
import types


class Tap:
    """TAP output: one line per check, the plan at the end."""

    def __init__(self):
        self.count = 0
        self.failed = 0

    def ok(self, passed, description, diagnostics=""):
        self.count += 1
        print(f"{'ok' if passed else 'not ok'} {self.count} - {description}",
              flush=True)
        if not passed:
            self.failed += 1
            self.diag(diagnostics)
        return passed

    @staticmethod
    def diag(text):
        for line in str(text).splitlines():
            print(f"# {line}", flush=True)

    def finish(self):
        print(f"1..{self.count}", flush=True)
        return 1 if self.failed else 0


def header_constants(path, prefix):
    """The "#define PREFIX_NAME number" macros of the header at @path, as
    attributes NAME (hexadecimal or decimal, with or without a u, U, l or
    L suffix, the number alone or in parentheses)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    pattern = (r"^#define\s+" + prefix +
               r"_(\w+)\s+\(?(0x[0-9a-fA-F]+|\d+)[uUlL]*\)?\s*(?:/\*|$)")
    return types.SimpleNamespace(**{
        name: int(value, 0)
        for name, value in re.findall(pattern, text, re.MULTILINE)})
