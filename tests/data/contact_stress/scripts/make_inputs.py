"""Training inputs of the contact_stress models: se_e2_a, type_one_side x exclude_types x resnet_dt (rcut 3),
plus type_one_side + exclude_types at rcut 6 (sel [46, 92])."""
import json, itertools, os
# the shared DeePMD-kit fixtures: $DPC_SHARED_FIXTURES, else ../shared/fixtures/deepmd next to the repository
FIX = os.environ.get("DPC_SHARED_FIXTURES", os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "shared", "fixtures", "deepmd"))
W = os.path.join(FIX, "water-data")
for tos, ex, dt, rc in list(itertools.product([0, 1], [0, 1], [0, 1], [3.0])) + [(1, 1, 0, 6.0)]:
    name = f"contact_tos{tos}_ex{ex}_dt{dt}" if rc == 3.0 else f"contact_rcut6_tos{tos}_ex{ex}_dt{dt}"
    os.makedirs(name, exist_ok=True)
    inp = {
        "model": {
            "type_map": ["O", "H"],
            "descriptor": {
                "type": "se_e2_a", "sel": [24, 48] if rc == 3.0 else [46, 92], "rcut_smth": 0.5, "rcut": rc,
                "neuron": [4, 8], "resnet_dt": bool(dt), "axis_neuron": 4,
                "type_one_side": bool(tos), "exclude_types": [[0, 1]] if ex else [],
                "precision": "float64", "seed": 1,
            },
            "fitting_net": {"neuron": [8, 8], "resnet_dt": False, "precision": "float64", "seed": 1},
        },
        "learning_rate": {"type": "exp", "decay_steps": 10, "start_lr": 0.001, "stop_lr": 1e-4},
        "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000, "limit_pref_f": 1,
                 "start_pref_v": 0, "limit_pref_v": 0},
        "training": {
            "training_data": {"systems": [f"{W}/train/data_0"], "batch_size": "auto"},
            "numb_steps": 40, "seed": 10, "disp_file": "lcurve.out", "disp_freq": 20, "save_freq": 40,
        },
    }
    json.dump(inp, open(f"{name}/input.json", "w"), indent=1)
    print(name)
