"""A run evaluated from Python (`Model.evaluate`) and with `mmlatent eval` gives the same report:
both call the runner's one evaluation, so only the time it took and the provenance's date and
command line differ."""
import json
import os
import subprocess

import mmlatent
from tiny import CONFIG

run = mmlatent.train(CONFIG, run="runs/tiny")
quick = {"classifier_steps": 20, "classifier_batch": 16, "classifier_width": 8}
model = mmlatent.open_run(run)
ours = model.evaluate(samples=16, seed=4, name="py", classifiers="classifiers", **quick)
assert ours["folder"].endswith(os.path.join("eval", "py")), ours["folder"]
assert 0.0 <= ours["joint_coherence"] <= 1.0, ours

binary = os.environ["MMLATENT_BIN"]
assert os.path.exists(binary), f"{binary} is missing: build the CLI (cargo build -p mmlatent-cli)"
out = subprocess.run(
    [binary, "eval", run, "--samples", "16", "--seed", "4", "--name", "cli", "--classifiers", "classifiers",
     "--classifier-steps", "20", "--classifier-batch", "16", "--classifier-width", "8"],
    capture_output=True, text=True)
assert out.returncode == 0, out.stderr


def report(name):
    with open(os.path.join(run, "eval", name, "report.json")) as f:
        value = json.load(f)
    for key in ("date", "command"):
        value["provenance"].pop(key)
    value.pop("seconds")
    return value


py, cli = report("py"), report("cli")
assert py == cli, f"Python and the CLI disagree:\n{json.dumps(py, indent=1)}\n---\n{json.dumps(cli, indent=1)}"
print("ok: Python and the CLI give the same report")
