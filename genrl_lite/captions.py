"""Captions from privileged simulator state: the *labels* of the VLM's pretraining corpus.

GenRL needs a vision-language model (VLM) that puts a clip of 8 frames and a sentence describing
it near each other. The paper used a 1B-parameter foundation model; we pretrain a small one on
clips whose captions are written by this module from the simulator's privileged state (torso
height and orientation, speed, feet positions). This corpus is *separate* from the world model's
dataset: the world model, connector and aligner never see a caption. Language only enters GenRL
through the VLM, which is the point of the paper.

A clip gets two *concepts*, read from the state of its 8 frames:

    posture  what the body looks like   standing, kneeling, lying_back, upside_down, ...
    motion   how it moves               still, in_place, forward_slow, forward_fast, backward, flipping

and a caption is drawn by composing phrasings of them with one of several names of the body
("a walker", "a two-legged robot", "a person"). ``PARAPHRASES`` are phrasings that are never used
in training captions: the benchmark uses them to check that the frozen sentence encoder carries
real language knowledge to prompts the vision tower was never trained on.

Shapes: F frames of one clip (8); features are dicts of floats per frame.

    feats = [frame_features("walker", physics) for each frame]   # F dicts
    posture, motion = clip_concepts("walker", feats)             # ("standing", "forward_slow")
    caption = make_caption("walker", posture, motion, rng)       # "a two-legged robot walking upright"

A new domain (stickman) plugs in by adding its entries to ``BODY_NAMES``/``POSTURE_PHRASES`` and a
feature function to ``FEATURES``; a planar biped with the walker's body names reuses the walker's.
"""
from __future__ import annotations

import math

import numpy as np

MOTIONS = ["still", "in_place", "forward_slow", "forward_fast", "backward", "flipping"]
"""Motion concepts, shared by every domain."""

BODY_NAMES = {
    "walker": ["a walker", "a two-legged robot", "a person", "a biped", "a humanoid",
               "a stick figure", "a bipedal robot", "the walker"],
    "stickman": ["a stickman", "a stick figure", "a person", "a humanoid", "a man",
                 "a two-legged robot with arms", "the stickman"],
    "cheetah": ["a cheetah", "a four-legged animal", "a half cheetah", "a cheetah robot",
                "a dog", "an animal", "the cheetah", "a running animal robot"],
    "quadruped": ["a quadruped", "a spider", "an ant-like robot", "a four-legged robot",
                  "an ant", "a robot spider", "the quadruped", "a bug"],
}
"""Several names per body, so prompts may name it freely ("spider standing")."""

_BIPED_POSTURES = {
    "standing": ["standing up straight", "standing upright", "standing tall", "standing",
                 "upright on its feet", "standing on both legs", "standing straight up",
                 "staying upright", "on its feet", "standing with straight legs", "in a standing pose",
                 "standing up"],
    "one_leg_up": ["standing on one leg", "with one leg up", "balancing on one foot",
                   "lifting one leg", "with a leg raised", "on one foot", "raising a foot in the air",
                   "standing on one foot", "kicking one leg up", "with one knee raised"],
    "kneeling": ["kneeling", "crouching", "squatting low", "on its knees", "crouched down",
                 "bending its knees low", "in a low crouch", "kneeling down", "squatting",
                 "half sitting, knees bent"],
    "splits": ["doing the splits", "with legs spread wide apart", "in a split",
               "legs stretched far apart", "doing a split on the ground", "spreading its legs wide",
               "in a wide straddle", "doing the splits on the floor"],
    "lying_back": ["lying on its back", "lying on the back", "flat on its back", "lying face up",
                   "on its back on the ground", "lying down facing the sky", "lying supine",
                   "fallen on its back", "lying down on the back", "resting on its back",
                   "lying flat on its back", "lying horizontally on its back", "lying down flat, face up"],
    "lying_front": ["lying on its front", "lying face down", "lying on the belly", "flat on its face",
                    "lying prone", "fallen forward on its face", "lying on its stomach",
                    "face down on the ground", "lying down on the front", "lying belly down",
                    "lying flat on its front", "lying horizontally, face down", "lying down flat, face down"],
    "upside_down": ["upside down", "head down and feet up", "doing a handstand", "inverted",
                    "standing on its head", "with legs in the air, head on the ground",
                    "flipped upside down", "in a headstand", "head first on the floor",
                    "turned upside down"],
}

POSTURE_PHRASES = {
    "walker": _BIPED_POSTURES,
    "stickman": {**_BIPED_POSTURES,
                 "hands_up": ["standing with the hands up", "raising both arms", "arms up in the air",
                              "with its hands above its head", "reaching up high", "holding both arms up",
                              "hands raised overhead", "standing with arms stretched up"]},
    "cheetah": {
        "standing": ["standing on all four legs", "on its feet", "upright on its legs",
                     "standing normally", "with all feet on the ground", "standing on its paws",
                     "in a normal upright pose", "standing", "on all fours", "balanced on its legs"],
        "upside_down": ["upside down", "lying on its back", "flipped over on its back",
                        "with legs in the air", "turned upside down", "on its back, feet up",
                        "inverted", "belly up", "overturned", "flipped upside down"],
        "rearing": ["standing on its back legs", "rearing up", "on its hind legs",
                    "with the head up high and front legs in the air", "standing up on two back legs",
                    "rearing up on hind legs", "tilted up, nose to the sky", "sitting up on its hind legs",
                    "standing up like a human on its hind legs", "upright on two legs like a person",
                    "standing on two legs like a human"],
        "headstand": ["standing on its front legs", "head down, rear in the air",
                      "doing a handstand on its front legs", "nose down with back legs up",
                      "balancing on its front paws", "tipped forward onto its head",
                      "with its hind legs in the air", "nose diving into the ground"],
    },
    "quadruped": {
        "standing": ["standing on four legs", "standing", "upright on its legs", "standing still on all legs",
                     "on its feet", "standing upright", "standing on all fours",
                     "with all legs on the ground", "standing normally", "balanced on its legs"],
        "upside_down": ["upside down", "lying on its back", "flipped over on its back",
                        "legs up in the air", "turned upside down", "on its back, feet up",
                        "inverted", "belly up", "overturned", "flipped upside down"],
        "on_side": ["lying on its side", "tipped over on its side", "fallen on its side",
                    "on its side", "tilted sideways on the ground", "knocked over sideways",
                    "resting on one side", "lying sideways"],
    },
}
"""Posture concept -> phrasings used in training captions (per domain)."""

MOTION_PHRASES = {
    "still": ["staying still", "not moving", "motionless", "frozen in place",
              "completely still", "resting", "holding still", "without moving", "idle"],
    "in_place": ["moving its legs in place", "wiggling its legs", "twitching without going anywhere",
                 "kicking its legs in place", "flailing its limbs", "moving but staying in place",
                 "shaking its legs", "squirming in place", "thrashing around on the spot"],
    "forward_slow": ["moving forward slowly", "going forward slowly", "advancing slowly", "moving ahead",
                     "slowly moving to the right", "creeping forward", "inching ahead"],
    "forward_fast": ["moving forward fast", "going forward quickly", "racing forward", "moving fast",
                     "moving fast to the right", "rushing forward", "speeding forward",
                     "covering ground quickly"],
    "backward": ["moving backward", "going backward", "moving in reverse", "backing up",
                 "moving to the left", "retreating backwards"],
    "flipping": ["flipping over", "doing a flip", "rolling over", "somersaulting", "tumbling",
                 "spinning head over heels", "doing a backflip", "turning over and over",
                 "rotating in the air", "doing a somersault"],
}
"""Motion concept -> phrasings used in training captions, for ANY posture: speed and direction
words only (a body sliding on its back is 'moving forward fast', not 'running')."""

UPRIGHT = ("standing", "one_leg_up", "hands_up")
"""Postures on the feet: the only ones whose captions may say walking, running, sprinting, stepping."""

GAIT_PHRASES = {
    "still": ["standing still", "standing motionless"],
    "in_place": ["stepping in place", "marching on the spot"],
    "forward_slow": ["walking forward", "walking", "walking slowly", "strolling forward", "stepping forward",
                     "walking upright", "walking at a steady pace", "walking ahead on its feet"],
    "forward_fast": ["running fast", "running", "sprinting", "running quickly", "running at high speed",
                     "walking fast", "running upright", "running forward on its feet", "walking quickly"],
    "backward": ["walking backwards", "stepping back", "walking in reverse"],
}
"""Motion concept -> extra phrasings for UPRIGHT postures only (gait words)."""

FALLEN = ("lying_back", "lying_front", "upside_down", "on_side", "splits")
"""Postures on the ground: moving means being dragged or sliding."""

SLIDE_PHRASES = {
    "forward_slow": ["sliding forward slowly", "dragging itself forward on the ground"],
    "forward_fast": ["sliding forward fast", "skidding forward quickly along the ground"],
    "backward": ["sliding backwards", "sliding backwards along the ground"],
}
"""Motion concept -> extra phrasings for FALLEN postures only."""

CANONICAL = {
    **{f"posture/{p}": v[0] for p, v in _BIPED_POSTURES.items()},
    **{f"motion/{m}": v[0] for m, v in MOTION_PHRASES.items()},
}
"""One templated phrase per concept (the first of its list): the benchmark's 'concept prompts'."""

PARAPHRASES = {
    "posture": {
        "standing": ["balanced upright on two feet", "erect and tall, feet planted"],
        "one_leg_up": ["hopping stance with one foot off the floor", "a single leg lifted high"],
        "kneeling": ["down low with bent knees", "hunkered down"],
        "splits": ["legs wide open like a gymnast", "straddling the floor"],
        "lying_back": ["sprawled out facing upward", "on the ground, belly to the sky"],
        "lying_front": ["sprawled out facing the floor", "lying with its chest on the ground"],
        "upside_down": ["feet pointing at the sky", "topsy-turvy"],
        "rearing": ["up on the rear paws", "front half lifted high"],
        "headstand": ["rump raised high, front end low", "tipped onto its front paws"],
        "on_side": ["toppled sideways", "keeled over to one side"],
        "hands_up": ["arms reaching for the ceiling", "both fists lifted skyward"],
    },
    "motion": {
        "still": ["not budging at all", "perfectly stationary"],
        "in_place": ["jiggling on the spot", "fidgeting its limbs"],
        "forward_slow": ["making slow progress ahead", "pacing forward gently"],
        "forward_fast": ["zooming ahead at top speed", "bolting forward"],
        "backward": ["heading in reverse", "reversing away"],
        "flipping": ["cartwheeling through the air", "whirling around"],
    },
}
"""Held-out phrasings: never used in training captions (checked by the tests)."""


def postures(domain: str) -> list[str]:
    """The posture concepts of ``domain`` (raises a clear error for an unknown domain)."""
    if domain not in POSTURE_PHRASES:
        raise ValueError(f"no captions for domain {domain!r}; captioned domains: {sorted(POSTURE_PHRASES)}")
    return list(POSTURE_PHRASES[domain])


# --- state features -------------------------------------------------------------------------------

def _planar_pitch(physics) -> float:
    """Pitch of a planar body from its torso rotation matrix: 0 upright, +-pi upside down."""
    xmat = np.asarray(physics.named.data.xmat["torso"]).reshape(3, 3)
    # local x (front) and z (up) axes in world frame; pitch about world y
    return float(math.atan2(xmat[0, 2], xmat[2, 2]))


def biped_features(physics) -> dict:
    """Frame features of a planar biped (walker; stickman with the same body names)."""
    d = physics.named.data
    xmat = np.asarray(d.xmat["torso"]).reshape(3, 3)
    feet = [np.asarray(d.xpos[n]) for n in ("left_foot", "right_foot")]
    joint_vel = np.asarray(physics.data.qvel[3:])
    names = physics.named.model.body_pos.axes.row.names
    hands = [float(d.xpos[n][2]) for n in ("left_hand", "right_hand") if n in names]
    head = float(d.xpos["head"][2]) if "head" in names else float(d.xpos["torso"][2])
    return dict(height=float(d.xpos["torso"][2]), up=float(xmat[2, 2]), front=float(xmat[2, 0]),
                x=float(d.xpos["torso"][0]), pitch=_planar_pitch(physics),
                hands_up=bool(hands) and min(hands) > head + 0.1,
                foot_dz=float(abs(feet[0][2] - feet[1][2])), foot_dx=float(abs(feet[0][0] - feet[1][0])),
                foot_low=float(min(feet[0][2], feet[1][2])), foot_high=float(max(feet[0][2], feet[1][2])),
                limbs=float(np.abs(joint_vel).mean()))


def cheetah_features(physics) -> dict:
    """Frame features of the planar cheetah (head towards +x)."""
    d = physics.named.data
    xmat = np.asarray(d.xmat["torso"]).reshape(3, 3)
    return dict(height=float(d.xpos["torso"][2]), up=float(xmat[2, 2]), front=float(xmat[2, 0]),
                x=float(d.xpos["torso"][0]), pitch=_planar_pitch(physics),
                limbs=float(np.abs(np.asarray(physics.data.qvel[3:])).mean()))


def quadruped_features(physics) -> dict:
    """Frame features of the 3-D quadruped; 'forward' is the torso's own x axis, projected flat."""
    d = physics.named.data
    xmat = np.asarray(d.xmat["torso"]).reshape(3, 3)
    heading = xmat[:2, 0] / (np.linalg.norm(xmat[:2, 0]) + 1e-6)
    pos = np.asarray(d.xpos["torso"])
    return dict(height=float(pos[2]), up=float(xmat[2, 2]), pos=pos[:2].copy(), heading=heading,
                zaxis=xmat[:, 2].copy(), limbs=float(np.abs(np.asarray(physics.data.qvel[6:])).mean()))


FEATURES = {"walker": biped_features, "stickman": biped_features, "cheetah": cheetah_features,
            "quadruped": quadruped_features}
"""Domain -> ``features(physics) -> dict`` of one frame."""

SPEEDS = {"walker": (0.35, 2.0), "stickman": (0.35, 2.0), "cheetah": (0.5, 3.0), "quadruped": (0.3, 1.5)}
"""(slow, fast) forward-speed thresholds in m/s: below slow is 'in place', above fast is 'fast'."""


def frame_features(domain: str, physics) -> dict:
    """The features of the current simulator state of ``domain``'s ``physics``."""
    if domain not in FEATURES:
        raise ValueError(f"no captions for domain {domain!r}; captioned domains: {sorted(FEATURES)}")
    return FEATURES[domain](physics)


def frame_posture(domain: str, f: dict) -> str | None:
    """Posture concept of one frame's features, or ``None`` when it is in between concepts."""
    up, h = f["up"], f["height"]
    if domain in ("walker", "stickman"):
        if up < -0.6:
            return "upside_down"
        if abs(up) < 0.55 and h < 0.6:
            return "lying_back" if f["front"] > 0 else "lying_front"
        if up > 0.6 and f["foot_dx"] > 1.0 and f["foot_high"] < 0.35:
            return "splits"
        if up > 0.8 and h > 0.95 and f["foot_dz"] > 0.3:
            return "one_leg_up"
        if up > 0.85 and h > 1.1 and f["foot_dz"] < 0.2:
            return "hands_up" if domain == "stickman" and f["hands_up"] else "standing"
        if up > 0.6 and 0.3 < h < 0.9 and f["foot_dx"] < 0.8:
            return "kneeling"
        return None
    if domain == "cheetah":
        pitch = f["pitch"]  # + rotates the head (+x) down
        if abs(pitch) > 2.3:
            return "upside_down"
        if abs(pitch) < 0.35:
            return "standing"
        if pitch < -0.9:
            return "rearing"
        if pitch > 0.9:
            return "headstand"
        return None
    if domain == "quadruped":
        if up < -0.6:
            return "upside_down"
        if abs(up) < 0.35:
            return "on_side"
        if up > 0.85:
            return "standing"
        return None
    raise ValueError(f"no captions for domain {domain!r}; captioned domains: {sorted(FEATURES)}")


def on_its_feet(domain: str, f: dict) -> bool:
    """Whether a frame is upright on the feet, more loosely than the 'standing' posture: a walking
    or running body swings its legs (a biped's feet are rarely level, a cheetah's torso rocks)."""
    if domain in ("walker", "stickman"):
        return f["up"] > 0.8 and f["height"] > 0.95
    if domain == "cheetah":
        return abs(f["pitch"]) < 0.6
    if domain == "quadruped":
        return f["up"] > 0.7
    raise ValueError(f"no captions for domain {domain!r}; captioned domains: {sorted(FEATURES)}")


def clip_concepts(domain: str, feats: list[dict], dt: float) -> tuple[str | None, str | None]:
    """(posture, motion) of a clip from its F frames' features; ``dt`` = seconds between frames.

    A posture needs at least 6 of the F frames to agree. A clip with no such posture whose frames
    are (6 of 8) upright on the feet is 'standing': the gait of a real walker alternates between
    'standing' and 'one leg up' frames, and without this rule real walking and running would get
    no posture, hence no gait words in their captions. Other clips that change mid-way get ``None``.
    The motion comes from the displacement over the whole clip and the total body rotation.
    """
    assert len(feats) >= 2, f"a clip needs at least 2 frames, got {len(feats)}"
    per_frame = [frame_posture(domain, f) for f in feats]
    values, counts = np.unique([p or "" for p in per_frame], return_counts=True)
    best = values[np.argmax(counts)]
    need = max(2, round(0.75 * len(feats)))
    posture = best if best and counts.max() >= need else None
    if posture is None and sum(on_its_feet(domain, f) for f in feats) >= need:
        posture = "standing"

    duration = dt * (len(feats) - 1)
    if domain == "quadruped":
        disp = feats[-1]["pos"] - feats[0]["pos"]
        speed = float(disp @ feats[0]["heading"]) / duration
        rot = sum(math.acos(float(np.clip(a["zaxis"] @ b["zaxis"], -1, 1))) for a, b in zip(feats, feats[1:]))
    else:
        speed = (feats[-1]["x"] - feats[0]["x"]) / duration
        pitches = np.unwrap([f["pitch"] for f in feats])
        rot = float(abs(pitches[-1] - pitches[0]))
    slow, fast = SPEEDS[domain]
    limbs = float(np.mean([f["limbs"] for f in feats]))
    # a flip is a fast turn of the body: >= 5 rad/s on average (8 for the wobblier 3-D quadruped)
    rate = rot / duration
    flip = 8.0 if domain == "quadruped" else 5.0
    if rate > flip and rot > 1.0:
        motion = "flipping"
    elif rate > flip / 2:
        motion = None  # a partial turn: neither a flip nor a steady motion
    elif speed > fast:
        motion = "forward_fast"
    elif speed > slow:
        motion = "forward_slow"
    elif speed < -slow:
        motion = "backward"
    elif abs(speed) < 0.5 * slow and limbs < 1.0:
        motion = "still"
    elif abs(speed) < 0.5 * slow and limbs > 2.0:
        motion = "in_place"
    else:
        motion = None
    return posture, motion


# --- captions -------------------------------------------------------------------------------------

def motion_phrases(posture: str | None, motion: str) -> list[str]:
    """Every training phrasing of ``motion`` for a clip of ``posture`` (None: unknown posture).

    Gait words (walking, running, stepping) only for UPRIGHT postures: a caption pool without a
    posture is a positive for clips of every posture, so it must not say 'running' either."""
    extra = GAIT_PHRASES if posture in UPRIGHT else SLIDE_PHRASES if posture in FALLEN else {}
    return MOTION_PHRASES[motion] + extra.get(motion, [])


def _motion_phrase(posture: str | None, motion: str, rng: np.random.Generator) -> str:
    extra = (GAIT_PHRASES if posture in UPRIGHT else SLIDE_PHRASES if posture in FALLEN else {}).get(motion)
    if extra and rng.random() < 0.6:  # mostly the posture-specific words, so they are learned well
        return str(rng.choice(extra))
    return str(rng.choice(MOTION_PHRASES[motion]))


def make_caption(domain: str, posture: str | None, motion: str | None, rng: np.random.Generator) -> str:
    """One random caption composed from the concepts (either may be ``None``, not both)."""
    if posture is None and motion is None:
        raise ValueError("a caption needs a posture or a motion concept")
    body = str(rng.choice(BODY_NAMES[domain]))
    parts = []
    if posture is not None:
        parts.append(str(rng.choice(POSTURE_PHRASES[domain][posture])))
    if motion is not None:
        parts.append(_motion_phrase(posture, motion, rng))
    if len(parts) == 2 and rng.random() < 0.5:
        parts = parts[::-1]
    joiner = str(rng.choice([", ", " and ", " while ", " "])) if len(parts) == 2 else ""
    return f"{body} {joiner.join(parts)}".replace("  ", " ")


def clip_captions(domain: str, posture: str | None, motion: str | None, n: int,
                  rng: np.random.Generator) -> list[str]:
    """``n`` captions for one clip: mostly both concepts, sometimes only one (so single-concept
    prompts like "a walker lying on its back" land on all clips of that posture)."""
    out = []
    for _ in range(n):
        r = rng.random()
        p = posture if (motion is None or r > 0.2) else None
        m = motion if (posture is None or r < 0.8) else None
        out.append(make_caption(domain, p, m, rng))
    return out


def concept_prompt(domain: str, factor: str, concept: str, phrase: str | None = None) -> str:
    """The benchmark prompt of a concept: '<canonical body name> <phrase>' (phrase defaults to the
    first templated phrasing; pass a paraphrase to test held-out wording)."""
    if phrase is None:
        table = POSTURE_PHRASES[domain] if factor == "posture" else MOTION_PHRASES
        phrase = table[concept][0]
    return f"{BODY_NAMES[domain][0]} {phrase}"


def task_concepts() -> dict:
    """Which (posture, motion) each task prompt asks for, for the benchmark's retrieval check: a
    concept, a tuple of acceptable concepts, or None (either). Standard tasks all, custom tasks
    where a concept exists (see ``NOT_COVERED``).

    The tuples follow the task's reward, not the prompt's wording: dm_control's walk rewards count
    any speed above 1 m/s (walker) / 0.5 m/s (quadruped) as fully walking (``bounds=(speed, inf)``),
    so a walk prompt may retrieve slow or fast forward clips; walk/run rewards only ask the torso to
    be high and upright, which one_leg_up (a gait mid-stride) and hands_up also are; lying_down
    asks for a level torso on the ground, face up or down."""
    walk, upright = ("forward_slow", "forward_fast"), UPRIGHT
    lying = ("lying_back", "lying_front")
    return {
        "walker_stand": ("standing", "still"), "walker_walk": (upright[:2], walk),
        "walker_run": (upright[:2], "forward_fast"), "cheetah_run": ("standing", "forward_fast"),
        "quadruped_stand": ("standing", "still"), "quadruped_walk": ("standing", walk),
        "quadruped_run": ("standing", "forward_fast"),
        "stickman_stand": ("standing", "still"), "stickman_walk": (upright, walk),
        "stickman_run": (upright, "forward_fast"),
        # custom tasks (genrl_lite.custom_tasks) whose prompt names one of our concepts (None: any)
        "walker_lying_down": (lying, None), "stickman_lying_down": (lying, None),
        "walker_flipping": (None, "flipping"), "stickman_flipping": (None, "flipping"),
        "walker_one_foot": ("one_leg_up", None), "stickman_one_foot": ("one_leg_up", None),
        "walker_sit_knees": ("kneeling", None), "stickman_sit_knees": ("kneeling", None),
        "stickman_headstand": ("upside_down", None), "stickman_hands_up": ("hands_up", None),
        "cheetah_standing": ("rearing", None), "quadruped_lie_down": ("upside_down", None),
    }


def concept_set(concept) -> tuple | None:
    """A task concept as a tuple of acceptable concepts (None stays None)."""
    return None if concept is None else tuple(concept) if isinstance(concept, (tuple, list)) else (concept,)


NOT_COVERED = ["quadruped_jump", "quadruped_two_legs", "stickman_boxing", "stickman_legs_up",
               "walker_high_kick", "stickman_high_kick", "walker_lunge_pose", "stickman_lunge_pose"]
"""Custom tasks whose behaviour no caption concept describes (jumping, punching, kicks, lunges):
their prompts land wherever MiniLM puts them; more concepts would be needed."""
