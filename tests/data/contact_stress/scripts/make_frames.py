"""Stress frames with close contacts of every type pair (O-O, O-H, H-H), from validation frame 0."""
import os

import numpy as np

# the shared DeePMD-kit fixtures: $DPC_SHARED_FIXTURES, else ../shared/fixtures/deepmd next to the repository
FIX = os.environ.get("DPC_SHARED_FIXTURES", os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "shared", "fixtures", "deepmd"))

src = np.load(os.path.join(FIX, "se_e2_a_tiny", "test_frames.npz"))
x0 = src["coord"][0].astype(np.float64)
box0 = src["box"][0].astype(np.float64)
atype = src["atype"].astype(np.int64)
L = np.diag(box0)


def mic(d):
    return d - L * np.round(d / L)


def dists(x, i):
    return np.linalg.norm(mic(x - x[i]), axis=1)


# one (center, moved) pair per type combination, far apart from each other (> 2 rcut = 6 A)
pairs, used = [], []
for ta, tb in [(0, 0), (0, 1), (1, 1)]:
    best = None
    for i in np.flatnonzero(atype == ta):
        if any(dists(x0, i)[u] < 6.5 for u in used):
            continue
        d = dists(x0, i)
        for j in np.flatnonzero(atype == tb):
            if j == i or any(dists(x0, j)[u] < 6.5 for u in used):
                continue
            if best is None or d[j] < best[2]:
                best = (i, j, d[j])
    i, j, _ = best
    pairs.append((int(i), int(j)))
    used += [i, j]


def move_pairs(d):
    x = x0.copy()
    for i, j in pairs:
        v = mic(x0[j] - x0[i])
        x[j] = x0[i] + v / np.linalg.norm(v) * d
    return x


kinds, coords, boxes = ["original"], [x0], [box0]
kinds.append("scaled_0.7"); coords.append(0.7 * x0); boxes.append(0.7 * box0)
for d in (0.3, 0.15, 0.08, 0.05):
    kinds.append(f"pairs_at_{d}A"); coords.append(move_pairs(d)); boxes.append(box0)
coords, boxes = np.array(coords), np.array(boxes)
mind = []
for x, b in zip(coords, boxes):
    Lb = np.diag(b)
    dd = x[:, None] - x[None]
    dd -= Lb * np.round(dd / Lb)
    r = np.linalg.norm(dd, axis=2) + np.eye(len(x)) * 1e9
    mind.append(r.min())
np.savez_compressed("stress_frames.npz", kind=np.array(kinds), coord=coords, box=boxes, atype=atype,
                    pairs=np.array(pairs), min_dist=np.array(mind))
print(pairs, kinds, mind)
