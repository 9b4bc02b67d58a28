"""Builds the training text corpus from what the machine's packages carry.

Sources: fortune cookie files (fortunes, fortunes-min), man pages, Python docstrings of the standard
library and installed packages, plain-text package documentation; plus templated short utterances
(digit strings, numbers, letters, yes/no, dates, times, commands). Every sentence is normalised by
the scoring convention, kept only if nearly all of its words are dictionary words (wamerican),
deduplicated, and removed if it is or contains an evaluation text (every Asterisk prompt; files of
standard speech-corpus sentence lists are skipped by name and the corpus is checked for them).

Texts picked by common.heldout_text (a fixed hash, 1.5% of texts of three or more words) go to
data/text/heldout.txt only: the natural-voice test draws from them; training audio and the LM never do.

Usage: text.py [--seed 1]   -> data/text/{prose,short,heldout}.txt, data/text/stats.json
"""
import argparse
import ast
import glob
import gzip
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, asterisk_prompts, heldout_text, normalize, number_words, ordinal_words  # noqa: E402

SKIP_PATH = re.compile(r"arctic|timit|harvard|librispeech|asterisk", re.I)


def read(path):
    op = gzip.open if path.endswith(".gz") else open
    try:
        with op(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read(2_000_000)
    except (OSError, EOFError, UnicodeError):
        return ""


def split_sentences(par):
    par = re.sub(r"\s+", " ", par).strip()
    for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", par):
        yield s.strip()


def fortunes():
    for p in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if p.endswith((".dat", ".u8")) or os.path.isdir(p) or "art" in os.path.basename(p):
            continue
        for cookie in read(p).split("\n%\n"):
            # attribution lines ("-- Author") are not sentences
            body = "\n".join(line for line in cookie.splitlines() if not line.strip().startswith("--"))
            for par in re.split(r"\n\s*\n", body):
                yield from split_sentences(par)


TROFF = [(re.compile(r"\\f[BIRP]|\\f\(..|\\f\[[A-Z]*\]"), ""), (re.compile(r"\\[-e]"), "-"),
         (re.compile(r"\\\(..|\\\[[a-z]+\]"), " "), (re.compile(r"\\&|\\c|\\%"), ""), (re.compile(r"\\s[-+]?\d"), "")]


def man_pages(limit):
    files = sorted(glob.glob("/usr/share/man/man[1-8]/*.gz"))
    rng = random.Random(7)
    rng.shuffle(files)
    for p in files[:limit]:
        par = []
        for line in read(p).splitlines():
            if line.startswith((".", "'")):
                if line[:3] in (".PP", ".P", ".LP", ".SH", ".TP", ".IP", ".SS", ".sp", ".br") or line.startswith(".SH"):
                    if par:
                        yield from split_sentences(" ".join(par))
                    par = []
                continue
            for r, s in TROFF:
                line = r.sub(s, line)
            par.append(line)
        if par:
            yield from split_sentences(" ".join(par))


def docstrings():
    roots = sorted(set(glob.glob("/usr/lib/python3*/") + glob.glob("/usr/lib/python3/dist-packages/")))
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            if SKIP_PATH.search(dirpath) or "test" in dirpath:
                dirnames[:] = []
                continue
            for fn in sorted(filenames):
                if not fn.endswith(".py"):
                    continue
                try:
                    tree = ast.parse(read(os.path.join(dirpath, fn)))
                except (SyntaxError, ValueError, RecursionError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                        d = ast.get_docstring(node)
                        if d:
                            for par in re.split(r"\n\s*\n", d):
                                yield from split_sentences(par)


def plain_docs():
    pats = ["/usr/share/doc/*/README*", "/usr/share/doc/*/*.txt*", "/usr/share/doc/*/*.md", "/usr/share/doc/*/*/*.md",
            "/usr/share/vim/vim*/doc/*.txt", "/usr/share/perl/*/pod/*.pod", "/usr/share/doc/*/NEWS*"]
    for pat in pats:
        for p in sorted(glob.glob(pat)):
            if SKIP_PATH.search(p) or os.path.isdir(p):
                continue
            for par in re.split(r"\n\s*\n", read(p)):
                if par.count("\n") > 0 and re.search(r"^\s{4,}|[{};=<>|]", par, re.M) and len(par) < 2000:
                    continue  # code blocks and tables
                yield from split_sentences(par)


LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
MONTHS = "january february march april may june july august september october november december".split()
VERBS = ["call", "dial", "play", "stop", "pause", "record", "delete", "save", "send", "open", "close", "cancel",
         "repeat", "skip", "start", "continue", "go back", "next", "previous", "turn on", "turn off", "mute",
         "unmute", "forward", "transfer", "check", "show", "find", "set", "remove", "add", "hold", "select"]
OBJECTS = ["the message", "my messages", "the lights", "the music", "the next song", "this call", "the timer",
           "the alarm", "my email", "the file", "the last one", "the door", "the volume", "the menu", "the meeting",
           "the list", "my calendar", "the options", "the recording", "the greeting", "the folder", "the radio"]
SHORT = ["yes", "no", "okay", "yes please", "no thanks", "yeah", "nope", "sure", "correct", "wrong", "right",
         "left", "up", "down", "stop", "go", "help", "hello", "hi there", "thanks", "thank you very much", "please",
         "cancel that", "never mind", "again", "louder", "quieter", "faster", "slower", "what time is it",
         "how are you", "good morning", "good night", "see you later", "excuse me", "one moment", "wait",
         "i don't know", "that's right", "not now", "maybe later", "of course", "absolutely", "exactly"]


def short_utterances(rng, n):
    out = set()
    gens = []

    def digits():
        k = rng.choice([1, 1, 2, 3, 4, 4, 7, 10])
        return " ".join(rng.choice(["zero", "oh"] if rng.random() < 0.1 else [number_words(rng.randrange(10))])
                        for _ in range(k))

    def number():
        r = rng.random()
        n_ = rng.randrange(10) if r < 0.2 else rng.randrange(100) if r < 0.6 else rng.randrange(10**rng.randrange(3, 8))
        return number_words(n_)

    def ordinal():
        return ordinal_words(rng.randrange(1, 40 if rng.random() < 0.8 else 1000))

    def letters():
        return " ".join(rng.choice(LETTERS) for _ in range(rng.choice([1, 1, 2, 3, 4, 5])))

    def date():
        return rng.choice([f"{rng.choice(DAYS)} {rng.choice(MONTHS)} {ordinal_words(rng.randrange(1, 32))}",
                           f"{rng.choice(MONTHS)} {ordinal_words(rng.randrange(1, 32))}",
                           f"on {rng.choice(DAYS)}", f"next {rng.choice(DAYS)}", f"in {rng.choice(MONTHS)}",
                           f"{rng.choice(MONTHS)} {number_words(rng.randrange(1990, 2040))}"])

    def time():
        h, m = rng.randrange(1, 13), rng.randrange(60)
        mm = "" if m == 0 else (" oh " + number_words(m) if m < 10 else " " + number_words(m))
        if rng.random() < 0.15:
            return f"{number_words(h)} o'clock" + rng.choice(["", " in the morning", " at night"])
        return f"{number_words(h)}{mm} {rng.choice(['a m', 'p m', 'in the morning'] if rng.random() < 0.3 else ['a m', 'p m'])}"

    def command():
        r = rng.random()
        if r < 0.5:
            return f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        if r < 0.7:
            return f"press {number_words(rng.randrange(10))}" + rng.choice(["", f" for {rng.choice(OBJECTS)}", " now", " again"])
        return rng.choice(SHORT)

    def mix():
        return f"{rng.choice(SHORT)} {rng.choice([digits, number, letters, date, time, command])()}"

    gens = [digits, digits, number, number, ordinal, letters, letters, date, time, command, command, mix]
    tries = 0
    while len(out) < n and tries < n * 20:
        tries += 1
        out.add(normalize(rng.choice(gens)()))
    return out


def evaluation_filter():
    """A test keep(normalised text) that is False for every evaluation text: each Asterisk prompt,
    whole and sentence by sentence, and (for prompts of three or more words) any text containing one."""
    evals = set()
    for t in asterisk_prompts().values():
        evals.add(normalize(t))
        for s in re.split(r"[.!?]+", t):
            if normalize(s):
                evals.add(normalize(s))
    long_evals = [e for e in evals if len(e.split()) >= 3]
    long_re = re.compile(r"\b(?:" + "|".join(re.escape(e) for e in sorted(long_evals, key=len, reverse=True)) + r")\b")
    return lambda s: s not in evals and not long_re.search(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--man-pages", type=int, default=6000)
    ap.add_argument("--short", type=int, default=40000)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out_dir = os.path.join(DATA, "text")
    os.makedirs(out_dir, exist_ok=True)

    words = set()
    for line in open("/usr/share/dict/american-english", encoding="utf-8", errors="replace"):
        words.add(normalize(line.strip()))
    words |= {"a", "i", "ok", "okay", "o'clock", "email", "online", "website"}

    keep = evaluation_filter()

    stats = {}
    prose = set()
    removed = 0
    for name, gen in [("fortunes", fortunes()), ("man", man_pages(args.man_pages)),
                      ("docstrings", docstrings()), ("docs", plain_docs())]:
        kept = 0
        for raw in gen:
            if len(raw) < 8 or len(raw) > 300 or re.search(r"[_{}\[\]<>=|\\/@$^~`]", raw):
                continue
            if re.search(r"\w\.\w|\(\)", raw):  # identifiers like os.path or calls
                continue
            s = normalize(raw)
            ws = s.split()
            if not (3 <= len(ws) <= 30):
                continue
            if sum(w in words for w in ws) < len(ws):
                continue
            if not keep(s):
                removed += 1
                continue
            if s not in prose:
                prose.add(s)
                kept += 1
        stats[name] = kept
        print(name, kept, flush=True)
    short = {s for s in short_utterances(rng, args.short) if keep(s)}
    prose -= short
    heldout = sorted(s for s in prose | short if heldout_text(s))
    prose = sorted(s for s in prose if not heldout_text(s))
    short = {s for s in short if not heldout_text(s)}
    rng.shuffle(prose)
    short = sorted(short)
    rng.shuffle(short)
    with open(os.path.join(out_dir, "prose.txt"), "w") as f:
        f.write("\n".join(prose) + "\n")
    with open(os.path.join(out_dir, "short.txt"), "w") as f:
        f.write("\n".join(short) + "\n")
    rng.shuffle(heldout)
    with open(os.path.join(out_dir, "heldout.txt"), "w") as f:
        f.write("\n".join(heldout) + "\n")
    stats.update(prose=len(prose), short=len(short), heldout=len(heldout), removed_as_evaluation_text=removed,
                 words=sum(len(s.split()) for s in prose) + sum(len(s.split()) for s in short))
    json.dump(stats, open(os.path.join(out_dir, "stats.json"), "w"), indent=1)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
