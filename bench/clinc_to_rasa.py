#!/usr/bin/python3
"""Convert CLINC150 (data_full.json) into a Rasa 3.x project for the
import benchmark: OUT/data/nlu.yml and OUT/domain.yml.

  python3 bench/clinc_to_rasa.py [--splits S1,S2,...] [DATA_FULL_JSON] OUT

--splits picks the splits (the accuracy benchmark, bench/clinc_bench.sh,
makes a project of "train" and a test set of "test"); by default every
split is used (train, val, test and the out-of-scope oos_train,
oos_val, oos_test: 23,700 examples over 150 intents plus "oos"), grouped
by intent in order of first appearance, each intent's examples in file
order, as a block string of "- text" lines, which is how Rasa writes NLU
data.  The domain lists the same 151 intents and one response per intent,
so that validation has something to match.  The texts have no
[entity](annotations); they are written as they are (CLINC150 is
lower-case plain text with no newlines).  Output goes to a folder the
benchmark makes and removes; it is never committed (CLINC150 is CC-BY 3.0,
Larson et al., 2019).
Standard library only.
"""
import json
import os
import sys

SPLITS = ("train", "val", "test", "oos_train", "oos_val", "oos_test")


def quote(s):
    """A YAML double-quoted scalar (JSON's escapes are valid YAML)."""
    return json.dumps(s, ensure_ascii=False)


def main(argv):
    splits = SPLITS
    if len(argv) >= 3 and argv[1] == "--splits":
        splits = tuple(argv[2].split(","))
        bad = [x for x in splits if x not in SPLITS]
        if bad:
            sys.exit(f"--splits: unknown split {bad[0]!r}; known: {', '.join(SPLITS)}")
        argv = argv[:1] + argv[3:]
    if len(argv) == 2:
        src, out = "../shared/data/clinc150/data_full.json", argv[1]
    elif len(argv) == 3:
        src, out = argv[1], argv[2]
    else:
        sys.exit(__doc__)
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    by_intent = {}
    n = 0
    for split in splits:
        for text, intent in data[split]:
            if "\n" in text or "\r" in text:
                sys.exit(f"{src}: a {split} example spans lines: {text!r}")
            by_intent.setdefault(intent, []).append(text.strip())
            n += 1

    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    with open(os.path.join(out, "data", "nlu.yml"), "w", encoding="utf-8") as f:
        f.write('version: "3.1"\n\nnlu:\n')
        for intent, texts in by_intent.items():
            f.write(f"- intent: {intent}\n  examples: |\n")
            for t in texts:
                f.write(f"    - {t}\n")
    with open(os.path.join(out, "domain.yml"), "w", encoding="utf-8") as f:
        f.write('version: "3.1"\n\nintents:\n')
        for intent in by_intent:
            f.write(f"  - {intent}\n")
        f.write("\nresponses:\n")
        for intent in by_intent:
            f.write(f"  utter_{intent}:\n  - text: {quote('(' + intent.replace('_', ' ') + ')')}\n")
        f.write("\nsession_config:\n  session_expiration_time: 60\n"
                "  carry_over_slots_to_new_session: true\n")
    print(f"{out}: {n} examples, {len(by_intent)} intents")


if __name__ == "__main__":
    main(sys.argv)
