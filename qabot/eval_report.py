"""The printed report of `qabot eval`: the figures, abstention per kind, calibration, labels, the answer phrase,
and the misses."""

from __future__ import annotations

from qabot.calibration import CALIBRATION_BINS
from qabot.evaluate import UNCALIBRATED_KINDS, EvalReport, ItemResult, PhraseReport


def _miss_line(result: ItemResult) -> str | None:
    item, answer = result.item, result.answer
    if item.answerable and result.rank != 1:
        got = "abstained" if answer.abstained else (f"rank {result.rank}" if result.rank else "no passage hits")
    elif not item.answerable and not answer.abstained:
        got = f"answered, should abstain: {item.kind or 'unanswerable'}"
    else:
        return None
    top = answer.passages[0] if answer.passages and not answer.abstained else None
    where = f"; top: {top.location.source}:{top.location.line}, confidence {answer.confidence:.2f}" if top else ""
    return f"miss {item.id} ({got}{where}): {item.question}"


def render_report(report: EvalReport, misses: bool = False) -> str:
    """The figures, the abstention per kind and the reliability table; then one line per miss if asked."""
    answerable_abstained = round(report.false_abstention_rate * report.answerable)
    kind_width = max((len(k.kind) for k in report.abstention_by_kind), default=0)
    lines = [
        f"questions: {report.answerable + report.unanswerable} ({report.answerable} answerable, "
        f"{report.unanswerable} unanswerable)",
        f"R@1:    {report.recall_at_1:.3f}",
        f"R@3:    {report.recall_at_3:.3f}",
        f"MRR@10: {report.mrr_at_10:.3f}",
        f"false abstention rate: {report.false_abstention_rate:.3f} "
        f"({answerable_abstained} of {report.answerable} answerable)",
        f"abstention accuracy:   {report.abstention_accuracy:.3f} (unanswerable questions that abstained)",
        "abstention by kind:",
        *(
            f"  {k.kind:<{kind_width}} {k.abstained / k.questions:.3f} ({k.abstained} of {k.questions})"
            for k in report.abstention_by_kind
        ),
    ]
    if report.ece is None:
        lines.append("ECE: n/a (every answer abstained)")
    else:
        lines += [
            f"ECE: {report.ece:.3f} over {report.shown} shown answers ({CALIBRATION_BINS} confidence bins;"
            f" {', '.join(sorted(UNCALIBRATED_KINDS))} questions left out)",
            "  confidence      count  mean conf.  accuracy",
            *(
                f"  [{b.low:.1f}, {b.high:.1f}{']' if b.high == 1 else ')'}  {b.count:>7}  {b.mean_confidence:>10.3f}  "
                f"{b.accuracy:>8.3f}"
                for b in report.reliability
            ),
        ]
    if report.labels:
        width = max(len(f.label) for f in report.labels)
        lines += ["labels (shown answers; right: the first passage answers):"]
        lines += [f"  {f.label:<{width}}  {f.share:>6.1%} of answers ({f.count}), right {f.precision:.1%}"
                  for f in report.labels]  # fmt: skip
    if report.phrase is not None:
        lines += phrase_lines(report.phrase)
    if misses:
        lines += [line for line in map(_miss_line, report.results) if line]
    return "\n".join(lines)


def phrase_lines(report: PhraseReport) -> list[str]:
    """The answer phrase's figures (SQuAD's EM and F1) and its breakdown by question word."""
    skill, shown = report.readers_skill, report.shown
    ece = "n/a" if report.ece is None else f"{report.ece:.3f}"
    return [
        "answer phrase (SQuAD EM / F1):",
        f"  reader's skill:  {skill.em:.3f} / {skill.f1:.3f} (best phrase, shown or not, on {skill.questions}"
        " questions whose first passage holds a gold answer)",
        f"  shown:           {shown.em:.3f} / {shown.f1:.3f} ({shown.questions} of {report.answered} answered"
        f" answerable questions, {shown.questions / report.answered:.1%})",
        f"  all answerable:  {report.all_answerable.em:.3f} / {report.all_answerable.f1:.3f}"
        f" ({report.all_answerable.questions} questions, 0 when no phrase is shown)",
        f"  phrase ECE:      {ece} (best phrase's probability against its EM, answered answerable questions)",
        "  question word   answered   shown  shown EM  best EM",
        *(
            f"  {w.word:<14} {w.answered:>9} {w.shown:>7} {f'{w.shown_em:.3f}' if w.shown else '-':>9} {w.top_em:>8.3f}"
            for w in report.by_word
        ),
    ]
