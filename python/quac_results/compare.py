"""Methods side by side, computed from the runs' score files: per run, method and scorer the median,
quartiles and mean of the per-sample scores, the direction that is better, and the rank of the
median among the run's methods for that scorer (1 is best; equal medians share a rank)."""
import numpy as np
import pandas as pd

from .run import Run


def compare(*runs):
    """A DataFrame with columns run, method, scorer, median, q25, q75, mean, better, rank, one row per
    (run, method, scorer). Arguments are Run objects or results folders."""
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    rows = []
    for run in runs:
        long = run.scores()
        for (method, scorer), g in long.groupby(["method", "scorer"], sort=False):
            s = g["score"].to_numpy()
            s = s[np.isfinite(s)]
            q25, median, q75 = np.quantile(s, [0.25, 0.5, 0.75]) if len(s) else (np.nan,) * 3
            rows.append({"run": run.label, "method": method, "scorer": scorer, "median": median, "q25": q25,
                         "q75": q75, "mean": s.mean() if len(s) else np.nan, "better": run.better(method, scorer)})
    table = pd.DataFrame(rows, columns=["run", "method", "scorer", "median", "q25", "q75", "mean", "better"])
    if table.empty:
        table["rank"] = []
        return table
    sign = np.where(table["better"] == "lower", 1.0, -1.0)
    key = table["median"] * sign  # smaller is better
    table["rank"] = key.groupby([table["run"], table["scorer"]]).rank(method="min").astype(int)
    return table
