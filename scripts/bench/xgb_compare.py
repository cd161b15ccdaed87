#!/usr/bin/python3
"""Train XGBoost on the exact matrices MlBench exported and write test-set scores and training seconds.

Usage: /usr/bin/python3 xgb_compare.py DIR
DIR holds tasks.json and, per task, NAME_train.csv / NAME_valid.csv / NAME_test.csv (first column label, the test
file's is a placeholder 0; empty = missing). The validation rows are the ones ML.NET's LightGbm early-stops on, and
early stopping here watches the same log loss.
Writes NAME_scores.txt (one probability per test row, best iteration) and NAME_seconds.txt
("seconds trees": DMatrix build + training with early stopping, wall clock; trees kept).
MlBench computes every metric from these scores with the same code it uses for the ML.NET models.
"""
import json
import os
import sys
import time

import numpy as np
import xgboost as xgb


def load(path):
    data = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float32, filling_values=np.nan)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    return data[:, 1:], data[:, 0]


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "tasks.json"), encoding="utf-8") as f:
        tasks = json.load(f)
    for task in tasks:
        name, p = task["name"], task["params"]
        x_tr, y_tr = load(os.path.join(folder, name + "_train.csv"))
        x_va, y_va = load(os.path.join(folder, name + "_valid.csv"))
        x_te, _ = load(os.path.join(folder, name + "_test.csv"))
        params = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "nthread": p.get("nthread", 2),
            "seed": 0,
            "max_depth": p["max_depth"],
            "eta": p["eta"],
            "lambda": p["lambda"],
            "min_child_weight": p["min_child_weight"],
            "subsample": p["subsample"],
            "colsample_bytree": p["colsample_bytree"],
            "max_bin": p["max_bin"],
            "scale_pos_weight": p["scale_pos_weight"],
            "gamma": p["gamma"],
            "eval_metric": "logloss",
        }
        if p.get("max_leaves", 0) > 0:
            # Same growth policy as ours: best-first with a leaf cap and a depth cap.
            params["grow_policy"] = "lossguide"
            params["max_leaves"] = p["max_leaves"]
        start = time.perf_counter()
        dtrain = xgb.DMatrix(x_tr, label=y_tr, missing=np.nan, nthread=params["nthread"])
        dvalid = xgb.DMatrix(x_va, label=y_va, missing=np.nan, nthread=params["nthread"])
        booster = xgb.train(params, dtrain, num_boost_round=task["rounds"], evals=[(dvalid, "valid")],
                            early_stopping_rounds=task["early_stopping_rounds"], verbose_eval=False)
        seconds = time.perf_counter() - start
        trees = booster.best_iteration + 1
        scores = booster.predict(xgb.DMatrix(x_te, missing=np.nan, nthread=params["nthread"]), iteration_range=(0, trees))
        np.savetxt(os.path.join(folder, name + "_scores.txt"), scores, fmt="%.9g")
        with open(os.path.join(folder, name + "_seconds.txt"), "w", encoding="utf-8") as f:
            f.write(f"{seconds:.6f} {trees}\n")
        print(f"  xgboost {name}: kept {trees} trees, {seconds:.3f} s")


if __name__ == "__main__":
    main()
