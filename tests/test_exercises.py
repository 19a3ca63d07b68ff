"""The course module: every notebook has exercises; each checker rejects the unfilled stub and a plausible
wrong answer and accepts the solution; the student notebooks are in sync with the solution notebooks.

The solutions are taken from the notebooks themselves (the cell between the markers), executed after the
exercise section's setup cell, exactly as a learner's kernel would; the stubs from the student notebooks.
"""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import nbformat
import pytest

from genrl_lite.exercises import EXERCISES, ExerciseNotDone

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
STUDENT = ROOT / "notebooks" / "student"
KEY = "genrl_exercise"
# Notebooks allowed to have no exercises yet (a new notebook, until its exercises are appended and their
# checkers registered in genrl_lite/exercises.py); every notebook has them now.
WITHOUT_EXERCISES_YET: set = set()

sys.path.insert(0, str(ROOT / "scripts"))
import make_student_notebooks as msn  # noqa: E402


def parts(path: Path) -> tuple[dict, dict]:
    """(the section's header/setup cells by part, {exercise id: {part: cell}}) of one notebook."""
    section, exercises = {}, {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get(KEY)
        if meta is None:
            continue
        if "id" in meta:
            assert meta["part"] not in exercises.setdefault(meta["id"], {}), f"{path.name}: two {meta} cells"
            exercises[meta["id"]][meta["part"]] = cell
        else:
            section[meta["part"]] = cell
    return section, exercises


def notebook_of(exercise: str) -> Path:
    number = int(exercise.split(".")[0])
    (path,) = [p for p in NOTEBOOKS if int(p.name.split("_")[0]) == number]
    return path


def run_checker(exercise: str, solution_source: str, setup_source: str) -> tuple[bool, str]:
    """Define the function as a learner's kernel would, call its checker; (verdict, printed text)."""
    namespace: dict = {}
    exec(compile(setup_source, f"<setup of {exercise}>", "exec"), namespace)
    exec(compile(solution_source, f"<exercise {exercise}>", "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = EXERCISES[exercise].checker(namespace[EXERCISES[exercise].function])
    return ok, out.getvalue()


# --- the notebooks and the student versions ---------------------------------------------------------

def test_student_notebooks_are_in_sync(tmp_path):
    msn.write_all(ROOT / "notebooks", tmp_path)
    fresh = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert fresh == sorted(p.name for p in STUDENT.glob("[0-9]*.ipynb")), \
        "notebooks/student/ has other files than notebooks/: run python scripts/make_student_notebooks.py"
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (STUDENT / name).read_bytes(), \
            f"notebooks/student/{name} is stale: run python scripts/make_student_notebooks.py"


def test_student_notebooks_are_not_in_the_test_glob():
    makefile = (ROOT / "Makefile").read_text()
    assert "notebooks/[0-9]*.ipynb" in makefile
    assert not list((ROOT / "notebooks").glob("[0-9]*/")), "a folder under notebooks/ matches the test glob"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_has_exercises_with_stub_and_checker(path):
    section, exercises = parts(path)
    if path.name in WITHOUT_EXERCISES_YET and not exercises:
        pytest.skip(f"{path.name} has no exercises yet")
    assert 2 <= len(exercises) <= 4, f"{path.name}: {len(exercises)} exercises"
    assert set(section) == {"header", "setup"}, section.keys()
    assert "## Exercises" in section["header"].source
    first_markdown = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    for doc in ("GLOSSARY.md", "COURSE.md"):
        assert doc in section["header"].source or doc in first_markdown.source, f"{path.name} does not link {doc}"
    _, student = parts(STUDENT / path.name)
    number = int(path.name.split("_")[0])
    for exercise, cells in exercises.items():
        assert set(cells) == {"task", "solution", "check"}, f"exercise {exercise}: {sorted(cells)}"
        assert int(exercise.split(".")[0]) == number and exercise in EXERCISES, exercise
        spec = EXERCISES[exercise]
        assert f"### Exercise {exercise}" in cells["task"].source and "Predict" in cells["task"].source
        assert f"def {spec.function}(" in cells["solution"].source
        assert msn.BEGIN in cells["solution"].source and msn.END in cells["solution"].source
        assert f"{spec.checker.__name__}({spec.function})" in cells["check"].source
        stub = student[exercise]["solution"].source
        assert f'raise ExerciseNotDone("{exercise}")' in stub and msn.BEGIN not in stub
        assert student[exercise]["check"].source == cells["check"].source
        assert not any(c.get("outputs") for c in nbformat.read(STUDENT / path.name, as_version=4).cells)


def test_every_registered_exercise_is_in_its_notebook():
    found = {e for p in NOTEBOOKS for e in parts(p)[1]}
    assert set(EXERCISES) == found


def test_stub_source_replaces_exactly_the_solution():
    src = "def f(x):\n    \"doc\"\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n"
    assert msn.stub_source(src, "9.1") == ("def f(x):\n    \"doc\"\n    # YOUR CODE HERE: replace the next line "
                                           "with your solution\n    raise ExerciseNotDone(\"9.1\")\n")
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        msn.stub_source("def f(x):\n    return x\n", "9.2")


def test_exercise_not_done_message():
    assert str(ExerciseNotDone("3.1")) == ("Exercise 3.1 is not done yet: fill in the function above, "
                                           "then run the checker cell")


# --- the checkers ---------------------------------------------------------------------------------------

# One or more plausible wrong answers per exercise, as a learner would write them, and a piece of the hint
# the checker must give for each.
WRONG = {
    "0.1": [("def normalized(episode_return, expert, random):\n    return episode_return / expert",
             "divided by the expert")],
    "0.2": [("def squat_reward(physics):\n    return tol(axis_z(physics, 'torso'), 0.9, margin=0.5)",
             "'standing straight' scores"),
            ("def squat_reward(physics):\n    return tol(axis_z(physics, 'torso'), 0.9, margin=0.5) * "
             "tol(z(physics, 'torso'), 0.6, 0.9, margin=0.3)", "'kneeling' scores")],
    "1.1": [("def gap_cosines(V, T):\n    return {'clip_clip': (V @ V.T).mean(), 'text_text': (T @ T.T).mean(),\n"
             "            'clip_text': (V @ T.T).mean(), 'matched': (V * T).sum(1).mean()}", "diagonal")],
    "1.2": [("def shift_towards_text(V, T, lam):\n    return F.normalize(V + lam * (V.mean(0) - T.mean(0)), dim=-1)",
             "away from the captions")],
    "2.1": [("def kl_categorical(lhs_logits, rhs_logits, unimix=0.01):\n"
             "    p = (1 - unimix) * lhs_logits.softmax(-1) + unimix / lhs_logits.shape[-1]\n"
             "    q = (1 - unimix) * rhs_logits.softmax(-1) + unimix / rhs_logits.shape[-1]\n"
             "    return (p * (p.log() - q.log())).sum(-1).mean(-1)", "averaged over the G groups")],
    "2.2": [("def straight_through(logits, index, unimix=0.01):\n"
             "    return F.one_hot(index, logits.shape[-1]).float()", "no gradient reaches the logits")],
    "2.3": [("def kl_balance(post_logits, prior_logits, balance=0.85, free=1.0, unimix=0.01):\n"
             "    dyn = world_model.kl_categorical(post_logits.detach(), prior_logits, unimix)\n"
             "    rep = world_model.kl_categorical(post_logits, prior_logits.detach(), unimix)\n"
             "    return balance * dyn.mean().clamp(min=free) + (1 - balance) * rep.mean().clamp(min=free)",
             "*before* averaging"),
            ("def kl_balance(post_logits, prior_logits, balance=0.85, free=1.0, unimix=0.01):\n"
             "    kl = world_model.kl_categorical(post_logits, prior_logits, unimix).clamp(min=free).mean()\n"
             "    return balance * kl + (1 - balance) * kl", "which term stops the gradient")],
    "3.1": [("def lafite(e, alpha=0.5, generator=None):\n"
             "    n = torch.randn(e.shape, generator=generator)\n"
             "    return F.normalize((1 - alpha) * e + alpha * n, dim=-1)", "*unit* vector")],
    "3.2": [("def aligner_loss(aligner, e_clean, generator=None):\n"
             "    e = F.normalize(e_clean, dim=-1)\n"
             "    noisy = add_lafite_noise(e, aligner.alpha, generator)\n"
             "    return 1 - F.cosine_similarity(aligner(noisy), e, dim=-1).mean()", "zero rows")],
    "3.3": [("def decode_prompt(bundle, vlm, prompt, length=32):\n"
             "    with torch.no_grad():\n"
             "        e = F.normalize(vlm.embed_text([prompt]), dim=-1)\n"
             "        states = bundle.connector.rollout(e, length)\n"
             "        frames = bundle.world_model.decode(states['stoch'].flatten(-2))[0]\n"
             "    return (frames * 255).round().to(torch.uint8).numpy()", "no-aligner ablation"),
            ("def decode_prompt(bundle, vlm, prompt, length=32):\n"
             "    with torch.no_grad():\n"
             "        states = bundle.connector.rollout(bundle.aligner(vlm.embed_text([prompt])), length)\n"
             "        return bundle.world_model.decode(states['stoch'].flatten(-2))[0].numpy()", "uint8")],
    "4.1": [("def max_cos(u, v):\n    return F.cosine_similarity(u, v, dim=-1)", "plain cosine")],
    "4.2": [("def best_offsets(agent, target, window=8):\n"
             "    H = agent.shape[0]\n"
             "    scores = torch.stack([max_cosine(agent[t:t + window], target[:window, None]).mean(0)\n"
             "                          for t in range(H - window)])\n"
             "    return scores.argmax(0)", "last offset")],
    "4.3": [("def align_target(target, offsets, length):\n"
             "    return target[torch.arange(length)[:, None] - offsets[None]]", "clamp the target index at 0")],
    "5.1": [("def lambda_return(r, v, gamma=0.99, lam=0.95):\n"
             "    out, last = [], v[-1]\n"
             "    for t in reversed(range(len(r))):\n"
             "        last = r[t] + gamma * ((1 - lam) * v[t] + lam * last)\n"
             "        out.append(last)\n"
             "    return torch.stack(out[::-1])", "next* state")],
    "5.2": [("def normalize_returns(batches, alpha=0.01):\n"
             "    ema = torch.zeros(2)\n"
             "    for R in batches:\n"
             "        ema = (1 - alpha) * ema + alpha * torch.quantile(R.flatten(), torch.tensor([0.05, 0.95]))\n"
             "    return (batches[-1] - ema[0]) / (ema[1] - ema[0])", "amplified")],
    "6.1": [("def uniform_z(n, groups, classes, generator=None):\n"
             "    index = torch.randint(classes, (n, 1), generator=generator).expand(n, groups)\n"
             "    return F.one_hot(index, classes).float()", "same class")],
    "6.2": [("def start_mixture(rssm, connector, aligner, n, p_connector, rollout_length, embed_dim, generator=None):\n"
             "    init = rssm.initial(n)\n"
             "    G, C = init['stoch'].shape[-2:]\n"
             "    state = {k: torch.zeros_like(v) for k, v in init.items()}\n"
             "    state['stoch'] = F.one_hot(torch.randint(C, (n, G), generator=generator), C).float()\n"
             "    coin = torch.rand(n, generator=generator) < p_connector\n"
             "    e = F.normalize(torch.randn(math.ceil(n / rollout_length), embed_dim, generator=generator), dim=-1)\n"
             "    video = connector.rollout(F.normalize(aligner(e), dim=-1), rollout_length, sample=True)\n"
             "    for k in state:\n"
             "        mask = coin.view(-1, *[1] * (state[k].dim() - 1))\n"
             "        state[k] = torch.where(mask, video[k].reshape(-1, *state[k].shape[1:])[:n], state[k])\n"
             "    return state, coin", "h (deter) must stay 0")],
    "6.3": [("def warm_up(rssm, state, policy, action_dim, steps, generator=None):\n"
             "    random_actions = lambda f: torch.rand(len(f), action_dim, generator=generator)\n"
             "    halves = [rssm.imagine(state, a, steps) for a in (random_actions, policy)]\n"
             "    return {k: torch.cat([h[k][-1] for h in halves]) for k in state}", "[-1, 1]"),
            ("def warm_up(rssm, state, policy, action_dim, steps, generator=None):\n"
             "    return {k: v[-1] for k, v in rssm.imagine(state, policy, steps).items()}", "both halves")],
    "7.1": [("def mean_stderr(values):\n"
             "    v = np.array([x for x in values if x is not None], dtype=float)\n"
             "    if len(v) == 0:\n        return None, None\n"
             "    if len(v) == 1:\n        return float(v[0]), None\n"
             "    return float(v.mean()), float(v.std() / math.sqrt(len(v)))", "*sample* standard deviation")],
    "7.2": [("def break_even(world_model_s, genrl_policy_s, model_free_policy_s):\n"
             "    gap = model_free_policy_s - genrl_policy_s\n"
             "    return None if gap <= 0 else math.ceil(world_model_s / gap)", "strictly less")],
    "7.3": [("def vlm_reward_labels(embeds, prompt):\n"
             "    return F.cosine_similarity(embeds, prompt[None], dim=-1)", "first full clip")],
}


def test_every_exercise_has_wrong_answers():
    assert set(WRONG) == set(EXERCISES)


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_checker_rejects_stub_and_wrong_answers_and_accepts_solution(exercise):
    path = notebook_of(exercise)
    section, exercises = parts(path)
    setup = section["setup"].source
    _, student = parts(STUDENT / path.name)

    ok, said = run_checker(exercise, student[exercise]["solution"].source, setup)
    assert not ok and "not done yet" in said and f"Exercise {exercise} is not done yet" in said, said

    for source, hint in WRONG[exercise]:
        ok, said = run_checker(exercise, source, setup)
        assert not ok and "not right yet" in said and hint in said, (hint, said)

    ok, said = run_checker(exercise, exercises[exercise]["solution"].source, setup)
    assert ok and "correct" in said, said


def test_checker_reports_a_crash_instead_of_raising():
    check = EXERCISES["4.1"].checker
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert check(lambda u, v: u @ v) is False          # shape error inside the learner's code
        assert check("max_cos") is False                     # not a function
    assert "raised RuntimeError" in out.getvalue() and "pass your function itself" in out.getvalue()
