"""Which rule for the merge's α holds everywhere? Reads bench_guard.py's JSONs and checks each rule per cell.

    python benchmarks/guard_summary.py [--tag guard]

A rule passes a cell (corpus x profile) when the model it saves has a paired difference with the base and
with the rotated base whose lower 95% bound is >= -0.005 at every Matryoshka dimension (the issue's
bound); "mean >= 0" is the weaker check that no mean difference is negative. Besides bench_guard's rules
(the kit's synthetic-validation choice, fixed α, α chosen on half the people's questions), two caps on the
kit's choice are read off the same rows: min(kit α, 0.5) and min(kit α, 0.75). Also printed: the issue's
second target, the saved model - rotated base >= +0.02 at the full dimension.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RUNS_DIR = Path(__file__).resolve().parents[1] / "data" / "downloads" / "bench" / "runs"
FLOOR = -0.005
CELLS = [("faq", "smoke"), ("docs", "smoke"), ("faq", "workshop"), ("docs", "workshop")]


def rules_of(result: dict) -> dict[str, dict]:
    """bench_guard's rules plus caps on the kit's α (each: the row of the model it saves, its αs)."""
    rules = {name: {"row": r["row"], "alphas": r.get("alphas")} for name, r in result["rules"].items()}
    for cap in (0.5, 0.75):
        alpha = min(result["kit_alpha"], cap)
        rules[f"min(kit α, {cap:g})"] = {"row": result["rows"][f"α={alpha:g}"], "alphas": [alpha]}
    return rules


def check(row: dict) -> dict:
    lows = [cell[f"vs_{ref}"]["ci_low"] for cell in row.values() for ref in ("base", "rotated")]
    means = [cell[f"vs_{ref}"]["mean_diff"] for cell in row.values() for ref in ("base", "rotated")]
    return {"passes": min(lows) >= FLOOR, "min_low": min(lows), "mean_ok": min(means) >= 0,
            "min_mean": min(means)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="guard")
    args = parser.parse_args()
    results = {}
    for corpus, profile in CELLS:
        path = RUNS_DIR / f"guard-{args.tag}-{corpus}-{profile}.json"
        if path.is_file():
            results[(corpus, profile)] = json.loads(path.read_text())
    if not results:
        raise SystemExit(f"no guard-{args.tag}-*.json in {RUNS_DIR}: run benchmarks/bench_guard.py")
    names = list(dict.fromkeys(n for r in results.values() for n in rules_of(r)))
    cells = list(results)
    print("cells:", ", ".join(f"{c}/{p}" for c, p in cells), f"(missing: "
          f"{', '.join(f'{c}/{p}' for c, p in CELLS if (c, p) not in results) or 'none'})")
    print("per cell: PASS/fail (lowest lower bound of Δ base and Δ rotated over dims; lowest mean Δ)")
    print(f"{'rule':<34}" + "".join(f"{c + '/' + p:>30}" for c, p in cells) + "   all")
    for name in names:
        marks, ok = [], True
        for key in cells:
            rule = rules_of(results[key]).get(name)
            if rule is None:
                marks.append(f"{'-':>30}")
                ok = False
                continue
            c = check(rule["row"])
            ok &= c["passes"]
            alphas = "" if not rule["alphas"] else "α " + "/".join(f"{a:g}" for a in rule["alphas"]) + " "
            verdict = "PASS" if c["passes"] else "fail"
            marks.append(f"{alphas}{verdict} {c['min_low']:+.3f} {c['min_mean']:+.3f}".rjust(30))
        status = "PASS" if ok and len(cells) == len(CELLS) else "fail" if not ok else "pass so far"
        print(f"{name:<34}" + "".join(marks) + f"   {status}")
    print("\nsaved model (kit's α) and fixed α: Δ rotated at the full dimension "
          "(target >= +0.02 in one profile)")
    for key, r in results.items():
        full = r["dims"][0]
        parts = [f"α={a}: {r['rows'][f'α={a}'][full]['vs_rotated']['mean_diff']:+.3f}"
                 for a in ("0.25", "0.5", "0.75", "1")]
        print(f"  {key[0]}/{key[1]}: kit α = {r['kit_alpha']:g}; " + ", ".join(parts))


if __name__ == "__main__":
    main()
