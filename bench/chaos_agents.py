"""The Agents API's part of the chaos run (bench/chaos.py --provider agents|mixed): its requests, faults and checks.

The Agents API has no callbacks, no list, no delete and no idempotency key, so its rows are checked against the
simulator's /_sim/agents/generations alone:

- a row that ended "Luma may have made and billed this; we could not confirm" (failed locally, no luma_id) is a
  lost create, waiting for a person: counted as lost_creates, left out of converged; Luma may hold one generation
  for it (its answer was lost) or none (the worker died before the request left);
- every other row converges when its state is the simulator's for its luma_id (or it ended rejected and Luma holds
  nothing with its prompt);
- archived_ok: every output of a completed row is kept and hashes to the simulator's sha256 (a layering's every
  layer, in Generation.extra_files; an HDR clip's EXR too, when one was asked for);
- duplicate_creates: simulator generations beyond one per row. Each row's prompt is unique to the run, so a
  generation no row claims by luma_id is matched to its row by prompt: one for a lost row is expected (counted as
  lost, not duplicate); any other is a duplicate, and so is a generation whose prompt no row has.
"""

import hashlib
import statistics
from collections import Counter

# Each a share of chances (0-1), except expire_output_urls: seconds an output URL lives after the GET that signed it.
FAULTS = {
    "lost_creates": 0.06, "create_5xx_after_accept": 0.03, "rpm_429": 0.04, "concurrent_429": 0.04,
    "get_5xx": 0.1, "cut_downloads": 0.2, "expired_downloads": 0.1, "expire_output_urls": 5,
}
CALM = dict.fromkeys(FAULTS, 0)
LOST_WORDS = "Luma may have made and billed this; we could not confirm"
VIDEO_KINDS = ("text_to_video", "image_to_video", "extend", "modify_video", "reframe_video")
FIRST_KINDS = '["text_to_video", "image_to_video", "image"]'
EVERY_KIND = ('["text_to_video", "image_to_video", "image", "extend", "modify_video", "reframe_video", "image_edit", '
              '"layering"]')

# Rows for the Agents API, one prompt each that no other row has (duplicates are found by it). Sources for extend,
# edit, reframe, image_edit and layering are this run's completed Agents rows; without one the row becomes a
# text_to_video or an image. Some references are our own uploads (sent through Luma's Files API), others URLs.
REQUEST_CODE = """
import io, random
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image
from generations.models import Generation, KeyframeImage, Provider, State
random.seed({seed})
users = [get_user_model().objects.get_or_create(username=f"chaos{{i}}")[0] for i in range(4)]
agents = Generation.objects.filter(provider=Provider.AGENTS, state=State.COMPLETED)
videos = list(agents.filter(kind__in={video_kinds}).values_list("pk", flat=True))
images = list(agents.filter(kind__in=["image", "image_edit"]).values_list("pk", flat=True))
def upload(owner, i):
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (40 + i % 200, 90, 160)).save(buffer, "PNG")
    made = KeyframeImage.objects.create(file=ContentFile(buffer.getvalue(), name=f"chaos-{{i}}.png"),
                                        content_type="image/png", width=640, height=360, uploaded_by=owner)
    return made.public_url()
kinds = {kinds}
made = 0
for i in range({count}):
    owner = random.choice(users)
    kind = kinds[(i + {seed}) % len(kinds)]
    if kind in ("extend", "modify_video", "reframe_video") and not videos: kind = "text_to_video"
    if kind in ("image_edit", "layering") and not images: kind = "image"
    fields = dict(prompt=f"chaos agents {{kind}} {label}-{{i}}", model="ray-3.2")
    options = {{}}
    if kind == "text_to_video":
        roll = random.random()
        if roll < 0.35:
            fields.update(resolution=random.choice(["720p", "1080p"]), duration="5s")
            options = {{"hdr": True, "exr_export": random.random() < 0.4}}
        elif roll < 0.5:
            fields.update(resolution="540p", duration="5s", loop=True)
        else:
            fields.update(resolution=random.choice(["540p", "720p", "1080p"]), duration=random.choice(["5s", "10s"]),
                          aspect_ratio=random.choice(["16:9", "9:16", "1:1", "21:9"]))
    elif kind == "image_to_video":
        fields["frame0_url"] = upload(owner, i) if random.random() < 0.5 else f"https://images.example.com/{label}-{{i}}.jpg"
        fields["resolution"] = random.choice(["540p", "720p"])
    elif kind == "extend":
        fields["frame0_generation"] = Generation.objects.get(pk=random.choice(videos))
    elif kind == "modify_video":
        fields["source"] = Generation.objects.get(pk=random.choice(videos))
        if random.random() < 0.5:
            fields["mode"] = random.choice(["adhere_1", "flex_2", "reimagine_3"])
            control = random.choice(["depth", "face", "normals", "pose", "trajectory"])
            options = {{"controls": {{control: {{"enabled": True}}}}}}
    elif kind == "reframe_video":
        fields.update(source=Generation.objects.get(pk=random.choice(videos)), resolution="720p",
                      aspect_ratio=random.choice(["9:16", "1:1", "21:9"]))
    else:
        fields["model"] = "uni-1"
        if kind == "image":
            fields["model"] = random.choice(["uni-1", "uni-1-max"])
            fields["aspect_ratio"] = random.choice(["16:9", "1:1", "9:16", "3:2"])
            refs = [{{"url": f"https://images.example.com/{label}-{{i}}-ref{{n}}.jpg"}} for n in range(random.randrange(4))]
            if random.random() < 0.5:
                refs.append({{"url": upload(owner, i)}})
            options = {{"image_ref": refs, "format": random.choice(["png", "jpeg"])}}
        elif kind == "image_edit":
            fields["source"] = Generation.objects.get(pk=random.choice(images))
            options = {{"image_ref": [{{"url": f"https://images.example.com/{label}-{{i}}-edit.jpg"}}]}}
        else:
            fields["source"] = Generation.objects.get(pk=random.choice(images))
            options = {{"layering_resolution": "1k"}}
    Generation.request(owner, kind=kind, provider=Provider.AGENTS, options=options, **fields)
    made += 1
for i in range({refused}):
    # Luma refuses a loop at 10 s (422): these rows must end rejected, with nothing made.
    Generation.request(random.choice(users), kind="text_to_video", provider=Provider.AGENTS, model="ray-3.2",
                       prompt=f"chaos agents refused {label}-{{i}}", duration="10s", loop=True)
    made += 1
print(made)
"""


def request_code(seed: int, label: str, count: int, kinds: str, refused: int) -> str:
    return REQUEST_CODE.format(seed=seed, label=label, count=count, kinds=kinds, refused=refused,
                               video_kinds=list(VIDEO_KINDS))


def sources_ready(rows: list[dict]) -> bool:
    """Whether this run has a completed Agents clip and image to extend, edit, reframe or layer."""
    done = {row["kind"] for row in rows if row["provider"] == "agents" and row["state"] == "completed"}
    return bool(done & set(VIDEO_KINDS)) and bool(done & {"image", "image_edit"})


def is_lost(row: dict) -> bool:
    """A create whose answer was lost: failed locally, no luma_id, and the row says Luma may have billed it."""
    return (row["state"] == "failed" and row["failed_locally"] and not row["luma_id"]
            and LOST_WORDS in (row["reason"] or ""))


def file_sha256(media_root, name: str) -> str | None:
    path = media_root / name if name else None
    if not path or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kept_outputs(media_root, row: dict, remote: dict) -> list[str]:
    """The names of the simulator's outputs for this row that are not kept with Luma's bytes (empty: all kept)."""
    outputs = remote["outputs"]
    if not outputs:
        return ["(none)"]
    missing = []
    main = file_sha256(media_root, row["archive_file"])
    if not (row["archive_state"] == "done" and main and main == row["sha256"] == outputs[0]["sha256"]):
        missing.append(outputs[0]["name"])
    extras = row["extra_files"] or []
    if row["kind"] == "layering":
        if len(extras) != len(outputs):
            missing += [o["name"] for o in outputs[len(extras):]] or ["(layer count)"]
        for kept, output in zip(extras, outputs):
            on_disk = file_sha256(media_root, kept.get("file", ""))
            if not (on_disk and on_disk == kept.get("sha256") == output["sha256"]):
                missing.append(output["name"])
    else:
        # Further outputs (an EXR beside an HDR clip) are kept only if some kept file carries their bytes.
        kept = {item.get("sha256") for item in extras}
        missing += [o["name"] for o in outputs[1:] if o["sha256"] not in kept]
    return sorted(set(missing))


def figures(stack, rows: list[dict]) -> dict:
    """Check the Agents rows against the simulator; prints detail lines and returns the counts chaos.py sums."""
    sim_list = stack.sim("GET", "/_sim/agents/generations")["generations"]
    sim = {g["id"]: g for g in sim_list}
    by_prompt: dict[str, list[dict]] = {}
    for g in sim_list:
        by_prompt.setdefault((g["request"] or {}).get("prompt") or "", []).append(g)
    claimed = {row["luma_id"] for row in rows if row["luma_id"]}
    prompts = {row["prompt"] for row in rows}
    media_root = stack.workdir / "media"
    out = Counter()
    missed_outputs: Counter = Counter()
    user_ids_wrong, kinds_done = 0, Counter()
    for row in rows:
        mine = by_prompt.get(row["prompt"], [])
        remote = sim.get(row["luma_id"]) if row["luma_id"] else None
        if is_lost(row):
            out["lost"] += 1
            out["lost_with_generation"] += bool(mine)
            out["duplicates"] += max(0, len(mine) - 1)
            continue
        out["duplicates"] += max(0, len(mine) - (1 if row["luma_id"] else 0))
        if row["luma_id"] and remote is None:
            out["unknown_ids"] += 1
        if (row["state"] == "rejected" and not row["luma_id"] and not mine) or (
                remote and remote["state"] == row["state"] and remote in mine):
            out["converged"] += 1
        if row["state"] == "rejected":
            out["rejected"] += 1
            out["rejected_made"] += bool(mine or row["luma_id"])
        if remote and remote.get("user_id") != row["user_token"]:
            user_ids_wrong += 1
        if row["state"] == "completed":
            out["completed"] += 1
            missing = kept_outputs(media_root, row, remote) if remote else ["(no generation)"]
            if missing:
                missed_outputs.update(f"{row['kind']}:{name.rsplit('.', 1)[-1] if '.' in name else name}"
                                      for name in missing)
            else:
                out["archived_ok"] += 1
                kinds_done[row["kind"]] += 1
    orphans = [g for g in sim_list if g["id"] not in claimed and (g["request"] or {}).get("prompt") not in prompts]
    out["duplicates"] += len(orphans)
    out["user_ids_wrong"] = user_ids_wrong
    unclaimed = sum(1 for g in sim_list if g["id"] not in claimed)
    stats = stack.sim("GET", "/_sim/agents/stats")
    fired = dict(stats["faults_fired"], downloads_incomplete=stats["downloads"].get("incomplete", 0),
                 **{f"creates_{k}": v for k, v in stats["creates"].items() if k != "accepted"})
    print("agents faults: " + " ".join(f"{name}={count}" for name, count in sorted(fired.items())))
    gets = [stats["per_generation"].get(row["luma_id"], 0) for row in rows if row["state"] == "completed"]
    print(f"agents: rows={len(rows)} simulator_generations={len(sim_list)} unclaimed_by_luma_id={unclaimed} "
          f"lost_creates={out['lost']} (with a simulator generation: {out['lost_with_generation']}) "
          f"orphan_generations={len(orphans)} unknown_luma_ids={out['unknown_ids']} rejected={out['rejected']} "
          f"rejected_luma_made={out['rejected_made']} user_id_wrong={user_ids_wrong} "
          f"gets_per_completed=median:{statistics.median(gets) if gets else 0:g},max:{max(gets, default=0)}")
    print("agents archived by kind: " + " ".join(f"{kind}={n}" for kind, n in sorted(kinds_done.items()))
          + (" not_kept: " + " ".join(f"{name}x{n}" for name, n in sorted(missed_outputs.items()))
             if missed_outputs else ""))
    return out
