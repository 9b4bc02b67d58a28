"""Word 3-gram language model (interpolated Kneser-Ney, written as a back-off ARPA file) from the
training text, and a CTC prefix beam search that adds the LM at word ends.

Build:  lm.py [--min2 2 --min3 3] [--out data/lm/3gram.arpa.gz]
  Counts n-grams over data/text/prose.txt + short.txt + talk.txt (transcripts) (sentence markers <s> </s>), keeps bigrams seen
  at least --min2 times and trigrams at least --min3 times (pruning), discount D = 0.75 at every order,
  lower orders use continuation counts, unigrams interpolated with the uniform distribution.
Use:    BeamDecoder(arpa_path, vocabulary).decode(log_probs)  (log_probs: steps x symbols, natural log)
"""
import argparse
import collections
import gzip
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA  # noqa: E402

D = 0.75
LOG10 = math.log(10.0)


def build(sentences, min2, min3):
    c3 = collections.Counter()
    for s in sentences:
        w = ["<s>"] + s.split() + ["</s>"]
        for i in range(2, len(w)):
            c3[(w[i - 2], w[i - 1], w[i])] += 1
    # bigram counts: real counts of (u, v) (for the bigram as highest order of its history "<s> w")
    c2 = collections.Counter()
    for s in sentences:
        w = ["<s>"] + s.split() + ["</s>"]
        for i in range(1, len(w)):
            c2[(w[i - 1], w[i])] += 1
    # continuation counts
    n1p_2 = collections.Counter()  # N1+(. v w) for bigram (v, w)
    for (u, v, w), c in c3.items():
        n1p_2[(v, w)] += 1
    n1p_1 = collections.Counter()  # N1+(. w)
    for (v, w) in c2:
        n1p_1[w] += 1
    vocab = sorted(n1p_1.keys() | {"<s>"})
    total1 = sum(n1p_1.values())
    V = len(vocab)
    # unigram: continuation prob interpolated with uniform
    n_types_1 = len(n1p_1)
    p1 = {}
    for w in vocab:
        p1[w] = max(n1p_1.get(w, 0) - D, 0) / total1 + (D * n_types_1 / total1) / V
    # bigram: continuation counts N1+(. v w); real counts for the sentence-start history <s>
    big = collections.defaultdict(dict)
    for (v, w), c in c2.items():
        cc = n1p_2.get((v, w), 0) if v != "<s>" else c
        if cc == 0:
            cc = c
        if c >= min2 or v == "<s>":
            big[v][w] = cc
    hist2_tot = collections.Counter()
    hist2_types = collections.Counter()
    for (v, w), c in c2.items():
        cc = n1p_2.get((v, w), 0) if v != "<s>" else c
        cc = cc or c
        hist2_tot[v] += cc
        hist2_types[v] += 1
    p2 = {}
    for v, ws in big.items():
        tot, types = hist2_tot[v], hist2_types[v]
        for w, cc in ws.items():
            p2[(v, w)] = max(cc - D, 0) / tot + D * types / tot * p1[w]
    tri = collections.defaultdict(dict)
    hist3_tot = collections.Counter()
    hist3_types = collections.Counter()
    for (u, v, w), c in c3.items():
        if c == 0:
            continue
        hist3_tot[(u, v)] += c
        hist3_types[(u, v)] += 1
        if c >= min3:
            tri[(u, v)][w] = c

    def p2f(v, w):
        if (v, w) in p2:
            return p2[(v, w)]
        tot, types = hist2_tot.get(v, 0), hist2_types.get(v, 0)
        return (D * types / tot if tot else 1.0) * p1[w]

    p3 = {}
    for (u, v), ws in tri.items():
        tot, types = hist3_tot[(u, v)], hist3_types[(u, v)]
        for w, c in ws.items():
            p3[(u, v, w)] = max(c - D, 0) / tot + D * types / tot * p2f(v, w)
    # back-off weights
    bow1 = {}
    for v, ws in big.items():
        num = 1.0 - sum(p2[(v, w)] for w in ws)
        den = 1.0 - sum(p1[w] for w in ws)
        bow1[v] = max(num, 1e-12) / max(den, 1e-12)
    bow2 = {}
    for (u, v), ws in tri.items():
        num = 1.0 - sum(p3[(u, v, w)] for w in ws)
        den = 1.0 - sum(p2f(v, w) for w in ws)
        bow2[(u, v)] = max(num, 1e-12) / max(den, 1e-12)
    return vocab, p1, p2, p3, bow1, bow2


def write_arpa(path, vocab, p1, p2, p3, bow1, bow2):
    op = gzip.open if path.endswith(".gz") else open
    l10 = lambda x: math.log10(max(x, 1e-30))  # noqa: E731
    with op(path, "wt") as f:
        f.write(f"\\data\\\nngram 1={len(vocab)}\nngram 2={len(p2)}\nngram 3={len(p3)}\n\n\\1-grams:\n")
        for w in vocab:
            p = -99.0 if w == "<s>" else l10(p1[w])
            f.write(f"{p:.5f}\t{w}\t{l10(bow1.get(w, 1.0)):.5f}\n")
        f.write("\n\\2-grams:\n")
        for (v, w), p in sorted(p2.items()):
            b = bow2.get((v, w))
            f.write(f"{l10(p):.5f}\t{v} {w}" + (f"\t{l10(b):.5f}\n" if b is not None else "\n"))
        f.write("\n\\3-grams:\n")
        for (u, v, w), p in sorted(p3.items()):
            f.write(f"{l10(p):.5f}\t{u} {v} {w}\n")
        f.write("\n\\end\\\n")


class ArpaLM:
    """Back-off n-gram LM from an ARPA file; score(history tuple, word) -> natural-log probability."""

    def __init__(self, path):
        op = gzip.open if path.endswith(".gz") else open
        self.p, self.b = {}, {}
        order = 0
        with op(path, "rt") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("ngram ") or line == "\\data\\":
                    continue
                if line.endswith("-grams:"):
                    order = int(line[1])
                    continue
                if line == "\\end\\":
                    break
                parts = line.split("\t")
                words = tuple(parts[1].split())
                self.p[words] = float(parts[0]) * LOG10
                if len(parts) > 2:
                    self.b[words] = float(parts[2]) * LOG10
        self.unk = math.log(1e-7)

    def score(self, hist, w):
        hist = tuple(hist[-2:])
        bo = 0.0
        while True:
            k = hist + (w,)
            if k in self.p:
                return bo + self.p[k]
            if not hist:
                return bo + self.unk
            bo += self.b.get(hist, 0.0)
            hist = hist[1:]


class BeamDecoder:
    """CTC prefix beam search over characters; at each completed word (space or end) adds
    alpha * LM log-prob + beta (word bonus)."""

    def __init__(self, arpa, vocab, alpha=0.8, beta=1.5, beam=10, prune=-6.0):
        self.lm = arpa if isinstance(arpa, ArpaLM) else ArpaLM(arpa)
        self.vocab, self.alpha, self.beta, self.beam, self.prune = vocab, alpha, beta, beam, prune
        self.space = vocab.index(" ")

    def _word_score(self, text):
        words = text.split()
        if not words:
            return 0.0
        hist = ["<s>"] + words[:-1]
        return self.alpha * self.lm.score(tuple(hist[-2:]), words[-1]) + self.beta

    def decode(self, logp):
        import numpy as np
        NEG = -1e30

        def lse(a, b):
            if a < b:
                a, b = b, a
            return a if b <= NEG else a + math.log1p(math.exp(b - a))

        # beam entries: prefix text -> [p_blank, p_nonblank, lm_score]
        beams = {"": [0.0, NEG, 0.0]}
        for t in range(logp.shape[0]):
            row = logp[t]
            cand = [int(i) for i in np.nonzero(row > self.prune)[0]]
            nb = collections.defaultdict(lambda: [NEG, NEG, 0.0])
            for prefix, (pb, pnb, lms) in beams.items():
                tot = lse(pb, pnb)
                for c in cand:
                    p = float(row[c])
                    if c == 0:
                        e = nb[prefix]
                        e[0] = lse(e[0], tot + p)
                        e[2] = lms
                        continue
                    ch = self.vocab[c]
                    last = prefix[-1] if prefix else ""
                    if c == self.space:
                        if not prefix or last == " ":
                            e = nb[prefix]
                            e[1] = lse(e[1], tot + p)
                            e[2] = lms
                            continue
                        newp = prefix + " "
                        e = nb[newp]
                        e[1] = lse(e[1], tot + p)
                        e[2] = lms + self._word_score(prefix)
                        continue
                    newp = prefix + ch
                    e = nb[newp]
                    e[2] = lms
                    if ch == last:
                        e[1] = lse(e[1], pb + p)
                        s = nb[prefix]
                        s[1] = lse(s[1], pnb + p)
                        s[2] = lms
                    else:
                        e[1] = lse(e[1], tot + p)
            beams = dict(sorted(nb.items(), key=lambda kv: -(lse(kv[1][0], kv[1][1]) + kv[1][2]))[: self.beam])
        best, bs = "", NEG
        for prefix, (pb, pnb, lms) in beams.items():
            s = lse(pb, pnb) + lms
            if prefix and prefix[-1] != " ":
                s += self._word_score(prefix)
            words = prefix.split()
            s += self.alpha * self.lm.score(tuple((["<s>"] + words)[-2:]), "</s>")
            if s > bs:
                best, bs = prefix, s
        return " ".join(best.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min2", type=int, default=2)
    ap.add_argument("--min3", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(DATA, "lm", "3gram.arpa.gz"))
    args = ap.parse_args()
    sents = []
    for name in ("prose.txt", "short.txt"):
        sents += [s for s in open(os.path.join(DATA, "text", name)).read().split("\n") if s]
    talk = os.path.join(DATA, "text", "talk.txt")  # talk.py: say<TAB>transcript; the LM takes the transcript
    if os.path.exists(talk):
        sents += [line.rstrip("\n").split("\t")[-1] for line in open(talk) if line.strip()]
    vocab, p1, p2, p3, bow1, bow2 = build(sents, args.min2, args.min3)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_arpa(args.out, vocab, p1, p2, p3, bow1, bow2)
    print(f"{args.out}: {len(vocab)} words, {len(p2)} bigrams, {len(p3)} trigrams, {os.path.getsize(args.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
