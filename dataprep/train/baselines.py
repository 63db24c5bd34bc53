"""The baselines every adapter is reported against, trained on the adapter's training rows and scored on its
test rows: without them a user cannot tell a useful adapter from one a majority vote would beat.

Classification: the training split's majority label, and TF-IDF over character 1-3-grams with logistic
regression (scikit-learn) — character n-grams need no tokenizer and work for Chinese and English alike, and
this pair is the usual strong linear baseline for text classification. NER: every tag `O`, and each token's
most frequent training tag (`O` for unseen tokens), scored by the same strict entity F1 as the adapter.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from dataprep.train import evaluate as E

STRONG = {"seq_cls": "tfidf_logreg", "token_cls": "most_frequent_tag"}  # the one an adapter must beat


def classification(train_x: list[str], train_y: list[str], test_x: list[str], test_y: list[str],
                   labels: list[str]) -> dict:
    """{name: {accuracy, macro_f1}} for the majority label and TF-IDF + logistic regression."""
    majority = Counter(train_y).most_common(1)[0][0]
    return {"majority": _scores(test_y, [majority] * len(test_y), labels),
            "tfidf_logreg": _scores(test_y, _tfidf_logreg(train_x, train_y, test_x), labels)}


def _tfidf_logreg(train_x: list[str], train_y: list[str], test_x: list[str]) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    if len(set(train_y)) < 2:  # one class: logistic regression cannot fit, the majority is the answer
        return [train_y[0]] * len(test_x)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    # One BLAS thread: the solver's sums, like torch's, would otherwise depend on the machine's core count.
    with threadpool_limits(limits=1):
        features = vectorizer.fit_transform(train_x)
        model = LogisticRegression(max_iter=1000, C=4.0).fit(features, train_y)
        return model.predict(vectorizer.transform(test_x)).tolist()


def _scores(gold: list[str], pred: list[str], labels: list[str]) -> dict:
    m = E.classification(gold, pred, labels)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def entities(train_tokens: list[list[str]], train_tags: list[list[str]], test_tokens: list[list[str]],
             test_tags: list[list[str]]) -> dict:
    """{name: {precision, recall, f1}} for all-O and the per-token most frequent tag."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for tokens, tags in zip(train_tokens, train_tags):
        for token, tag in zip(tokens, tags):
            votes[token][tag] += 1
    # Ties go to the tag that sorts first, so the baseline does not depend on the order of the rows.
    best = {t: min(c, key=lambda tag: (-c[tag], tag)) for t, c in votes.items()}
    guessed = [[best.get(t, "O") for t in tokens] for tokens in test_tokens]
    return {"all_o": _entity_scores(test_tags, [["O"] * len(tags) for tags in test_tags]),
            "most_frequent_tag": _entity_scores(test_tags, guessed)}


def _entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict:
    m = E.entities(gold, pred)
    return {"precision": m["precision"], "recall": m["recall"], "f1": m["f1"], "support": m["support"]}


def headline(task: str, metrics: dict) -> float | None:
    """The number an adapter and its baselines are compared by: macro-F1, or entity F1."""
    return metrics.get({"seq_cls": "macro_f1", "token_cls": "f1"}.get(task, ""))


def verdict(task: str, metrics: dict, baselines: dict) -> str | None:
    """A warning when the adapter does not beat the strong baseline, else None."""
    name = STRONG.get(task)
    if name is None or name not in baselines:
        return None
    ours, theirs = headline(task, metrics), headline(task, baselines[name])
    if ours is None or theirs is None or ours > theirs:
        return None
    what = "macro-F1" if task == "seq_cls" else "entity F1"
    return (f"the adapter does not beat the {name} baseline on the same test rows ({what} {ours:.3f} vs "
            f"{theirs:.3f}): a stronger base model, more data or more epochs may help; the baseline may be the "
            "better model here")
