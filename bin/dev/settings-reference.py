#!/usr/bin/env python
"""Print the settings reference (docs/configuration.md) from the settings' declarations in
util/settings/config.py; --write writes it to docs/configuration.md."""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from util.settings.config import reference_markdown

REFERENCE = os.path.join(ROOT, "docs", "configuration.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE}")
    args = parser.parse_args()
    text = reference_markdown()
    if args.write:
        with open(REFERENCE, "w", encoding="utf-8") as reference:
            reference.write(text)
        print(f"wrote {REFERENCE}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
