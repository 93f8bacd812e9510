#!/usr/bin/env python3
"""Fix kosoku 0.1.0's permessage-deflate cases (12.x/13.x) in place.

Its case12_x_x.py onMessage() passes text messages, which the runner sometimes
hands over as str, to hashlib, so 12 cases (13.2.1-3, 13.5.1-3, 13.6.1-3,
13.7.1-3) end in ERROR whatever the peer does. Encoding a str to UTF-8 first is
what the Python 3 port of the reference suite does; the echoed payload is still
checked by SHA-1 and length. Idempotent: a marked file is left alone.
"""
import importlib.util
import pathlib
import re
import sys

MARK = "# wirehub: encode str (kosoku 0.1.0 fix)"


def main() -> int:
    spec = importlib.util.find_spec("kosoku")
    if spec is None or not spec.submodule_search_locations:
        print("patch-kosoku: kosoku is not installed", file=sys.stderr)
        return 1
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "cases" / "case12_x_x.py"
    src = path.read_text(encoding="utf-8")
    if MARK in src:
        print(f"patch-kosoku: already patched: {path}")
        return 0
    pattern = re.compile(r"^([ \t]*)def onMessage\(self, msg, binary\):\n([ \t]+)", re.M)
    matches = list(pattern.finditer(src))
    if len(matches) != 1:
        print(f"patch-kosoku: expected one onMessage in {path}, found {len(matches)}; "
              "kosoku changed, check whether the fix is still needed", file=sys.stderr)
        return 1
    m = matches[0]
    body_indent = m.group(2)
    line = f"if isinstance(msg, str): msg = msg.encode('utf-8')  {MARK}\n{body_indent}"
    patched = src[: m.end()] + line + src[m.end():]
    compile(patched, str(path), "exec")  # never leave a broken file behind
    path.write_text(patched, encoding="utf-8")
    print(f"patch-kosoku: patched {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
