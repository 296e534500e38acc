"""Write a Markdown word report of a text file: totals and the ten most frequent words."""

import collections
import re
import sys


def main(source: str, target: str) -> None:
    text = open(source, encoding="utf-8").read()
    words = re.findall(r"[a-z']+", text.lower())
    lines = text.count("\n")
    common = collections.Counter(words).most_common(10)
    out = [f"# Word report for {source}", "", f"- lines: {lines}", f"- words: {len(words)}",
           f"- characters: {len(text)}", "", "| word | count |", "|---|---|"]
    out += [f"| {w} | {n} |" for w, n in sorted(common, key=lambda p: (-p[1], p[0]))]
    with open(target, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    print(f"{len(words)} words in {source}; report written to {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
