#!/usr/bin/env python3
"""Checks the relative links of Markdown files: the file exists and, for a
link with #anchor, the target has a heading with that GitHub anchor.

    python3 scripts/checklinks.py README.md docs/*.md BENCHMARKS.md ...

Prints each broken link and exits 1 if there is one. Not run by CI."""
import os
import re
import sys

LINK = re.compile(r'\]\(([^)\s]+)(?:\s+"[^"]*")?\)')


def strip_code(text):
    text = re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)
    return re.sub(r'`[^`\n]*`', '', text)


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def anchors(path):
    seen, out = {}, set()
    text = re.sub(r'^```.*?^```', '', open(path, encoding='utf-8').read(), flags=re.S | re.M)
    for line in text.split('\n'):
        m = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if not m:
            continue
        s = slug(m.group(1))
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f'{s}-{n}')
    for m in re.finditer(r'<a\s+(?:name|id)="([^"]+)"', text):
        out.add(m.group(1))
    return out


def main(files):
    bad = 0
    for f in files:
        text = strip_code(open(f, encoding='utf-8').read())
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r'^[a-z][a-z0-9+.-]*:', target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            if not os.path.exists(dest):
                print(f'{f}: {target}: no such file {dest}')
                bad += 1
                continue
            if anchor and dest.endswith('.md') and anchor not in anchors(dest):
                print(f'{f}: {target}: no heading #{anchor} in {dest}')
                bad += 1
    print(f'{len(files)} files, {bad} broken links')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
